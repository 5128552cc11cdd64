import * as tf from '@tensorflow/tfjs-core';

export type DpoInputs = {
  /** Summed log-probabilities of each chosen / rejected response [B], under the policy and the reference. */
  policyChosen: tf.Tensor1D;
  policyRejected: tf.Tensor1D;
  refChosen: tf.Tensor1D;
  refRejected: tf.Tensor1D;
};

/** DPO, as TRL computes it. With h = (pc - rc) - (pr - rr), the log-ratio margin:
 *   sigmoid: loss = mean(-log sigmoid(beta h))       (Rafailov et al. 2023)
 *   ipo:     loss = mean((h - 1 / (2 beta))^2)       (Azar et al. 2023)
 * chosenRewards = beta (pc - rc), rejectedRewards = beta (pr - rr); accuracy = share with
 * chosenRewards > rejectedRewards. -log sigmoid(z) is written softplus(-z): tf.logSigmoid has no
 * working gradient in TF.js 4.22. */
export function dpoLoss(x: DpoInputs, o: { beta: number; lossType: 'sigmoid' | 'ipo' }): { loss: tf.Scalar; chosenRewards: tf.Tensor1D; rejectedRewards: tf.Tensor1D; accuracy: tf.Scalar } {
  return tf.tidy(() => {
    const chosen = tf.sub(x.policyChosen, x.refChosen);
    const rejected = tf.sub(x.policyRejected, x.refRejected);
    const h = tf.sub(chosen, rejected);
    const loss = o.lossType === 'ipo' ? tf.mean(tf.square(tf.sub(h, 1 / (2 * o.beta)))) : tf.mean(tf.softplus(tf.neg(tf.mul(h, o.beta))));
    const chosenRewards = tf.mul(chosen, o.beta) as tf.Tensor1D;
    const rejectedRewards = tf.mul(rejected, o.beta) as tf.Tensor1D;
    return { loss: loss as tf.Scalar, chosenRewards, rejectedRewards, accuracy: tf.mean(tf.cast(tf.greater(chosenRewards, rejectedRewards), 'float32')) as tf.Scalar };
  });
}
