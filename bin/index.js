// Plain-JavaScript entry for `import ... from 'r1kit'`: registers the TypeScript loader (tsx), then
// re-exports the API of src/index.ts (kept in step by tests/api.test.ts).
import { register } from 'tsx/esm/api';

register();
export const { initBackend, activeBackend, BACKENDS, Rng, UserError, TINY, validateConfig, parameterCount, Transformer, Tokenizer, SPECIAL_TOKENS, generate, sampleToken, saveModel, loadModel, groupAdvantages, grpoLoss, dpoLoss, AdamW, learningRateAt, crossEntropy, tokenLogprobs, readRows, writeJsonl, applyTemplate, renderChat, R1_ZERO_TEMPLATE, loadRecipe, explain, runRecipe, loadRewards, scoreBatch, closeRewards, BUILTIN_REWARDS, extractAnswer, answersMatch } = await import('../src/index.ts');
