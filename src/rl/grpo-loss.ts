// The GRPO-family policy loss of one batch of completions (DeepSeekMath; DAPO; Dr. GRPO; GSPO;
// CISPO), as TRL computes it, written so that batches of one optimiser step add up (see
// loss-types.ts, which holds what each loss type does). Shapes: B completions, T completion
// positions (right-padded).
import * as tf from '@tensorflow/tfjs-core';
import { type KlEstimator, klEstimate } from './kl.ts';
import { type LossType, LOSS_TYPES, lossRowWeights } from './loss-types.ts';

export type GrpoLossInputs = {
  /** log pi_theta of each completion token [B, T] (differentiated). */
  logprobs: tf.Tensor2D;
  /** log pi_old, the sampling policy [B, T]. */
  oldLogprobs: tf.Tensor2D;
  /** log pi_ref, the frozen reference [B, T]; null: no KL term. */
  refLogprobs: tf.Tensor2D | null;
  /** One advantage per completion [B]. */
  advantages: tf.Tensor1D | number[];
  /** 1 on completion tokens that count, 0 on padding and dropped completions [B, T]. */
  mask: tf.Tensor2D;
  /** Entropy of the policy's next-token distribution at each position [B, T]: logged, and the
   * high-entropy token mask (topEntropyQuantile < 1). Null: neither. */
  entropies?: tf.Tensor2D | null;
  /** Each row's loss weight over the whole optimiser step (lossRowWeights); default: this batch is
   * the whole step. */
  rowWeights?: readonly number[];
  /** Each kept token's share in the metrics (1 / the step's kept tokens); default: this batch's. */
  metricWeight?: number;
  /** Per-token importance weights [B, T] multiplying the policy term (not the KL): the truncated IS
   * correction of a rollout engine's mismatch, min(pi_train / pi_rollout, C). Default: none. */
  isWeights?: tf.Tensor2D | null;
};

export type GrpoLossOptions = {
  epsilon: number;
  /** Upper clip: the ratio is clipped to [1 - epsilon, 1 + epsilonHigh]; for cispo the ratio's cap itself. */
  epsilonHigh: number;
  beta: number;
  lossType: LossType;
  /** Cap of the unclipped ratio in the surrogate (two-sided clipping); null = none. */
  delta?: number | null;
  klEstimator?: KlEstimator;
  /** 'token' (GRPO): one ratio per token; 'sequence' (GSPO): exp of the mean log-ratio of the sequence. */
  importanceSamplingLevel?: 'token' | 'sequence';
  /** Train only on tokens whose entropy is at or above this quantile's share from the top (1 = all). */
  topEntropyQuantile?: number;
  /** The stage's max_completion_length: dr_grpo divides by it, and needs it when rowWeights are not given. */
  maxCompletionLength?: number;
};

/** Scalar terms of the step's metrics: token means over the kept tokens when summed over the step.
 * `clipMetrics` holds the clip fractions under the loss type's own log names (loss-types.ts). */
export type GrpoLossMetrics = {
  kl: tf.Scalar;
  entropy?: tf.Scalar;
  clipLow: tf.Scalar;
  clipHigh: tf.Scalar;
  clipRegion: tf.Scalar;
  clipMetrics: Record<string, tf.Scalar>;
};

/** Per token, with r the importance ratio and A the completion's advantage, l is the loss type's
 * token loss (LOSS_TYPES[lossType].tokenLoss), e.g.
 *   clipped objectives (grpo, dapo, bnpo, dr_grpo):
 *     l = -min(min(r, delta) A, clip(r, 1 - eps, 1 + eps_high) A)
 *   cispo (MiniMax-M1): l = -sg(min(r, eps_high)) A log pi_theta
 *   then l *= high-entropy mask (when topEntropyQuantile < 1), l *= the IS weight (isWeights, when
 *   given), and l += beta * KL estimate.
 * The loss is sum_b rowWeight_b * sum_t l[b, t] mask[b, t]. Log-ratios are zeroed where the mask
 * is 0 BEFORE any exp: a padded position's log-prob is junk and must never reach exp.
 * Clip metrics count tokens clipped on the side that binds: r < 1 - eps with A < 0 (low), r > 1 + eps_high with A > 0 (high).
 * With sequence-level ratios (GSPO) every token of a completion shares its sequence's flag, so the
 * fractions are token-weighted (TRL logs the share of sequences; the two agree when lengths do). */
export function grpoLoss(x: GrpoLossInputs, o: GrpoLossOptions): { loss: tf.Scalar } & GrpoLossMetrics {
  return tf.tidy((): { loss: tf.Scalar } & GrpoLossMetrics => {
    const B = x.logprobs.shape[0];
    const m = x.mask;
    const keep = tf.greater(m, 0);
    const zeros = tf.zerosLike(x.logprobs);
    const adv = tf.reshape(Array.isArray(x.advantages) ? tf.tensor1d(x.advantages) : x.advantages, [B, 1]); // [B, 1]
    const logRatio = tf.where(keep, tf.sub(x.logprobs, x.oldLogprobs), zeros); // [B, T], 0 where masked
    const logWeight =
      o.importanceSamplingLevel === 'sequence'
        ? tf.div(tf.sum(logRatio, 1, true), tf.maximum(tf.sum(m, 1, true), 1)) // [B, 1] (GSPO)
        : logRatio;
    const ratio = tf.mul(tf.exp(logWeight), tf.onesLike(x.logprobs)); // [B, T]
    const type = LOSS_TYPES[o.lossType];
    let perToken = type.tokenLoss({ ratio, adv, logprobs: x.logprobs }, o);
    const q = o.topEntropyQuantile ?? 1;
    const entropyMask = x.entropies && q < 1 ? highEntropyMask(x.entropies, m, q) : null;
    if (entropyMask) perToken = tf.mul(perToken, entropyMask);
    if (x.isWeights) perToken = tf.mul(perToken, x.isWeights); // as TRL, before the KL term is added
    let kl: tf.Tensor = zeros;
    if (x.refLogprobs && o.beta !== 0) {
      kl = klEstimate(tf.where(keep, tf.sub(x.logprobs, x.refLogprobs), zeros), o.klEstimator ?? 'k3');
      perToken = tf.add(perToken, tf.mul(kl, o.beta));
    }
    const weights =
      x.rowWeights ??
      lossRowWeights(o.lossType, {
        tokens: tf.sum(m, 1).arraySync() as number[],
        microBatch: new Array<number>(B).fill(0),
        maxCompletionLength: o.maxCompletionLength,
      });
    const rowSums = tf.sum(tf.mul(perToken, m), 1); // [B]
    const loss = tf.sum(tf.mul(rowSums, tf.tensor1d(weights as number[]))) as tf.Scalar;
    const share = x.metricWeight ?? 1 / Math.max(1, tf.sum(m).dataSync()[0]);
    const metric = (t: tf.Tensor) => tf.mul(tf.sum(tf.mul(t, m)), share) as tf.Scalar;
    const { low, high } = type.clipped({ ratio, adv }, o);
    const f = (b: tf.Tensor) => tf.cast(b, 'float32');
    const clipLow = metric(f(low)),
      clipHigh = metric(f(high)),
      clipRegion = metric(f(tf.logicalOr(low, high)));
    return {
      loss,
      kl: metric(kl),
      ...(x.entropies ? { entropy: metric(x.entropies) } : {}),
      clipLow,
      clipHigh,
      clipRegion,
      clipMetrics: type.clipMetrics({ low: clipLow, high: clipHigh, region: clipRegion }),
    };
  });
}

/** 1 on the kept tokens whose entropy is at least the (1 - q) quantile of the kept tokens'
 * entropies (linear interpolation, as torch.quantile), 0 elsewhere: the top q share of "forking"
 * tokens (Wang et al. 2025, "Beyond the 80/20 rule"). */
export function highEntropyMask(entropies: tf.Tensor2D, mask: tf.Tensor2D, q: number): tf.Tensor2D {
  return tf.tidy(() => {
    const e = entropies.dataSync(),
      k = mask.dataSync();
    const kept = Array.from(e)
      .filter((_, i) => k[i] > 0)
      .sort((a, b) => a - b);
    if (!kept.length) return tf.zerosLike(mask);
    const threshold = quantile(kept, 1 - q);
    return tf.mul(tf.cast(tf.greaterEqual(entropies, threshold), 'float32'), tf.cast(tf.greater(mask, 0), 'float32')) as tf.Tensor2D;
  });
}

/** The p-quantile of sorted values, interpolating linearly between neighbours (torch.quantile's default). */
export function quantile(sorted: readonly number[], p: number): number {
  const pos = p * (sorted.length - 1);
  const lo = Math.floor(pos),
    hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}
