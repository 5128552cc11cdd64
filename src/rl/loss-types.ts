// The GRPO-family loss types in one table: for each, its per-token loss, how it divides the token
// losses of a step (row weights), what its clip metrics are called, its recipe constraints and its
// one-line doc. The recipe's loss_type enum, its field doc and its cross-field checks are read from
// here, and grpoLoss asks its entry instead of testing names. A new loss type is one entry here.
import * as tf from '@tensorflow/tfjs-core';

export type StepShape = {
  /** Kept (loss-bearing) completion tokens of each row of the whole optimiser step. */
  tokens: readonly number[];
  /** The micro-batch each row falls in (0-based). */
  microBatch: readonly number[];
  /** The stage's max_completion_length (dr_grpo's constant; the others ignore it). */
  maxCompletionLength?: number;
};

/** What a per-token loss sees: r the importance ratio [B, T] (or [B, T] broadcast from GSPO's
 * sequence ratio), A the advantage [B, 1], log pi_theta [B, T]. */
export type TokenTerms = { ratio: tf.Tensor; adv: tf.Tensor; logprobs: tf.Tensor };

/** The clip-related options a loss type reads. */
export type ClipOptions = { epsilon: number; epsilonHigh: number; delta?: number | null };

/** The fields of a GRPO stage a loss type's constraints read (epsilon_high before its default). */
export type LossStageFields = { epsilon: number; epsilon_high: number | null; delta: number | null };

export type LossTypeEntry = {
  /** One line for the recipe's loss_type doc. */
  doc: string;
  /** The per-token loss before masking, entropy mask, IS weights and KL. */
  tokenLoss(t: TokenTerms, o: ClipOptions): tf.Tensor;
  /** Boolean [B, T] tensors of the tokens clipped on each side that binds. */
  clipped(t: Pick<TokenTerms, 'ratio' | 'adv'>, o: ClipOptions): { low: tf.Tensor; high: tf.Tensor };
  /** The step's clip metrics under this loss type's names, from the token means of the clip flags. */
  clipMetrics(m: { low: tf.Scalar; high: tf.Scalar; region: tf.Scalar }): Record<string, tf.Scalar>;
  /** The weight of each row over the whole step (see rowWeights below). */
  rowWeights(s: StepShape): number[];
  /** epsilon_high when the recipe leaves it null. */
  defaultEpsilonHigh(epsilon: number): number;
  /** Problems of the stage's clip fields under this loss type: the field and why. */
  problems(s: LossStageFields): { field: keyof LossStageFields; message: string }[];
};

/** PPO's clipped surrogate, with INTELLECT-2's optional cap delta on the unclipped ratio:
 * l = -min(min(r, delta) A, clip(r, 1 - eps, 1 + eps_high) A). */
function clippedSurrogate(t: TokenTerms, o: ClipOptions): tf.Tensor {
  const capped = o.delta != null ? tf.minimum(t.ratio, o.delta) : t.ratio;
  const clipped = tf.clipByValue(t.ratio, 1 - o.epsilon, 1 + o.epsilonHigh);
  return tf.neg(tf.minimum(tf.mul(capped, t.adv), tf.mul(clipped, t.adv)));
}

/** Clipped on the side that binds: r < 1 - eps with A < 0 (low), r > 1 + eps_high with A > 0 (high). */
function surrogateClipped(t: Pick<TokenTerms, 'ratio' | 'adv'>, o: ClipOptions): { low: tf.Tensor; high: tf.Tensor } {
  return {
    low: tf.logicalAnd(tf.less(t.ratio, 1 - o.epsilon), tf.less(t.adv, 0)),
    high: tf.logicalAnd(tf.greater(t.ratio, 1 + o.epsilonHigh), tf.greater(t.adv, 0)),
  };
}

const surrogateMetrics = (m: { low: tf.Scalar; high: tf.Scalar; region: tf.Scalar }) => ({
  'clip_ratio/low_mean': m.low,
  'clip_ratio/high_mean': m.high,
  'clip_ratio/region_mean': m.region,
});

/** delta must exceed 1 + epsilon_high, or the capped term is always the smaller one. */
function deltaProblems(s: LossStageFields): { field: 'delta'; message: string }[] {
  const top = 1 + (s.epsilon_high ?? s.epsilon);
  return s.delta !== null && s.delta <= top
    ? [{ field: 'delta', message: `${s.delta} is not above 1 + epsilon_high (${top}): the clipped term would always be the smaller` }]
    : [];
}

/** The clipped-surrogate loss types differ only in how they divide (their rowWeights). */
const surrogate = (doc: string, rowWeights: (s: StepShape) => number[]): LossTypeEntry => ({
  doc,
  tokenLoss: clippedSurrogate,
  clipped: surrogateClipped,
  clipMetrics: surrogateMetrics,
  rowWeights,
  defaultEpsilonHigh: (epsilon) => epsilon,
  problems: deltaProblems,
});

// Row weights, for N rows in M micro-batches, n_i kept tokens in row i (n and the sums are taken as
// at least 1, so an all-masked row or batch weighs nothing, not NaN). A row's loss term is
// rowWeight * sum over its kept tokens of the token loss, so micro-batches and shards add up.

/** 1 / (N * n_i): mean over each sequence's tokens, then over sequences. */
const perSequenceMean = (s: StepShape) => s.tokens.map((n) => 1 / (s.tokens.length * Math.max(n, 1)));

/** 1 / sum_i n_i: every token of the step counts the same. */
function perStepToken(s: StepShape): number[] {
  const total = Math.max(
    1,
    s.tokens.reduce((a, b) => a + b, 0),
  );
  return s.tokens.map(() => 1 / total);
}

/** 1 / (M * sum_{j in mb(i)} n_j): token mean within each micro-batch, micro-batches averaged. */
function perMicroBatchToken(s: StepShape): number[] {
  const M = Math.max(...s.microBatch) + 1;
  const perMicro = new Array<number>(M).fill(0);
  s.tokens.forEach((n, i) => (perMicro[s.microBatch[i]] += n));
  return s.microBatch.map((m) => 1 / (M * Math.max(1, perMicro[m])));
}

/** 1 / (N * max_completion_length): a constant, a token's weight never depends on its neighbours. */
function perMaxLength(s: StepShape): number[] {
  if (s.maxCompletionLength === undefined) throw new Error('dr_grpo divides by max_completion_length: pass maxCompletionLength');
  const L = s.maxCompletionLength;
  return s.tokens.map(() => 1 / (s.tokens.length * L));
}

/** x with no gradient flowing back through it (PyTorch's .detach()). */
export function detach<T extends tf.Tensor>(x: T): T {
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const v = args[0] as tf.Tensor;
    return { value: tf.clone(v), gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy) };
  });
  return f(x) as T;
}

export const LOSS_TYPES = {
  grpo: surrogate(
    "grpo: mean over each completion's tokens, then over completions (length bias: long answers' tokens weigh less)",
    perSequenceMean,
  ),
  dapo: surrogate('dapo: sum over every token / the tokens of the whole step (each token weighs the same; recommended)', perStepToken),
  bnpo: surrogate('bnpo: token mean within each micro-batch, micro-batches averaged', perMicroBatchToken),
  dr_grpo: surrogate(
    'dr_grpo: sum / (completions x max_completion_length), a constant (Dr. GRPO; pair with scale_rewards: none)',
    perMaxLength,
  ),
  /** MiniMax-M1: l = -sg(min(r, eps_high)) A log pi_theta, the ratio capped but the gradient never
   * clipped away; epsilon_high is the cap itself (ScaleRL: 5). Divided as dapo. */
  cispo: {
    doc: 'cispo: -sg(min(ratio, epsilon_high)) x advantage x log-prob, no clipping of the gradient, divided as dapo (MiniMax-M1)',
    tokenLoss: (t, o) => tf.neg(tf.mul(tf.mul(detach(tf.minimum(t.ratio, o.epsilonHigh)), t.adv), t.logprobs)),
    clipped: (t, o) => ({
      low: tf.cast(tf.zerosLike(t.ratio), 'bool'),
      high: tf.logicalAnd(tf.greater(t.ratio, o.epsilonHigh), tf.greater(t.adv, 0)),
    }),
    clipMetrics: (m) => ({ cispo_clip_ratio: m.high }),
    rowWeights: perStepToken,
    defaultEpsilonHigh: () => 5,
    problems: (s) =>
      s.epsilon_high !== null && s.epsilon_high <= 1
        ? [{ field: 'epsilon_high', message: `for cispo it caps the ratio itself and must be > 1 (got ${s.epsilon_high}; ScaleRL uses 5)` }]
        : [],
  },
} as const satisfies Record<string, LossTypeEntry>;

export type LossType = keyof typeof LOSS_TYPES;

/** The loss type names, in the table's order (the recipe's enum). */
export const LOSS_TYPE_NAMES = Object.keys(LOSS_TYPES) as [LossType, ...LossType[]];

/** The weight of each row of a step under a loss type (see the row weight functions above). */
export function lossRowWeights(lossType: LossType, s: StepShape): number[] {
  if (s.tokens.length === 0) return [];
  return LOSS_TYPES[lossType].rowWeights(s);
}
