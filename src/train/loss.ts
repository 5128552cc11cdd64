import * as tf from '@tensorflow/tfjs-core';
import { tokenLogprobs } from '../rl/logprobs.ts';

/** Next-token cross-entropy as a term of a sum (see sharded.ts):
 *   loss = -sum_i w_i * log softmax(z_i)[y_i] / normaliser
 * logits [N, V], targets int32 [N], weights [N] (null = all ones). With the default normaliser,
 * sum(w) (at least 1), it is the weighted mean over these positions. */
export function crossEntropy(
  logits: tf.Tensor2D,
  targets: tf.Tensor1D,
  weights: tf.Tensor1D | null = null,
  normaliser?: number,
): tf.Scalar {
  return tf.tidy(() => {
    const lp = tokenLogprobs(logits, targets); // [N]
    const total = weights ? tf.sum(tf.mul(lp, weights)) : tf.sum(lp);
    const n = normaliser ?? (weights ? tf.maximum(tf.sum(weights), 1) : logits.shape[0]);
    return tf.div(tf.neg(total), n) as tf.Scalar;
  });
}
