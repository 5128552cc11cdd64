import * as tf from '@tensorflow/tfjs-core';

/** Estimators of KL(pi || pi_ref) from one sampled token (Schulman, "Approximating KL divergence"),
 * with d = log pi(token) - log pi_ref(token):
 *   k1 = d                      unbiased, can be negative per token (TRL's RLOO reward penalty)
 *   k2 = d^2 / 2                biased, low variance, >= 0
 *   k3 = exp(-d) - 1 + d        unbiased, >= 0 (DeepSeekMath's GRPO penalty; TRL's default)
 * `logRatio` is d, already zeroed where the token does not count (so exp never sees junk). */
export type KlEstimator = 'k1' | 'k2' | 'k3';

export function klEstimate(logRatio: tf.Tensor, kind: KlEstimator): tf.Tensor {
  return tf.tidy(() => {
    if (kind === 'k1') return tf.clone(logRatio);
    if (kind === 'k2') return tf.mul(tf.square(logRatio), 0.5);
    return tf.add(tf.sub(tf.exp(tf.neg(logRatio)), 1), logRatio);
  });
}
