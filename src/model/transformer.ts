// A LLaMA-style decoder, as in DeepSeek LLM and the llama / qwen2 / qwen3 families of Hugging Face:
// embedding, pre-norm residual blocks (attention, then a feed-forward), a final RMSNorm, optional
// tied embeddings. Which attention and feed-forward a block holds is the family's entry in
// families.ts: grouped-query attention (attention.ts) and SwiGLU (mlp.ts) for llama / qwen2 / qwen3;
// multi-head latent attention (mla.ts), DeepSeekMoE after the first dense layers (moe.ts) and a
// multi-token prediction module after the last layer (mtp.ts) for deepseek_v3.
//
// Weights live in the layout that is fast here, not the one on disk: projections are [in, out]
// (a plain matMul; transposed matMuls are slow on WebAssembly), q/k/v are one fused matrix and
// gate/up another, so a layer is four matMuls. checkpoint.ts converts to Hugging Face names.
import * as tf from '@tensorflow/tfjs-core';
import { rmsNorm } from '../engine/kernels/index.ts';
import { Rng } from '../engine/rng.ts';
import type { Dtype } from '../engine/safetensors.ts';
import type { BlockContext, Cache, Packed, Params } from './blocks.ts';
import { type ModelConfig, deepseek, family, validateConfig } from './config.ts';
import { FAMILY_BLOCKS, type FamilyBlocks } from './families.ts';
import type { ExpertLoad } from './moe.ts';
import type { Bf16Weight } from './bf16.ts';
import { AdaptedWeight, type Weight } from './linear.ts';
import type { LoraAdapters } from './lora.ts';
import { type LossBatch, mtpLoss, mtpShapes } from './mtp.ts';
import { checkpointedBlock, recomputable } from './recompute.ts';
import { RopeTables } from './rope.ts';
import { embedRows, headLogits, tiedHeadNeedsTranspose } from './vocab-split.ts';

export type { BlockContext, Cache, Packed, Params } from './blocks.ts';

/** Internal parameter names and shapes, in a fixed order (the workers' flat weights follow it):
 * embed, norm, each layer's attn_norm, attention, mlp_norm and feed-forward, the MTP module (with
 * its block as layer num_hidden_layers), lm_head when the embedding is not tied. */
export function parameterShapes(c: ModelConfig): Record<string, number[]> {
  const blocks = FAMILY_BLOCKS[family(c)],
    C = c.hidden_size;
  const shapes: Record<string, number[]> = { embed: [c.vocab_size, C], norm: [C] };
  const block = (i: number): Record<string, number[]> => {
    const l = `layers.${i}.`;
    return { [l + 'attn_norm']: [C], ...blocks.attention.shapes(c, l), [l + 'mlp_norm']: [C], ...blocks.feedForward(c, i).shapes(c, l) };
  };
  for (let i = 0; i < c.num_hidden_layers; i++) Object.assign(shapes, block(i));
  if (blocks.mtp && deepseek(c).num_nextn_predict_layers) Object.assign(shapes, mtpShapes(c, block(c.num_hidden_layers)));
  if (!c.tie_word_embeddings) shapes.lm_head = [C, c.vocab_size];
  return shapes;
}
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
  /** When set, every forward adds its tokens per expert to it (deepseek_v3's MoE layers; see moe.ts). */
  expertLoad: ExpertLoad | null = null;
  /** LoRA adapters on the block projections (lora.ts): when set, they are what trains, and the
   * base weights stay frozen. */
  adapters: LoraAdapters | null = null;
  /** Activation checkpointing (recompute.ts): each block keeps only its input for the backward pass,
   * which recomputes it. Set by the trainer from the stage's gradient_checkpointing. */
  gradientCheckpointing = false;
  private readonly rope: RopeTables;
  /** The family's block kinds (families.ts). */
  private readonly blocks: FamilyBlocks;
  /** False for a view sharing another model's weights (baseView): disposing it frees only its own. */
  private ownsParams = true;
  /** Frozen projections held as bfloat16 outside the backend (bf16.ts, lora.frozen_dtype), by
   * parameter name; a name here is absent from params. Never written, so views and copies share it. */
  readonly frozen: Map<string, Bf16Weight>;

  constructor(config: ModelConfig, params: Params, origin: Origin | null = null, frozen = new Map<string, Bf16Weight>()) {
    this.config = validateConfig(config);
    this.params = params;
    this.origin = origin;
    this.frozen = frozen;
    this.blocks = FAMILY_BLOCKS[family(config)];
    this.rope = new RopeTables(config, this.blocks.attention.ropeDim(config));
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
      // In a tidy: the variable keeps the buffer; the tensor it was made from would pin it after dispose().
      params[name] = tf.tidy(() => tf.variable(tf.tensor(data, shape), isTrainable(name), uniqueName(name)));
    }
    return new Transformer(config, params);
  }

  /** Final hidden states [B*T, C] (after the last norm) for token ids [B, T]. With a cache, the ids
   * continue the cached positions and the cache grows by T. With `packed`, each row holds several
   * documents: every token takes its own position (restarting at 0 per document) and attends to the
   * earlier tokens of its own document only, so each document's states are those it would have alone. */
  hidden(ids: tf.Tensor2D, cache?: Cache, packed?: Packed): tf.Tensor2D {
    return tf.tidy(() => {
      const { hidden, balance } = this.run(ids, { cache, packed });
      balance?.dispose();
      return hidden;
    });
  }

  /** hidden(), with what MoE layers add: the sum of their balance losses (deepseek_v3 with
   * aux_loss_alpha > 0; else undefined), and the tokens per expert added to `this.expertLoad`. */
  run(ids: tf.Tensor2D, opts: { cache?: Cache; packed?: Packed } = {}): { hidden: tf.Tensor2D; balance?: tf.Scalar } {
    return tf.tidy(() => {
      const { cache, packed } = opts,
        c = this.config,
        p = this.params;
      const [B, T] = ids.shape;
      if (packed && cache) throw new Error('Transformer.hidden: packed rows cannot continue a KV cache');
      const ctx: BlockContext = { ...this.blockContext(B, T, packed, cache), balance: [] };
      let x = embedRows(p.embed as tf.Tensor2D, tf.reshape(ids, [B * T])); // [B*T, C], by row blocks over a GPU's binding limit
      for (let i = 0; i < c.num_hidden_layers; i++)
        x = this.gradientCheckpointing && recomputable(this, i, ctx) ? checkpointedBlock(this, i, x, ctx) : this.block(i, x, ctx);
      const hidden = rmsNorm(x, p.norm, c.rms_norm_eps);
      return { hidden, balance: ctx.balance.length ? (tf.addN(ctx.balance) as tf.Scalar) : undefined };
    });
  }

  /** Rotary tables ([1 or B, T, 1, D]), packed rows' mask ([B, 1, T, T]), cache and expert-load
   * recorder for a block over [B, T] tokens. */
  blockContext(B: number, T: number, packed?: Packed, cache?: Cache): Omit<BlockContext, 'balance'> {
    const { cos, sin } = packed ? this.rope.gather(packed.positions, B, T) : this.rope.at(cache ? cache.length : 0, T);
    const mask = packed ? documentMask(packed.documents, B, T) : undefined;
    return { B, T, cos, sin, mask, cache, load: this.expertLoad ?? undefined };
  }

  /** Decoder block `i` (pre-norm residual): x [B*T, C] -> [B*T, C]. */
  block(i: number, x: tf.Tensor2D, ctx: BlockContext): tf.Tensor2D {
    const c = this.config,
      eps = c.rms_norm_eps,
      { B, T, cos, sin, mask, cache } = ctx;
    const w = (name: string) => this.params[`layers.${i}.${name}`];
    const layer = Object.assign(w, { projection: (name: string) => this.projection(`layers.${i}.${name}`) });
    x = tf.add(
      x,
      this.blocks.attention.forward(rmsNorm(x, w('attn_norm'), eps), layer, c, { B, T, cos, sin, mask }, cache && { cache, layer: i }),
    );
    const { out, balance } = this.blocks.feedForward(c, i).forward(rmsNorm(x, w('mlp_norm'), eps), layer, c, ctx, i);
    if (balance) ctx.balance.push(balance);
    return tf.add(x, out);
  }

  /** A block projection by parameter name, with its LoRA adapter when one is on. */
  projection(name: string): Weight {
    const base = this.frozen.get(name) ?? this.params[name],
      lora = this.adapters;
    if (!lora?.enabled || !lora.slots.has(name)) return base;
    return new AdaptedWeight(base, (x, y) => lora.apply(name, x, y));
  }

  /** A weight's values as a plain model holds them: W + s B A where an adapter is on (what rollout
   * workers, llama.cpp exports and cluster workers run, none of which know LoRA). */
  weightData(name: string): Float32Array {
    const lora = this.adapters;
    if (!lora?.enabled || !lora.slots.has(name)) return this.baseData(name);
    const held = this.frozen.get(name);
    const base = held ? held.widen() : this.params[name];
    const merged = lora.merged(name, base);
    if (held) base.dispose();
    const data = merged.dataSync() as Float32Array;
    merged.dispose();
    return data;
  }

  /** A weight's base values, adapters aside (bf16-held ones widened). */
  baseData(name: string): Float32Array {
    return this.frozen.get(name)?.values() ?? (this.params[name].dataSync() as Float32Array);
  }

  /** What a training step updates: the adapters' variables under LoRA, else every trainable weight. */
  trainableParams(): Params {
    return this.adapters ? this.adapters.params() : this.params;
  }

  /** Attaches LoRA adapters: from now on only they train (the base weights are frozen in place). */
  attachAdapters(adapters: LoraAdapters): void {
    this.adapters = adapters;
    for (const v of Object.values(this.params)) v.trainable = false;
  }

  /** The base model under LoRA, sharing this model's weights (no copy) with the adapters off: the
   * reference model of GRPO and DPO, as TRL takes it with PEFT. */
  baseView(): Transformer {
    const view = new Transformer(this.config, this.params, this.origin, this.frozen);
    view.ownsParams = false;
    return view;
  }

  /** A cache for generation of up to `capacity` positions: per-head keys and values, or MLA's latents. */
  newCache(capacity: number): Cache {
    return this.blocks.attention.newCache(this.config, capacity);
  }

  /** Loss terms a training step adds to the next-token loss, each already divided by the batch's
   * normaliser: deepseek_v3's mtp_loss_weight x the MTP cross-entropy (tokens i+2) and the MoE balance
   * loss (`run`'s, weighted by the batch's share of the step's tokens). Empty for dense models. */
  auxiliaryLoss(run: { hidden: tf.Tensor2D; balance?: tf.Scalar }, b: LossBatch): { mtp?: tf.Scalar; balance?: tf.Scalar } {
    if (!this.blocks.mtp) return {};
    return tf.tidy(() => {
      const mtp = mtpLoss(this, run.hidden, b) ?? undefined;
      const tokens = b.weights ? b.weights.reduce((a, x) => a + x, 0) : b.B * b.T;
      const balance = run.balance ? (tf.mul(run.balance, tokens / b.normaliser) as tf.Scalar) : undefined;
      return { mtp, balance };
    });
  }

  /** Logits [N, V] of hidden states [N, C] (by vocabulary blocks over a GPU's binding limit). A
   * tied head multiplies by embed^T: XNNPACK's transposed product is slow, so there the embedding
   * is transposed explicitly (a [C, V] copy each call, which XNNPACK then packs); BLAS and the other
   * backends read embed transposed in place, with no copy (vocab-split.ts headProduct). */
  logits(hidden: tf.Tensor2D): tf.Tensor2D {
    const p = this.params;
    if (this.headTransposed) return headLogits(hidden, this.headTransposed, false);
    return p.lm_head ? headLogits(hidden, p.lm_head as tf.Tensor2D, false) : headLogits(hidden, p.embed as tf.Tensor2D, true);
  }

  /** The tied output layer's embedding transposed to [C, V], made once for a generation by
   * withHeadTransposed (null otherwise). */
  private headTransposed: tf.Tensor2D | null = null;

  /** Runs `fn` (a generation: many output-layer calls, none on a gradient tape) with the tied
   * output layer transposed once, where the transposed product is slow (WebAssembly with XNNPACK:
   * vocab-split.ts tiedHeadNeedsTranspose) and every call would otherwise copy the whole embedding
   * transposed. No gradient flows through the copy: refused under a tape. Elsewhere just fn(). */
  withHeadTransposed<T>(fn: () => T): T {
    if (this.params.lm_head || this.headTransposed || !tiedHeadNeedsTranspose()) return fn();
    if (tf.engine().isTapeOn()) throw new Error('Transformer.withHeadTransposed: the transposed copy carries no gradient');
    this.headTransposed = tf.keep(tf.transpose(this.params.embed as tf.Tensor2D)) as tf.Tensor2D;
    try {
      return fn();
    } finally {
      this.headTransposed.dispose();
      this.headTransposed = null;
    }
  }

  /** Logits [B, T, V] for token ids [B, T] (see hidden for `cache` and `packed`). */
  forward(ids: tf.Tensor2D, cache?: Cache, packed?: Packed): tf.Tensor3D {
    return tf.tidy(() => {
      const [B, T] = ids.shape;
      return tf.reshape(this.logits(this.hidden(ids, cache, packed)), [B, T, this.config.vocab_size]) as tf.Tensor3D;
    });
  }

  variables(): tf.Variable[] {
    return Object.values(this.params);
  }

  /** The frozen reference of GRPO and DPO: under LoRA the base with the adapters off (no second
   * copy of the weights), else a frozen copy. */
  reference(): Transformer {
    return this.adapters ? this.baseView() : this.clone();
  }

  /** A frozen copy. */
  clone(trainable = false): Transformer {
    const params: Params = {};
    for (const [k, v] of Object.entries(this.params)) params[k] = tf.variable(v, trainable && isTrainable(k), uniqueName(k));
    if (trainable && this.frozen.size) throw new Error('Transformer.clone: a model with bf16-held frozen weights has no trainable copy');
    return new Transformer(this.config, params, this.origin, this.frozen);
  }

  /** Sets every parameter from one flat array laid out in parameterShapes order (weights that
   * workers read from shared memory). The new values are disposed once the variables hold them:
   * `assign` shares the tensor's data, so a tensor left behind would pin a copy of the model per call. */
  loadFlat(flat: Float32Array): void {
    let offset = 0;
    for (const [name, shape] of Object.entries(parameterShapes(this.config))) {
      const size = shape.reduce((a, b) => a * b, 1);
      if (this.frozen.has(name)) throw new Error(`Transformer.loadFlat: ${name} is held as bf16 and frozen`);
      tf.tidy(() => this.params[name].assign(tf.tensor(flat.subarray(offset, offset + size), shape)));
      offset += size;
    }
  }

  /** Copies weights from another model of the same config into this one. */
  assignFrom(other: Transformer): void {
    for (const [k, v] of Object.entries(this.params)) v.assign(other.params[k]);
  }

  dispose(): void {
    if (this.ownsParams) {
      for (const v of Object.values(this.params)) v.dispose();
      this.adapters?.dispose();
    }
    this.rope.dispose();
  }
}

let nameCounter = 0;

/** TF.js registers variables by name globally; several models live in one process. */
export function uniqueName(name: string): string {
  return `${name}#${nameCounter++}`;
}

function isBias(name: string): boolean {
  return /\.(bqkv|bo|b_gate_up|b_down|bq_a|bkv_a|router_bias)$/.test(name);
}

/** MoE routers' correction biases move by load (moe.ts updateRouterBias), not by gradients. */
export function isTrainable(name: string): boolean {
  return !name.endsWith('.router_bias');
}
