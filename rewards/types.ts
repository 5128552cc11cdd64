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
  /** Multi-turn rollouts (a stage with `tools`): each completion's turns, in order (what the model
   * wrote, and the tool call each turn ended with, its output and error). Absent: single-turn. */
  turns?: Turn[][];
};

/** One tool call of a trajectory: the tool, the code the model wrote, what it printed, and the error
 * message the model saw (null when the call ran normally). */
export type ToolCall = { tool: string; code: string; output: string; error: string | null };

/** One turn of a trajectory: what the model wrote, and the tool call it ended with (null: the turn
 * ended otherwise: the answer, the end of text, the length budget). */
export type Turn = { text: string; call: ToolCall | null };
export type RewardValue = number | null;
export type RewardFn = (batch: RewardBatch) => RewardValue[] | Promise<RewardValue[]>;

/** A built-in reward: a factory from its (already validated) options to a reward function. A `close`
 * hook releases what the reward holds (the code reward's sandbox pool). */
export type BuiltinReward = {
  defaults: Record<string, unknown>;
  doc: string;
  make(options: Record<string, unknown>): RewardFn & { close?: () => Promise<void> };
};
