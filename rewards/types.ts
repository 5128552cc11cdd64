// The reward contract: one number per completion, or null where the reward does not apply.

export type RewardBatch = {
  prompts: string[];
  completions: string[];
  rows: Record<string, unknown>[];
  /** Token count of each completion (its generated tokens, stop token included when one was sampled),
   * one per completion. Optional: only length-in-tokens rewards (soft_overlong) need it, and callers
   * that do not tokenise (r1 score) leave it out. */
  completionTokens?: number[];
  /** The most tokens a completion could have had: the stage's max_completion_length. Optional; the
   * default of soft_overlong's max_length. */
  maxCompletionTokens?: number;
};
export type RewardValue = number | null;
export type RewardFn = (batch: RewardBatch) => RewardValue[] | Promise<RewardValue[]>;

/** A built-in reward: a factory from its (already validated) options to a reward function. A `close`
 * hook releases what the reward holds (the code reward's sandbox pool). */
export type BuiltinReward = {
  defaults: Record<string, unknown>;
  doc: string;
  make(options: Record<string, unknown>): RewardFn & { close?: () => Promise<void> };
};
