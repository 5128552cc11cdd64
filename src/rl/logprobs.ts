import * as tf from '@tensorflow/tfjs-core';

/** log pi(target) per token: log softmax(logits)[b, t, targets[b, t]], logits [B, T, V] and targets
 * int32 [B, T] -> [B, T]. The forward pass gathers from the flat logits (no one-hot of the batch);
 * the gradient is written by hand, d/dlogits = dy * (onehot(target) - softmax(logits)), because
 * autodiff of gather needs UnsortedSegmentSum (missing on the wasm backend) and autodiff of
 * logSumExp goes through max/equal/select kernels that cost more than the forward pass. */
export function tokenLogprobs(logits: tf.Tensor3D, targets: tf.Tensor2D): tf.Tensor2D {
  const [B, T, V] = logits.shape;
  const N = B * T;
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [z3, save] = args as [tf.Tensor, tf.GradSaveFunc];
    const z = tf.reshape(z3, [N, V]);
    const lse = tf.logSumExp(z, -1, true); // [N, 1]
    const y = tf.reshape(tf.cast(targets, 'int32'), [N]);
    const flat = tf.add(tf.mul(tf.range(0, N, 1, 'int32'), tf.scalar(V, 'int32')), y);
    const picked = tf.gather(tf.reshape(z, [N * V]), flat);
    // Saved for the backward pass, which may run after the caller disposed `targets`.
    save([z, lse, y]);
    return {
      value: tf.reshape(tf.sub(picked, tf.reshape(lse, [N])), [B, T]),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [zs, lses, ys] = saved;
        // int32 then cast: the wasm backend's OneHot (4.22) writes integer bits into a float32 output.
        const onehot = tf.cast(tf.oneHot(ys, V), 'float32');
        const d = tf.mul(tf.sub(onehot, tf.exp(tf.sub(zs, lses))), tf.reshape(dy, [N, 1]));
        return tf.reshape(d, [B, T, V]);
      },
    };
  });
  return f(logits) as tf.Tensor2D;
}

/** Entropy of the next-token distribution per position: H = logSumExp(z) - sum softmax(z) z,
 * logits [B, T, V] -> [B, T]. For logging (no custom gradient). */
export function tokenEntropy(logits: tf.Tensor3D): tf.Tensor2D {
  return tf.tidy(() => {
    const lse = tf.logSumExp(logits, -1, true);
    const p = tf.exp(tf.sub(logits, lse));
    return tf.sub(tf.squeeze(lse, [-1]), tf.sum(tf.mul(p, logits), -1)) as tf.Tensor2D;
  });
}

/** sum(x * mask) / sum(mask) over all elements, or along `axis`; an all-zero mask gives 0, not NaN. */
export function maskedMean(x: tf.Tensor, mask: tf.Tensor, axis?: number): tf.Tensor {
  return tf.tidy(() => tf.div(tf.sum(tf.mul(x, mask), axis), tf.maximum(tf.sum(mask, axis), 1e-8)));
}
