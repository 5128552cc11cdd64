// The pieces of a training step: gradients of a loss, accumulation over micro-batches, global-norm
// clipping. Each caller (pretrain, sft, dpo, grpo) brings its own loss.
import * as tf from '@tensorflow/tfjs-core';
import { gradientsFreeing } from '../engine/backprop.ts';

export type Grads = Record<string, tf.Tensor>;

/** Loss value and gradients of `loss` with respect to the trainable `params` (keyed by parameter name;
 * a non-trainable one, such as a MoE router's correction bias, gets none; one the loss does not reach
 * gets zeros). */
export function lossAndGrads(params: Record<string, tf.Variable>, loss: () => tf.Scalar): { loss: number; grads: Grads } {
  const names = Object.keys(params).filter((n) => params[n].trainable);
  const { value, grads } = gradientsFreeing(
    loss,
    names.map((n) => params[n]),
  );
  if (value.rank !== 0) throw new Error(`the loss must be a scalar, not a rank-${value.rank} tensor`);
  const out: Grads = {};
  names.forEach((n, i) => {
    if (grads[i]) out[n] = grads[i];
  });
  // A parameter the loss did not reach (a MoE expert no token chose) gets a zero gradient: every
  // micro-batch then has the same keys to accumulate and to clip.
  for (const n of names) out[n] ??= tf.zerosLike(params[n]);
  const lossValue = value.dataSync()[0];
  value.dispose();
  return { loss: lossValue, grads: out };
}

/** acc += g, freeing g (and the old acc). Starts from null. */
export function accumulate(acc: Grads | null, g: Grads): Grads {
  if (!acc) return g;
  for (const k of Object.keys(g)) {
    const sum = tf.add(acc[k], g[k]);
    acc[k].dispose();
    g[k].dispose();
    acc[k] = sum;
  }
  return acc;
}

/** Scales gradients in place so their global L2 norm is at most maxNorm (no clipping when maxNorm <= 0).
 * Returns the norm before clipping. `scale` first multiplies every gradient (1 / accumulation steps). */
export function clipGradients(grads: Grads, maxNorm: number, scale = 1): number {
  const names = Object.keys(grads);
  const sq = tf.tidy(() => tf.addN(names.map((n) => tf.sum(tf.square(grads[n])))));
  const norm = Math.sqrt(sq.dataSync()[0]) * scale;
  sq.dispose();
  const factor = scale * (maxNorm > 0 && norm > maxNorm ? maxNorm / (norm + 1e-6) : 1);
  if (factor !== 1) {
    for (const n of names) {
      const g = tf.mul(grads[n], factor);
      grads[n].dispose();
      grads[n] = g;
    }
  }
  return norm;
}

export function disposeGrads(grads: Grads | null): void {
  if (grads) for (const g of Object.values(grads)) g.dispose();
}
