// Causal multi-head attention with grouped-query heads, in the [batch, time, heads, head_dim]
// layout the projections produce, so the model needs no transposes around it.
// This file holds the portable version composed of TensorFlow.js ops; fast kernels for the
// WebAssembly backend replace it where registered.
import * as tf from '@tensorflow/tfjs-core';

/** q: [B, T, H, D]; k, v: [B, S, Hkv, D] with H a multiple of Hkv and S >= T. Query t sits at
 * position S - T + t and sees keys 0..S-T+t. Returns [B, T, H, D]. Differentiable. */
export function attention(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, scale: number): tf.Tensor4D {
  return tf.tidy(() => {
    const [B, T, H, D] = q.shape;
    const [, S, Hkv] = k.shape;
    const rep = H / Hkv;
    const expand = (x: tf.Tensor4D): tf.Tensor4D => {
      const t = tf.transpose(x, [0, 2, 1, 3]); // [B, Hkv, S, D]
      if (rep === 1) return t;
      return tf.reshape(tf.tile(tf.reshape(t, [B, Hkv, 1, S, D]), [1, 1, rep, 1, 1]), [B, H, S, D]);
    };
    const qh = tf.transpose(q, [0, 2, 1, 3]); // [B, H, T, D]
    const scores = tf.mul(tf.matMul(qh, expand(k), false, true), scale); // [B, H, T, S]
    const allowed = tf.linalg.bandPart(tf.ones([T, S]), -1, S - T); // key j <= S - T + t
    const masked = tf.add(scores, tf.mul(tf.sub(1, allowed), -1e9));
    const out = tf.matMul(tf.softmax(masked), expand(v)); // [B, H, T, D]
    return tf.transpose(out, [0, 2, 1, 3]) as tf.Tensor4D;
  });
}

/** Keys and values of earlier positions for incremental decoding, one entry per layer. */
export class KVCache {
  readonly keys: (tf.Tensor4D | null)[];
  readonly values: (tf.Tensor4D | null)[];

  constructor(readonly layers: number) {
    this.keys = new Array(layers).fill(null);
    this.values = new Array(layers).fill(null);
  }

  /** Number of positions held. */
  get length(): number {
    return this.keys[0]?.shape[1] ?? 0;
  }

  dispose(): void {
    for (const t of [...this.keys, ...this.values]) t?.dispose();
    this.keys.fill(null);
    this.values.fill(null);
  }
}

/** Appends kNew, vNew ([B, T, Hkv, D]) to layer `layer` of the cache, then attends q ([B, T, H, D])
 * over every cached position. Inference only (no gradient). */
export function cachedAttention(
  q: tf.Tensor4D,
  kNew: tf.Tensor4D,
  vNew: tf.Tensor4D,
  cache: KVCache,
  layer: number,
  scale: number,
): tf.Tensor4D {
  const prevK = cache.keys[layer], prevV = cache.values[layer];
  const k = prevK ? tf.concat([prevK, kNew], 1) : tf.clone(kNew);
  const v = prevV ? tf.concat([prevV, vNew], 1) : tf.clone(vNew);
  prevK?.dispose();
  prevV?.dispose();
  cache.keys[layer] = tf.keep(k);
  cache.values[layer] = tf.keep(v);
  return attention(q, k, v, scale);
}
