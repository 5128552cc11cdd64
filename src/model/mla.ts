// Multi-head latent attention (DeepSeek-V2/V3): queries through a low-rank compression (q_lora_rank,
// or one projection), keys and values expanded per head from a shared latent of kv_lora_rank numbers
// per token, plus one rotated key of qk_rope_head_dim shared by all heads. A head's query and key are
// [nope part | rope part]; only the rope parts rotate. DeepSeek's checkpoints hold the rope parts in
// interleaved pairs (2i, 2i+1); they are de-interleaved (evens, then odds) before the rotate-half
// rotation, as Hugging Face's modeling_deepseek_v3 does: q and k move alike, so the scores are those
// of the paired rotation.
//
// Two ways to attend, same numbers:
// - full (training, a forward without cache): the latent expanded to keys and values of every head.
// - cached (generation): the cache holds only the normed latent and the rotated key per token
//   (kv_lora_rank + qk_rope_head_dim numbers per layer, LatentCache), and the up-projections are
//   absorbed: the query's nope part goes into latent space (q W_uk), scores are taken against the
//   latents themselves, and the weighted latent is expanded through W_uv once per query.
import * as tf from '@tensorflow/tfjs-core';
import { attention, composedAttention, rmsNorm, rope as ropeKernel } from '../engine/kernels/index.ts';
import { type ModelConfig, deepseek } from './config.ts';
import { type Weight, linear } from './linear.ts';
import { yarnMscale } from './rope.ts';

/** q_a_layernorm and kv_a_layernorm use this eps whatever rms_norm_eps says (HF and DeepSeek's code). */
const LATENT_EPS = 1e-6;

/** One layer's MLA weights, [in, out]: wq (no q compression) or wq_a, q_a_norm, wq_b; wkv_a gives the
 * latent and the rope key; wkv_b expands the latent to [nope key | value] per head. Biases (attention_bias)
 * on q_a, kv_a and o only. */
export type MlaWeights = {
  wq?: Weight;
  wq_a?: Weight;
  bq_a?: tf.Tensor;
  q_a_norm?: tf.Tensor;
  wq_b?: Weight;
  wkv_a: Weight;
  bkv_a?: tf.Tensor;
  kv_a_norm: tf.Tensor;
  wkv_b: tf.Tensor;
  wo: Weight;
  bo?: tf.Tensor;
};

/** Internal parameter names and shapes of one layer's MLA under `prefix`. */
export function mlaShapes(c: ModelConfig, prefix: string): Record<string, number[]> {
  const d = deepseek(c),
    C = c.hidden_size,
    H = c.num_attention_heads,
    bias = c.attention_bias ?? false;
  const Dq = H * (d.qk_nope_head_dim + d.qk_rope_head_dim),
    r = d.kv_lora_rank,
    dr = d.qk_rope_head_dim;
  const s: Record<string, number[]> = {};
  if (d.q_lora_rank === null) s[prefix + 'wq'] = [C, Dq];
  else {
    s[prefix + 'wq_a'] = [C, d.q_lora_rank];
    if (bias) s[prefix + 'bq_a'] = [d.q_lora_rank];
    s[prefix + 'q_a_norm'] = [d.q_lora_rank];
    s[prefix + 'wq_b'] = [d.q_lora_rank, Dq];
  }
  s[prefix + 'wkv_a'] = [C, r + dr];
  if (bias) s[prefix + 'bkv_a'] = [r + dr];
  s[prefix + 'kv_a_norm'] = [r];
  s[prefix + 'wkv_b'] = [r, H * (d.qk_nope_head_dim + d.v_head_dim)];
  s[prefix + 'wo'] = [H * d.v_head_dim, C];
  if (bias) s[prefix + 'bo'] = [C];
  return s;
}

/** The softmax scale: 1 / sqrt(qk head size), times mscale(factor, mscale_all_dim)^2 under a yarn-style
 * rope_scaling that sets mscale_all_dim. */
export function mlaSoftmaxScale(c: ModelConfig): number {
  const d = deepseek(c),
    s = c.rope_scaling;
  let scale = 1 / Math.sqrt(d.qk_nope_head_dim + d.qk_rope_head_dim);
  if (s?.rope_type === 'yarn' && s.mscale_all_dim) scale *= yarnMscale(s.factor, s.mscale_all_dim) ** 2;
  return scale;
}

/** The KV cache of MLA layers: per layer the normed latent [B, S, kv_lora_rank] and the rotated key
 * [B, S, qk_rope_head_dim] of every position so far. */
export class LatentCache {
  readonly latents: (tf.Tensor3D | null)[];
  readonly ropeKeys: (tf.Tensor3D | null)[];

  constructor(readonly layers: number) {
    this.latents = new Array(layers).fill(null);
    this.ropeKeys = new Array(layers).fill(null);
  }

  /** Number of positions held. */
  get length(): number {
    return this.latents[0]?.shape[1] ?? 0;
  }

  /** Bytes held (float32). */
  get bytes(): number {
    return [...this.latents, ...this.ropeKeys].reduce((n, t) => n + (t ? t.size * 4 : 0), 0);
  }

  /** Adds T positions to `layer`; returns everything held there. */
  append(layer: number, latent: tf.Tensor3D, ropeKey: tf.Tensor3D): { latent: tf.Tensor3D; ropeKey: tf.Tensor3D } {
    const grow = (old: tf.Tensor3D | null, add: tf.Tensor3D) => tf.keep(old ? tf.concat([old, add], 1) : tf.clone(add));
    const l = grow(this.latents[layer], latent),
      k = grow(this.ropeKeys[layer], ropeKey);
    this.latents[layer]?.dispose();
    this.ropeKeys[layer]?.dispose();
    this.latents[layer] = l;
    this.ropeKeys[layer] = k;
    return { latent: l, ropeKey: k };
  }

  reset(): void {
    for (const t of [...this.latents, ...this.ropeKeys]) t?.dispose();
    this.latents.fill(null);
    this.ropeKeys.fill(null);
  }

  dispose(): void {
    this.reset();
  }
}

/** (2i, 2i+1) pairs -> evens then odds, over the last axis of [B, T, h, D]. */
function deinterleave(x: tf.Tensor4D): tf.Tensor4D {
  const [B, T, h, D] = x.shape;
  return tf.reshape(tf.transpose(tf.reshape(x, [B, T, h, D / 2, 2]), [0, 1, 2, 4, 3]), [B, T, h, D]) as tf.Tensor4D;
}

/** [T, S] additive mask: query t (at position S - T + t) sees keys s <= S - T + t. */
function causalMask(T: number, S: number): tf.Tensor2D {
  const m = new Float32Array(T * S);
  for (let t = 0; t < T; t++) m.fill(-1e9, t * S + S - T + t + 1, (t + 1) * S);
  return tf.tensor2d(m, [T, S]);
}

/** x: normed hidden states [B*T, C] -> the block's output [B*T, C]. cos, sin: rotary tables of
 * qk_rope_head_dim, [1, T, 1, dr] (positions from the cache's length) or [B, T, 1, dr] (packed rows,
 * with `mask` [B, 1, T, T] in place of the causal one). With a cache, the layer's latents and rope keys
 * join it and attention runs in latent space. */
export function mlaAttention(
  x: tf.Tensor2D,
  w: MlaWeights,
  c: ModelConfig,
  shape: { B: number; T: number; cos: tf.Tensor4D; sin: tf.Tensor4D; mask?: tf.Tensor4D },
  cache?: { cache: LatentCache; layer: number },
): tf.Tensor2D {
  const { B, T, cos, sin, mask } = shape;
  const d = deepseek(c),
    H = c.num_attention_heads,
    r = d.kv_lora_rank;
  const dn = d.qk_nope_head_dim,
    dr = d.qk_rope_head_dim,
    dv = d.v_head_dim;
  const rope = (t: tf.Tensor4D): tf.Tensor4D => {
    const u = d.rope_interleave ? deinterleave(t) : t;
    if (cos.shape[0] === 1) return ropeKernel(u, cos, sin);
    const h = u.shape[2]; // a position per token: rotate B*T tokens as one row (see attention.ts)
    return tf.reshape(ropeKernel(tf.reshape(u, [1, B * T, h, dr]), cos, sin), [B, T, h, dr]);
  };
  const q2 = w.wq ? linear(x, w.wq) : linear(rmsNorm(linear(x, w.wq_a!, w.bq_a), w.q_a_norm!, LATENT_EPS), w.wq_b!);
  const q = tf.reshape(q2, [B, T, H, dn + dr]);
  const qNope = tf.slice(q, [0, 0, 0, 0], [B, T, H, dn]); // [B, T, H, dn]
  const qRope = rope(tf.slice(q, [0, 0, 0, dn], [B, T, H, dr]) as tf.Tensor4D); // [B, T, H, dr]
  const kvA = linear(x, w.wkv_a, w.bkv_a); // [B*T, r + dr]
  const latent = rmsNorm(tf.slice(kvA, [0, 0], [B * T, r]), w.kv_a_norm, LATENT_EPS); // [B*T, r]
  const kRope = rope(tf.reshape(tf.slice(kvA, [0, r], [B * T, dr]), [B, T, 1, dr])); // [B, T, 1, dr], one for all heads
  const scale = mlaSoftmaxScale(c);
  let out: tf.Tensor; // [B*T, H*dv]
  if (cache) {
    if (mask) throw new Error('mlaAttention: a document mask (packed rows) cannot be used with a KV cache');
    const held = cache.cache.append(cache.layer, tf.reshape(latent, [B, T, r]), tf.reshape(kRope, [B, T, dr]));
    out = absorbedAttention(qNope as tf.Tensor4D, qRope, held.latent, held.ropeKey, w.wkv_b, d, H, scale);
  } else {
    const kv = tf.reshape(linear(latent, w.wkv_b), [B, T, H, dn + dv]);
    const k = tf.concat([tf.slice(kv, [0, 0, 0, 0], [B, T, H, dn]), tf.tile(kRope, [1, 1, H, 1])], 3) as tf.Tensor4D; // [B, T, H, dn + dr]
    const v = tf.slice(kv, [0, 0, 0, dn], [B, T, H, dv]) as tf.Tensor4D; // [B, T, H, dv]
    const qk = tf.concat([qNope, qRope], 3) as tf.Tensor4D; // [B, T, H, dn + dr]
    // After the expansion this is plain multi-head attention. The fused kernels take one head size for
    // q, k and v, so they serve when dn + dr = dv (r1-zero-moe's 24 + 8 = 32), not DeepSeek-V3's 192 / 128.
    const att = !mask && dn + dr === dv ? attention(qk, k, v, scale) : composedAttention(qk, k, v, scale, mask); // [B, T, H, dv]
    out = tf.reshape(att, [B * T, H * dv]); // [B*T, H*dv]
  }
  return linear(out as tf.Tensor2D, w.wo, w.bo);
}

/** Attention in latent space over S cached positions: qNope [B, T, H, dn], qRope [B, T, H, dr] (rotated),
 * latents [B, S, r], ropeKeys [B, S, dr] -> [B*T, H*dv]. Equals the full form: q_nope . (W_uk latent) =
 * (q_nope W_uk^T) . latent, and sum_s p_s (W_uv latent_s) = W_uv (sum_s p_s latent_s). */
function absorbedAttention(
  qNope: tf.Tensor4D,
  qRope: tf.Tensor4D,
  latents: tf.Tensor3D,
  ropeKeys: tf.Tensor3D,
  wkvb: tf.Tensor,
  d: ReturnType<typeof deepseek>,
  H: number,
  scale: number,
): tf.Tensor2D {
  const [B, T] = qNope.shape,
    S = latents.shape[1];
  const r = d.kv_lora_rank,
    dn = d.qk_nope_head_dim,
    dr = d.qk_rope_head_dim,
    dv = d.v_head_dim;
  const w = tf.reshape(wkvb, [r, H, dn + dv]);
  const wUk = tf.transpose(tf.slice(w, [0, 0, 0], [r, H, dn]), [1, 2, 0]); // [H, dn, r]
  const wUv = tf.transpose(tf.slice(w, [0, 0, dn], [r, H, dv]), [1, 0, 2]); // [H, r, dv]
  const byHead = (t: tf.Tensor4D, D: number) => tf.transpose(tf.reshape(t, [B * T, H, D]), [1, 0, 2]); // [H, B*T, D]
  const qLatent = tf.matMul(byHead(qNope, dn), wUk); // [H, B*T, r]
  const perRow = (t: tf.Tensor, D: number) => tf.reshape(tf.transpose(tf.reshape(t, [H, B, T, D]), [1, 0, 2, 3]), [B, H * T, D]);
  const qR = tf.reshape(tf.transpose(qRope, [0, 2, 1, 3]), [B, H * T, dr]); // [B, H*T, dr]
  const scores = tf.add(tf.matMul(perRow(qLatent, r), latents, false, true), tf.matMul(qR, ropeKeys, false, true)); // [B, H*T, S]
  const probs = tf.softmax(tf.add(tf.reshape(tf.mul(scores, scale), [B, H, T, S]), causalMask(T, S))); // [B, H, T, S]
  const oLatent = tf.matMul(tf.reshape(probs, [B, H * T, S]), latents); // [B, H*T, r]
  const o = tf.matMul(tf.reshape(tf.transpose(tf.reshape(oLatent, [B, H, T, r]), [1, 0, 2, 3]), [H, B * T, r]), wUv); // [H, B*T, dv]
  return tf.reshape(tf.transpose(o, [1, 0, 2]), [B * T, H * dv]) as tf.Tensor2D;
}
