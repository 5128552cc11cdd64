import * as tf from '@tensorflow/tfjs-core';

/** Mean next-token cross-entropy over the positions whose weight is 1:
 *   loss = sum_i w_i * (logsumexp(z_i) - z_i[y_i]) / sum_i w_i
 * logits [N, V], targets int32 [N], weights [N] (null = all ones). */
export function crossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D, weights: tf.Tensor1D | null = null): tf.Scalar {
  return tf.tidy(() => {
    const V = logits.shape[1];
    const lse = tf.logSumExp(logits, -1);
    const picked = tf.sum(tf.mul(logits, tf.oneHot(targets, V)), -1);
    const nll = tf.sub(lse, picked);
    if (!weights) return tf.mean(nll) as tf.Scalar;
    return tf.div(tf.sum(tf.mul(nll, weights)), tf.maximum(tf.sum(weights), 1)) as tf.Scalar;
  });
}
