// The attention block of the llama family: q, k and v from one fused projection (with biases in
// qwen2, or where attention_bias says), qwen3's RMSNorm over each head of q and of k, the rotary
// embedding, grouped-query causal attention (fused WebAssembly kernels where the head size allows,
// see engine/kernels/attention.ts), and the output projection. Packed sequences (several documents
// in a row) bring per-token rotary tables and a document mask, which takes the composed path
// (composedAttention with a mask: the fused kernels are causal-only).
import * as tf from '@tensorflow/tfjs-core';
import { attention, cachedAttention, composedAttention, rmsNorm, rope as ropeKernel, type KVCache } from '../engine/kernels/index.ts';
import { type ModelConfig, biases, hasQkNorm, headDim } from './config.ts';
import { type Weight, linear } from './linear.ts';

/** One layer's attention weights; the optional ones exist only in the families that have them. */
export type AttentionWeights = {
  wqkv: Weight;
  bqkv?: tf.Tensor;
  q_norm?: tf.Tensor;
  k_norm?: tf.Tensor;
  wo: Weight;
  bo?: tf.Tensor;
};

/** Internal parameter names and shapes of one layer's attention under `prefix`: the fused q/k/v
 * projection (and its bias), qwen3's q/k norms, the output projection (and its bias). */
export function attentionShapes(c: ModelConfig, prefix: string): Record<string, number[]> {
  const C = c.hidden_size,
    D = headDim(c),
    H = c.num_attention_heads,
    Hkv = c.num_key_value_heads,
    b = biases(c);
  const s: Record<string, number[]> = { [prefix + 'wqkv']: [C, (H + 2 * Hkv) * D] };
  if (b.qkv) s[prefix + 'bqkv'] = [(H + 2 * Hkv) * D];
  if (hasQkNorm(c)) {
    s[prefix + 'q_norm'] = [D];
    s[prefix + 'k_norm'] = [D];
  }
  s[prefix + 'wo'] = [H * D, C];
  if (b.o) s[prefix + 'bo'] = [C];
  return s;
}

/** x: normed hidden states [B*T, C] -> the block's output [B*T, C]. cos and sin: the rotary tables,
 * [1, T, 1, D] for positions 0..T-1 of every row, or [B, T, 1, D] with a position per token (packed
 * rows). `mask` ([B, 1, T, T], additive: 0 where a query may see a key, -1e9 where not) replaces the
 * causal mask: packed rows, causal within each document only. With a cache, the positions continue
 * the cached ones and this layer's keys and values join it. */
export function selfAttention(
  x: tf.Tensor2D,
  w: AttentionWeights,
  c: ModelConfig,
  shape: { B: number; T: number; cos: tf.Tensor4D; sin: tf.Tensor4D; mask?: tf.Tensor4D },
  cache?: { cache: KVCache; layer: number },
): tf.Tensor2D {
  const { B, T, cos, sin, mask } = shape;
  const D = headDim(c),
    H = c.num_attention_heads,
    Hkv = c.num_key_value_heads;
  const heads = tf.reshape(linear(x, w.wqkv, w.bqkv), [B, T, H + 2 * Hkv, D]) as tf.Tensor4D;
  const part = (t: tf.Tensor4D, from: number, n: number) => tf.slice(t, [0, 0, from, 0], [B, T, n, D]) as tf.Tensor4D;
  // Tables per token: the rotation is pointwise per (token, head), so [B, T, h, D] rotates as one row
  // of B*T tokens [1, B*T, h, D] against [B*T, D] tables (the fused kernel's shape).
  const rope = (t: tf.Tensor4D): tf.Tensor4D => {
    if (cos.shape[0] === 1) return ropeKernel(t, cos, sin);
    const h = t.shape[2];
    return tf.reshape(ropeKernel(tf.reshape(t, [1, B * T, h, D]), cos, sin), [B, T, h, D]);
  };
  let q: tf.Tensor4D, k: tf.Tensor4D;
  if (w.q_norm && w.k_norm) {
    q = rope(rmsNorm(part(heads, 0, H), w.q_norm, c.rms_norm_eps));
    k = rope(rmsNorm(part(heads, H, Hkv), w.k_norm, c.rms_norm_eps));
  } else {
    const qk = rope(part(heads, 0, H + Hkv)); // q and k in one rotation
    q = part(qk, 0, H);
    k = part(qk, H, Hkv);
  }
  const v = part(heads, H + Hkv, Hkv);
  const scale = 1 / Math.sqrt(D);
  if (mask && cache) throw new Error('selfAttention: a document mask (packed rows) cannot be used with a KV cache');
  const att = mask
    ? composedAttention(q, k, v, scale, mask)
    : cache
      ? cachedAttention(q, k, v, cache.cache, cache.layer, scale)
      : attention(q, k, v, scale);
  return linear(tf.reshape(att, [B * T, H * D]), w.wo, w.bo);
}
