// A LLaMA-style decoder, as in DeepSeek LLM: pre-norm RMSNorm, SwiGLU feed-forward, rotary position
// embeddings (rotate-half, as Hugging Face's Llama), grouped-query attention, optional tied embeddings.
//
// Weights live in the layout that is fast here, not the one on disk: projections are [in, out]
// (a plain matMul; transposed matMuls are slow on WebAssembly), q/k/v are one fused matrix and
// gate/up another, so a layer is four matMuls. checkpoint.ts converts to Hugging Face names.
import * as tf from '@tensorflow/tfjs-core';
import { attention, cachedAttention, rmsNorm, rope, swiglu, type KVCache } from '../engine/kernels/index.ts';
import { Rng } from '../engine/rng.ts';
import { type ModelConfig, headDim, validateConfig } from './config.ts';

export type Params = Record<string, tf.Variable>;

/** Internal parameter names and shapes. */
export function parameterShapes(c: ModelConfig): Record<string, number[]> {
  const C = c.hidden_size, D = headDim(c), H = c.num_attention_heads, Hkv = c.num_key_value_heads, F = c.intermediate_size;
  const shapes: Record<string, number[]> = { embed: [c.vocab_size, C], norm: [C] };
  for (let i = 0; i < c.num_hidden_layers; i++) {
    shapes[`layers.${i}.attn_norm`] = [C];
    shapes[`layers.${i}.wqkv`] = [C, (H + 2 * Hkv) * D];
    shapes[`layers.${i}.wo`] = [H * D, C];
    shapes[`layers.${i}.mlp_norm`] = [C];
    shapes[`layers.${i}.w_gate_up`] = [C, 2 * F];
    shapes[`layers.${i}.w_down`] = [F, C];
  }
  if (!c.tie_word_embeddings) shapes.lm_head = [C, c.vocab_size];
  return shapes;
}

export class Transformer {
  readonly config: ModelConfig;
  readonly params: Params;
  private readonly cos: tf.Tensor2D;
  private readonly sin: tf.Tensor2D;

  constructor(config: ModelConfig, params: Params) {
    this.config = validateConfig(config);
    this.params = params;
    [this.cos, this.sin] = ropeTables(config);
  }

  /** Fresh weights: normal(0, 0.02), residual output projections scaled by 1/sqrt(2 * layers) (GPT-2),
   * norms at 1. Drawn from a seeded JS RNG so every backend starts from the same numbers. */
  static init(config: ModelConfig, seed = 0): Transformer {
    validateConfig(config);
    const rng = new Rng(seed);
    const params: Params = {};
    for (const [name, shape] of Object.entries(parameterShapes(config))) {
      const size = shape.reduce((a, b) => a * b, 1);
      const data = new Float32Array(size);
      if (name.endsWith('norm')) data.fill(1);
      else {
        const std = /wo|w_down/.test(name) ? 0.02 / Math.sqrt(2 * config.num_hidden_layers) : 0.02;
        for (let i = 0; i < size; i++) data[i] = rng.normal() * std;
      }
      params[name] = tf.variable(tf.tensor(data, shape), true, uniqueName(name));
    }
    return new Transformer(config, params);
  }

  /** Final hidden states [B*T, C] (after the last norm) for token ids [B, T]. With a cache, the ids
   * continue the cached positions and the cache grows by T. */
  hidden(ids: tf.Tensor2D, cache?: KVCache): tf.Tensor2D {
    return tf.tidy(() => {
      const c = this.config, p = this.params;
      const [B, T] = ids.shape;
      const D = headDim(c), H = c.num_attention_heads, Hkv = c.num_key_value_heads;
      const start = cache ? cache.length : 0;
      if (start + T > c.max_position_embeddings) {
        throw new Error(`sequence of ${start + T} tokens exceeds max_position_embeddings ${c.max_position_embeddings}`);
      }
      const cos = tf.reshape(tf.slice(this.cos, [start, 0], [T, D]), [1, T, 1, D]);
      const sin = tf.reshape(tf.slice(this.sin, [start, 0], [T, D]), [1, T, 1, D]);
      const scale = 1 / Math.sqrt(D);
      let x = tf.gather(p.embed, tf.reshape(ids, [B * T])) as tf.Tensor2D; // [B*T, C]
      for (let i = 0; i < c.num_hidden_layers; i++) {
        const qkv = tf.matMul(rmsNorm(x, p[`layers.${i}.attn_norm`], c.rms_norm_eps), p[`layers.${i}.wqkv`]);
        const heads = tf.reshape(qkv, [B, T, H + 2 * Hkv, D]);
        // Rotate q and k together: one rotary application for both.
        const qk = rope(tf.slice(heads, [0, 0, 0, 0], [B, T, H + Hkv, D]) as tf.Tensor4D, cos, sin);
        const q = tf.slice(qk, [0, 0, 0, 0], [B, T, H, D]) as tf.Tensor4D;
        const k = tf.slice(qk, [0, 0, H, 0], [B, T, Hkv, D]) as tf.Tensor4D;
        const v = tf.slice(heads, [0, 0, H + Hkv, 0], [B, T, Hkv, D]) as tf.Tensor4D;
        const att = cache ? cachedAttention(q, k, v, cache, i, scale) : attention(q, k, v, scale);
        x = tf.add(x, tf.matMul(tf.reshape(att, [B * T, H * D]), p[`layers.${i}.wo`]));
        const gateUp = tf.matMul(rmsNorm(x, p[`layers.${i}.mlp_norm`], c.rms_norm_eps), p[`layers.${i}.w_gate_up`]);
        x = tf.add(x, tf.matMul(swiglu(gateUp as tf.Tensor2D), p[`layers.${i}.w_down`])); // silu(gate) * up
      }
      return rmsNorm(x, p.norm, c.rms_norm_eps) as tf.Tensor2D;
    });
  }

  /** Logits [N, V] of hidden states [N, C]. */
  logits(hidden: tf.Tensor2D): tf.Tensor2D {
    const p = this.params;
    // A tied head multiplies by embed^T; transposing explicitly keeps the fast plain matMul.
    return tf.tidy(() => tf.matMul(hidden, p.lm_head ?? tf.transpose(p.embed)));
  }

  /** Logits [B, T, V] for token ids [B, T]. */
  forward(ids: tf.Tensor2D, cache?: KVCache): tf.Tensor3D {
    return tf.tidy(() => {
      const [B, T] = ids.shape;
      return tf.reshape(this.logits(this.hidden(ids, cache)), [B, T, this.config.vocab_size]) as tf.Tensor3D;
    });
  }

  variables(): tf.Variable[] {
    return Object.values(this.params);
  }

  /** A frozen copy (the reference model of GRPO and DPO). */
  clone(trainable = false): Transformer {
    const params: Params = {};
    for (const [k, v] of Object.entries(this.params)) params[k] = tf.variable(v, trainable, uniqueName(k));
    return new Transformer(this.config, params);
  }

  /** Sets every parameter from one flat array laid out in parameterShapes order (weights that
   * workers read from shared memory). The new values are disposed once the variables hold them:
   * `assign` shares the tensor's data, so a tensor left behind would pin a copy of the model per call. */
  loadFlat(flat: Float32Array): void {
    let offset = 0;
    for (const [name, shape] of Object.entries(parameterShapes(this.config))) {
      const size = shape.reduce((a, b) => a * b, 1);
      tf.tidy(() => this.params[name].assign(tf.tensor(flat.subarray(offset, offset + size), shape)));
      offset += size;
    }
  }

  /** Copies weights from another model of the same config into this one. */
  assignFrom(other: Transformer): void {
    for (const [k, v] of Object.entries(this.params)) v.assign(other.params[k]);
  }

  dispose(): void {
    for (const v of Object.values(this.params)) v.dispose();
    this.cos.dispose();
    this.sin.dispose();
  }
}

let nameCounter = 0;

/** TF.js registers variables by name globally; several models live in one process. */
export function uniqueName(name: string): string {
  return `${name}#${nameCounter++}`;
}

/** cos and sin tables [max_position, D], each frequency repeated for both halves (as HF Llama). */
function ropeTables(c: ModelConfig): [tf.Tensor2D, tf.Tensor2D] {
  const D = headDim(c), P = c.max_position_embeddings;
  const cos = new Float32Array(P * D), sin = new Float32Array(P * D);
  for (let p = 0; p < P; p++) {
    for (let i = 0; i < D / 2; i++) {
      const angle = p / Math.pow(c.rope_theta, (2 * i) / D);
      cos[p * D + i] = cos[p * D + i + D / 2] = Math.cos(angle);
      sin[p * D + i] = sin[p * D + i + D / 2] = Math.sin(angle);
    }
  }
  return [tf.tensor2d(cos, [P, D]), tf.tensor2d(sin, [P, D])];
}
