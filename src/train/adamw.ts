// AdamW (Loshchilov & Hutter): Adam with weight decay decoupled from the gradient. TF.js has none.
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
//   p = p - lr * ( (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps) + wd * p )
// Decay skips 1-D parameters (norm gains), as Hugging Face trainers do.
import * as tf from '@tensorflow/tfjs-core';

export type AdamWConfig = { beta1: number; beta2: number; eps: number; weightDecay: number };

export const ADAMW_DEFAULTS: AdamWConfig = { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 };

export type AdamWState = { step: number; m: Record<string, Float32Array>; v: Record<string, Float32Array> };

export class AdamW {
  step = 0;
  private readonly m = new Map<string, tf.Variable>();
  private readonly v = new Map<string, tf.Variable>();

  constructor(
    private readonly params: Record<string, tf.Variable>,
    readonly config: AdamWConfig = ADAMW_DEFAULTS,
  ) {
    // Moments only for what trains: a frozen weight (LoRA's base, a MoE router's correction bias)
    // would hold two model-sized buffers for nothing.
    for (const [name, p] of Object.entries(params)) {
      if (!p.trainable) continue;
      this.m.set(name, tf.variable(tf.zerosLike(p), false));
      this.v.set(name, tf.variable(tf.zerosLike(p), false));
    }
  }

  /** One update with learning rate `lr` from gradients keyed by parameter name. */
  apply(grads: Record<string, tf.Tensor>, lr: number): void {
    const { beta1, beta2, eps, weightDecay } = this.config;
    this.step++;
    const c1 = 1 - Math.pow(beta1, this.step),
      c2 = 1 - Math.pow(beta2, this.step);
    // One parameter's temporaries at a time: a tidy around the whole loop would hold about a dozen
    // model-sized temporaries at its end.
    for (const [name, p] of Object.entries(this.params)) {
      const g = grads[name];
      const m = this.m.get(name),
        v = this.v.get(name);
      if (!g || !m || !v) continue;
      tf.tidy(() => {
        const mNew = tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1));
        const vNew = tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2));
        m.assign(mNew);
        v.assign(vNew);
        let update = tf.div(tf.mul(mNew, 1 / c1), tf.add(tf.sqrt(tf.mul(vNew, 1 / c2)), eps));
        if (weightDecay > 0 && p.rank > 1) update = tf.add(update, tf.mul(p, weightDecay));
        p.assign(tf.sub(p, tf.mul(update, lr)));
      });
    }
  }

  state(): AdamWState {
    const m: Record<string, Float32Array> = {},
      v: Record<string, Float32Array> = {};
    for (const [k, t] of this.m) m[k] = t.dataSync() as Float32Array;
    for (const [k, t] of this.v) v[k] = t.dataSync() as Float32Array;
    return { step: this.step, m, v };
  }

  load(state: AdamWState): void {
    this.step = state.step;
    tf.tidy(() => {
      for (const [k, t] of this.m) if (state.m[k]) t.assign(tf.tensor(state.m[k], t.shape));
      for (const [k, t] of this.v) if (state.v[k]) t.assign(tf.tensor(state.v[k], t.shape));
    });
  }

  dispose(): void {
    for (const t of [...this.m.values(), ...this.v.values()]) t.dispose();
  }
}
