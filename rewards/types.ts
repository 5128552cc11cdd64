// The reward contract: one number per completion, or null where the reward does not apply.

export type RewardBatch = { prompts: string[]; completions: string[]; rows: Record<string, unknown>[] };
export type RewardValue = number | null;
export type RewardFn = (batch: RewardBatch) => RewardValue[] | Promise<RewardValue[]>;

/** A built-in reward: a factory from its (already validated) options to a reward function. A `close`
 * hook releases what the reward holds (the code reward's sandbox pool). */
export type BuiltinReward = {
  defaults: Record<string, unknown>;
  doc: string;
  make(options: Record<string, unknown>): RewardFn & { close?: () => Promise<void> };
};
