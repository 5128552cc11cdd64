import * as tf from '@tensorflow/tfjs-core';

export type GrpoLossInputs = {
  /** log pi_theta of each completion token [B, T] (differentiated). */
  logprobs: tf.Tensor2D;
  /** log pi_old, the sampling policy [B, T]. */
  oldLogprobs: tf.Tensor2D;
  /** log pi_ref, the frozen reference [B, T]; null: no KL term. */
  refLogprobs: tf.Tensor2D | null;
  /** One advantage per completion [B]. */
  advantages: tf.Tensor1D | number[];
  /** 1 on completion tokens that count, 0 on padding [B, T]. */
  mask: tf.Tensor2D;
};

export type GrpoLossOptions = { epsilon: number; epsilonHigh: number; beta: number; lossType: 'grpo' | 'dapo' | 'bnpo' | 'dr_grpo' };

/** The clipped GRPO surrogate with a k3 KL penalty, per token:
 *   r = exp(logp - logp_old),  A = the completion's advantage
 *   l = -min(r A, clip(r, 1 - eps, 1 + eps_high) A) + beta * (exp(ref - logp) - (ref - logp) - 1)
 * aggregated by lossType: 'grpo' mean over each sequence's tokens then over sequences; 'dapo' and
 * 'bnpo' mean over all tokens of the batch; 'dr_grpo' masked sum / (B * T).
 * Also returns kl (masked token mean) and clipFraction (share of tokens clipped on the side that
 * binds: r < 1 - eps with A < 0, or r > 1 + eps_high with A > 0). */
export function grpoLoss(x: GrpoLossInputs, o: GrpoLossOptions): { loss: tf.Scalar; kl: tf.Scalar; clipFraction: tf.Scalar } {
  return tf.tidy(() => {
    const [B, T] = x.logprobs.shape;
    const adv = tf.reshape(Array.isArray(x.advantages) ? tf.tensor1d(x.advantages) : x.advantages, [B, 1]);
    const ratio = tf.exp(tf.sub(x.logprobs, x.oldLogprobs));
    const clipped = tf.clipByValue(ratio, 1 - o.epsilon, 1 + o.epsilonHigh);
    let perToken = tf.neg(tf.minimum(tf.mul(ratio, adv), tf.mul(clipped, adv)));
    let kl: tf.Tensor = tf.zerosLike(x.logprobs);
    if (x.refLogprobs && o.beta !== 0) {
      const d = tf.sub(x.refLogprobs, x.logprobs);
      kl = tf.sub(tf.sub(tf.exp(d), d), 1);
      perToken = tf.add(perToken, tf.mul(kl, o.beta));
    }
    const m = x.mask;
    const tokens = tf.maximum(tf.sum(m), 1);
    let loss: tf.Tensor;
    if (o.lossType === 'grpo') {
      const perSeq = tf.div(tf.sum(tf.mul(perToken, m), 1), tf.maximum(tf.sum(m, 1), 1));
      loss = tf.mean(perSeq);
    } else if (o.lossType === 'dr_grpo') {
      loss = tf.div(tf.sum(tf.mul(perToken, m)), B * T);
    } else {
      loss = tf.div(tf.sum(tf.mul(perToken, m)), tokens);
    }
    const low = tf.logicalAnd(tf.less(ratio, 1 - o.epsilon), tf.less(adv, 0));
    const high = tf.logicalAnd(tf.greater(ratio, 1 + o.epsilonHigh), tf.greater(adv, 0));
    const isClipped = tf.cast(tf.logicalOr(low, high), 'float32');
    return {
      loss: loss as tf.Scalar,
      kl: tf.div(tf.sum(tf.mul(kl, m)), tokens) as tf.Scalar,
      clipFraction: tf.div(tf.sum(tf.mul(isClipped, m)), tokens) as tf.Scalar,
    };
  });
}
