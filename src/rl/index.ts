// Pure RL maths: advantages, policy and preference losses, per-token log-probabilities. No I/O.
export { groupAdvantages, mean, std } from './advantages.ts';
export { grpoLoss } from './grpo-loss.ts';
export type { GrpoLossInputs, GrpoLossOptions } from './grpo-loss.ts';
export { dpoLoss } from './dpo-loss.ts';
export type { DpoInputs } from './dpo-loss.ts';
export { maskedMean, tokenEntropy, tokenLogprobs } from './logprobs.ts';
