// A LLaMA-style decoder, as in DeepSeek LLM and the llama / qwen2 / qwen3 families of Hugging Face:
// pre-norm RMSNorm, attention (attention.ts: grouped-query, rotary, qwen2's biases, qwen3's q/k norm),
// a SwiGLU feed-forward, optional tied embeddings.
//
// Weights live in the layout that is fast here, not the one on disk: projections are [in, out]
// (a plain matMul; transposed matMuls are slow on WebAssembly), q/k/v are one fused matrix and
// gate/up another, so a layer is four matMuls. checkpoint.ts converts to Hugging Face names.
import * as tf from '@tensorflow/tfjs-core';
import { type KVCache, rmsNorm, swiglu } from '../engine/kernels/index.ts';
import { Rng } from '../engine/rng.ts';
import type { Dtype } from '../engine/safetensors.ts';
import { selfAttention } from './attention.ts';
import { type ModelConfig, biases, hasQkNorm, headDim, validateConfig } from './config.ts';
import { linear } from './linear.ts';
import { RopeTables } from './rope.ts';

export type Params = Record<string, tf.Variable>;

/** Internal parameter names and shapes, in a fixed order (the workers' flat weights follow it). */
export function parameterShapes(c: ModelConfig): Record<string, number[]> {
  const C = c.hidden_size, D = headDim(c), H = c.num_attention_heads, Hkv = c.num_key_value_heads, F = c.intermediate_size, b = biases(c);
  const shapes: Record<string, number[]> = { embed: [c.vocab_size, C], norm: [C] };
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const l = `layers.${i}.`;
    shapes[l + 'attn_norm'] = [C];
    shapes[l + 'wqkv'] = [C, (H + 2 * Hkv) * D];
    if (b.qkv) shapes[l + 'bqkv'] = [(H + 2 * Hkv) * D];
    if (hasQkNorm(c)) {
      shapes[l + 'q_norm'] = [D];
      shapes[l + 'k_norm'] = [D];
    }
    shapes[l + 'wo'] = [H * D, C];
    if (b.o) shapes[l + 'bo'] = [C];
    shapes[l + 'mlp_norm'] = [C];
    shapes[l + 'w_gate_up'] = [C, 2 * F];
    if (b.mlp) shapes[l + 'b_gate_up'] = [2 * F];
    shapes[l + 'w_down'] = [F, C];
    if (b.mlp) shapes[l + 'b_down'] = [C];
  }
  if (!c.tie_word_embeddings) shapes.lm_head = [C, c.vocab_size];
  return shapes;
}

/** Several documents packed into each row of a [B, T] batch (TRL's padding-free packing with
 * position_ids): for each token, row-major [B*T], its position within its document (0 at the
 * document's first token) and its document's id (any number; a document is a contiguous run of
 * tokens with one id; padding may be a document of its own). */
export type Packed = { positions: Int32Array; documents: Int32Array };

/** The additive attention mask of packed rows, [B, 1, T, T]: 0 where query t may see key s (s <= t,
 * same document), -1e9 elsewhere. */
export function documentMask(documents: Int32Array, B: number, T: number): tf.Tensor4D {
  if (documents.length !== B * T) throw new Error(`documentMask: ${documents.length} document ids for a batch of ${B} x ${T} tokens`);
  const mask = new Float32Array(B * T * T).fill(-1e9);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const doc = documents[b * T + t];
      for (let s = t; s >= 0 && documents[b * T + s] === doc; s--) mask[(b * T + t) * T + s] = 0;
    }
  }
  return tf.tensor4d(mask, [B, 1, T, T]);
}

/** Where a model's weights came from, so saving writes the same files back: the checkpoint's
 * config.json and generation_config.json as read, and the dtype its tensors were stored in. */
export type Origin = { config: Record<string, unknown>; generationConfig: Record<string, unknown> | null; dtype: Dtype };

export class Transformer {
  readonly config: ModelConfig;
  readonly params: Params;
  /** Set when loaded from a checkpoint (checkpoint.ts). */
  readonly origin: Origin | null;
  private readonly rope: RopeTables;

  constructor(config: ModelConfig, params: Params, origin: Origin | null = null) {
    this.config = validateConfig(config);
    this.params = params;
    this.origin = origin;
    this.rope = new RopeTables(config);
  }

  /** Fresh weights: normal(0, 0.02), residual output projections scaled by 1/sqrt(2 * layers) (GPT-2),
   * norms at 1, biases at 0. Drawn from a seeded JS RNG so every backend starts from the same numbers. */
  static init(config: ModelConfig, seed = 0): Transformer {
    validateConfig(config);
    const rng = new Rng(seed);
    const params: Params = {};
    for (const [name, shape] of Object.entries(parameterShapes(config))) {
      const size = shape.reduce((a, b) => a * b, 1);
      const data = new Float32Array(size);
      if (name.endsWith('norm')) data.fill(1);
      else if (!isBias(name)) {
        const std = /wo|w_down/.test(name) ? 0.02 / Math.sqrt(2 * config.num_hidden_layers) : 0.02;
        for (let i = 0; i < size; i++) data[i] = rng.normal() * std;
      }
      params[name] = tf.variable(tf.tensor(data, shape), true, uniqueName(name));
    }
    return new Transformer(config, params);
  }

  /** Final hidden states [B*T, C] (after the last norm) for token ids [B, T]. With a cache, the ids
   * continue the cached positions and the cache grows by T. With `packed`, each row holds several
   * documents: every token takes its own position (restarting at 0 per document) and attends to the
   * earlier tokens of its own document only, so each document's states are those it would have alone. */
  hidden(ids: tf.Tensor2D, cache?: KVCache, packed?: Packed): tf.Tensor2D {
    return tf.tidy(() => {
      const c = this.config, p = this.params, eps = c.rms_norm_eps;
      const [B, T] = ids.shape;
      if (packed && cache) throw new Error('Transformer.hidden: packed rows cannot continue a KV cache');
      const { cos, sin } = packed ? this.rope.gather(packed.positions, B, T) : this.rope.at(cache ? cache.length : 0, T); // [1 or B, T, 1, D]
      const mask = packed ? documentMask(packed.documents, B, T) : undefined; // [B, 1, T, T]
      let x = tf.gather(p.embed, tf.reshape(ids, [B * T])) as tf.Tensor2D; // [B*T, C]
      for (let i = 0; i < c.num_hidden_layers; i++) {
        const w = (name: string) => p[`layers.${i}.${name}`];
        const attn = { wqkv: w('wqkv'), bqkv: w('bqkv'), q_norm: w('q_norm'), k_norm: w('k_norm'), wo: w('wo'), bo: w('bo') };
        x = tf.add(x, selfAttention(rmsNorm(x, w('attn_norm'), eps), attn, c, { B, T, cos, sin, mask }, cache && { cache, layer: i }));
        const gateUp = linear(rmsNorm(x, w('mlp_norm'), eps), w('w_gate_up'), w('b_gate_up'));
        x = tf.add(x, linear(swiglu(gateUp), w('w_down'), w('b_down'))); // silu(gate) * up
      }
      return rmsNorm(x, p.norm, eps);
    });
  }

  /** Logits [N, V] of hidden states [N, C]. */
  logits(hidden: tf.Tensor2D): tf.Tensor2D {
    const p = this.params;
    // A tied head multiplies by embed^T; transposing explicitly keeps the fast plain matMul.
    return tf.tidy(() => tf.matMul(hidden, p.lm_head ?? tf.transpose(p.embed)));
  }

  /** Logits [B, T, V] for token ids [B, T] (see hidden for `cache` and `packed`). */
  forward(ids: tf.Tensor2D, cache?: KVCache, packed?: Packed): tf.Tensor3D {
    return tf.tidy(() => {
      const [B, T] = ids.shape;
      return tf.reshape(this.logits(this.hidden(ids, cache, packed)), [B, T, this.config.vocab_size]) as tf.Tensor3D;
    });
  }

  variables(): tf.Variable[] {
    return Object.values(this.params);
  }

  /** A frozen copy (the reference model of GRPO and DPO). */
  clone(trainable = false): Transformer {
    const params: Params = {};
    for (const [k, v] of Object.entries(this.params)) params[k] = tf.variable(v, trainable, uniqueName(k));
    return new Transformer(this.config, params, this.origin);
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
    this.rope.dispose();
  }
}

let nameCounter = 0;

/** TF.js registers variables by name globally; several models live in one process. */
export function uniqueName(name: string): string {
  return `${name}#${nameCounter++}`;
}

function isBias(name: string): boolean {
  return /\.(bqkv|bo|b_gate_up|b_down)$/.test(name);
}
