// Pure RL maths: advantages, KL estimators, policy and preference losses, per-token log-probabilities. No I/O.
export { advantages, groupAdvantages, mean, std } from './advantages.ts';
export type { AdvantageEstimator } from './advantages.ts';
export { grpoLoss, highEntropyMask, quantile } from './grpo-loss.ts';
export type { GrpoLossInputs, GrpoLossMetrics, GrpoLossOptions } from './grpo-loss.ts';
export { klEstimate } from './kl.ts';
export type { KlEstimator } from './kl.ts';
export { lossRowWeights } from './normalisers.ts';
export type { LossType, StepShape } from './normalisers.ts';
export { dpoLoss } from './dpo-loss.ts';
export type { DpoInputs } from './dpo-loss.ts';
export { tokenEntropy, tokenLogprobs } from './logprobs.ts';
export { truncatedIsWeights } from './rollout-correction.ts';
export type { RolloutCorrection } from './rollout-correction.ts';
