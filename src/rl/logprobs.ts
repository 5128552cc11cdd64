import * as tf from '@tensorflow/tfjs-core';

/** log pi(target) per position: log softmax(logits)[n, targets[n]], logits [N, V] and int32
 * targets [N] -> [N]. The one token log-prob of r1kit: the language-model loss, the GRPO and DPO
 * log-probs and the reference's all go through it. The forward pass gathers from the flat logits
 * (no [N, V] one-hot); the gradient is written by hand, d/dlogits = dy * (onehot(target) -
 * softmax(logits)), because autodiff of gather needs UnsortedSegmentSum (missing on the wasm
 * backend) and autodiff of logSumExp goes through max/equal/select kernels that cost more than the
 * forward pass. */
export function tokenLogprobs(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Tensor1D {
  const [N, V] = logits.shape;
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [z, save] = args as [tf.Tensor2D, tf.GradSaveFunc];
    const lse = tf.logSumExp(z, -1, true); // [N, 1]
    const y = tf.cast(targets, 'int32'); // [N]
    const flat = tf.add(tf.mul(tf.range(0, N, 1, 'int32'), tf.scalar(V, 'int32')), y); // [N]
    const picked = tf.gather(tf.reshape(z, [N * V]), flat); // [N]
    // Saved for the backward pass, which may run after the caller disposed `targets`.
    save([z, lse, y]);
    return {
      value: tf.sub(picked, tf.reshape(lse, [N])),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [zs, lses, ys] = saved;
        // int32 then cast: the wasm backend's OneHot (4.22) writes integer bits into a float32 output.
        const onehot = tf.cast(tf.oneHot(ys, V), 'float32'); // [N, V]
        return tf.mul(tf.sub(onehot, tf.exp(tf.sub(zs, lses))), tf.reshape(dy, [N, 1]));
      },
    };
  });
  return f(logits) as tf.Tensor1D;
}

/** Entropy of the next-token distribution at each position: H = logSumExp(z) - sum softmax(z) z,
 * logits [N, V] -> [N]. For metrics and the high-entropy token mask (the losses take no gradient
 * through it). */
export function tokenEntropy(logits: tf.Tensor2D): tf.Tensor1D {
  return tf.tidy(() => {
    const lse = tf.logSumExp(logits, -1, true); // [N, 1]
    const p = tf.exp(tf.sub(logits, lse)); // [N, V]
    return tf.sub(tf.reshape(lse, [-1]), tf.sum(tf.mul(p, logits), -1)) as tf.Tensor1D;
  });
}
