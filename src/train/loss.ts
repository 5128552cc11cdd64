import * as tf from '@tensorflow/tfjs-core';

/** log softmax(logits)[target] per row: logits [N, V], targets int32 [N] -> [N].
 * With a hand-written gradient, d/dlogits = dy * (onehot(target) - softmax(logits)): autodiff of
 * logSumExp goes through max/equal/select kernels that cost more than the whole forward here. */
export function tokenLogprobs(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Tensor1D {
  const V = logits.shape[1];
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [z, save] = args as [tf.Tensor, tf.GradSaveFunc];
    const lse = tf.logSumExp(z, -1, true); // [N, 1]
    const onehot = tf.oneHot(targets, V);
    const lp = tf.sub(tf.sum(tf.mul(z, onehot), -1), tf.reshape(lse, [-1]));
    save([z, lse, onehot]);
    return {
      value: lp,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [zs, lses, oh] = saved;
        return tf.mul(tf.sub(oh, tf.exp(tf.sub(zs, lses))), tf.reshape(dy, [-1, 1]));
      },
    };
  });
  return f(logits) as tf.Tensor1D;
}

/** Mean next-token cross-entropy over the positions whose weight is nonzero:
 *   loss = -sum_i w_i * log softmax(z_i)[y_i] / sum_i w_i
 * logits [N, V], targets int32 [N], weights [N] (null = all ones). */
export function crossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D, weights: tf.Tensor1D | null = null): tf.Scalar {
  return tf.tidy(() => {
    const lp = tokenLogprobs(logits, targets);
    if (!weights) return tf.neg(tf.mean(lp)) as tf.Scalar;
    return tf.div(tf.neg(tf.sum(tf.mul(lp, weights))), tf.maximum(tf.sum(weights), 1)) as tf.Scalar;
  });
}
