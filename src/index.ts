// The public API: what `import ... from 'r1kit'` gives.
export { initBackend, activeBackend, BACKENDS } from './engine/backend.ts';
export type { BackendName } from './engine/backend.ts';
export { Rng } from './engine/rng.ts';
export { UserError } from './errors.ts';

// Model: config, transformer, tokenizer, generation, checkpoints.
export { TINY, validateConfig, parameterCount } from './model/config.ts';
export type { ModelConfig } from './model/config.ts';
export { Transformer } from './model/transformer.ts';
export { Tokenizer, SPECIAL_TOKENS } from './model/tokenizer.ts';
export { generate, sampleToken } from './model/generate.ts';
export type { SamplingOptions, Completion } from './model/generate.ts';
export { saveModel, loadModel } from './model/checkpoint.ts';

// RL maths (pure): advantages and losses.
export { groupAdvantages, grpoLoss, dpoLoss } from './rl/index.ts';
export type { GrpoLossInputs, GrpoLossOptions, DpoInputs } from './rl/index.ts';

// Training pieces.
export { AdamW } from './train/adamw.ts';
export { learningRateAt } from './train/schedule.ts';
export { crossEntropy } from './train/loss.ts';
export { tokenLogprobs } from './rl/index.ts';

// Data.
export { readRows, writeJsonl } from './data/io.ts';
export { applyTemplate, renderChat, R1_ZERO_TEMPLATE } from './data/chat.ts';

// Recipes and the pipeline.
export { loadRecipe, explain } from './recipe/index.ts';
export type { Recipe, Stage } from './recipe/index.ts';
export { runRecipe } from './pipeline/run.ts';

// Rewards: the built-ins, user modules, weighted scoring.
export { loadRewards, scoreBatch, closeRewards, BUILTIN_REWARDS } from '../rewards/registry.ts';
export type { RewardBatch, RewardFn, RewardValue } from '../rewards/types.ts';
export { extractAnswer, answersMatch } from '../rewards/accuracy.ts';
