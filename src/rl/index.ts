// Pure RL maths: advantages, KL estimators, policy and preference losses, per-token log-probabilities. No I/O.
export { advantages, groupAdvantages, mean, std, tokenWhitened } from './advantages.ts';
export type { AdvantageEstimator, AdvantageOptions } from './advantages.ts';
export { grpoLoss, highEntropyMask, quantile } from './grpo-loss.ts';
export type { GrpoLossInputs, GrpoLossMetrics, GrpoLossOptions } from './grpo-loss.ts';
export { klEstimate } from './kl.ts';
export type { KlEstimator } from './kl.ts';
export { LOSS_TYPE_NAMES, LOSS_TYPES, lossRowWeights } from './loss-types.ts';
export type { LossStageFields, LossType, LossTypeEntry, StepShape } from './loss-types.ts';
export { dpoLoss } from './dpo-loss.ts';
export type { DpoInputs } from './dpo-loss.ts';
export { tokenEntropy, tokenLogprobs } from './logprobs.ts';
export { truncatedIsWeights } from './rollout-correction.ts';
export type { RolloutCorrection } from './rollout-correction.ts';
export { lossMaskValues, modelTokenCount } from './tool-mask.ts';
export type { ModelTokenMask } from './tool-mask.ts';
