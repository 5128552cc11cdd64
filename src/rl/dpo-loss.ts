import * as tf from '@tensorflow/tfjs-core';

export type DpoInputs = {
  /** Log-probability of each chosen / rejected response [B], under the policy and the reference, as
   * `sequenceLogprobs` aggregates it for the loss type: summed over the response's tokens (sigmoid),
   * averaged over them (ipo). */
  policyChosen: tf.Tensor1D;
  policyRejected: tf.Tensor1D;
  refChosen: tf.Tensor1D;
  refRejected: tf.Tensor1D;
};

/** A response's log-probability for DPO from its per-token log-probs [N, T] and a 0/1 mask [N, T] of
 * its tokens, as TRL's DPOTrainer computes it: the sum over the response's tokens for 'sigmoid', and
 * for 'ipo' that sum divided by the number of response tokens (the mean log-prob per token), so the
 * IPO margin h below is a per-token log-ratio and its target 1 / (2 beta) does not depend on the
 * responses' lengths (Azar et al.). Policy and reference alike. [N]. A row with no token gives 0. */
export function sequenceLogprobs(logprobs: tf.Tensor2D, mask: tf.Tensor2D, lossType: 'sigmoid' | 'ipo'): tf.Tensor1D {
  return tf.tidy(() => {
    const sum = tf.sum(tf.mul(logprobs, mask), 1) as tf.Tensor1D;
    return lossType === 'ipo' ? (tf.div(sum, tf.maximum(tf.sum(mask, 1), 1)) as tf.Tensor1D) : sum;
  });
}

/** DPO, as TRL computes it, on sequence log-probs from `sequenceLogprobs` (summed for sigmoid,
 * length-normalised for ipo). With h = (pc - rc) - (pr - rr), the log-ratio margin:
 *   sigmoid: loss = mean(-log sigmoid(beta h))       (Rafailov et al. 2023)
 *   ipo:     loss = mean((h - 1 / (2 beta))^2)       (Azar et al. 2023)
 * chosenRewards = beta (pc - rc), rejectedRewards = beta (pr - rr); accuracy = share with
 * chosenRewards > rejectedRewards. -log sigmoid(z) is written softplus(-z): tf.logSigmoid has no
 * working gradient in TF.js 4.22. */
export function dpoLoss(
  x: DpoInputs,
  o: { beta: number; lossType: 'sigmoid' | 'ipo' },
): { loss: tf.Scalar; chosenRewards: tf.Tensor1D; rejectedRewards: tf.Tensor1D; accuracy: tf.Scalar } {
  return tf.tidy(() => {
    const chosen = tf.sub(x.policyChosen, x.refChosen);
    const rejected = tf.sub(x.policyRejected, x.refRejected);
    const h = tf.sub(chosen, rejected);
    const loss = o.lossType === 'ipo' ? tf.mean(tf.square(tf.sub(h, 1 / (2 * o.beta)))) : tf.mean(tf.softplus(tf.neg(tf.mul(h, o.beta))));
    const chosenRewards = tf.mul(chosen, o.beta) as tf.Tensor1D;
    const rejectedRewards = tf.mul(rejected, o.beta) as tf.Tensor1D;
    return {
      loss: loss as tf.Scalar,
      chosenRewards,
      rejectedRewards,
      accuracy: tf.mean(tf.cast(tf.greater(chosenRewards, rejectedRewards), 'float32')) as tf.Scalar,
    };
  });
}
