// The types a decoder block and its parts share: the model's parameters, what a block sees beside
// its input (BlockContext), packed rows, the generation cache, and the two kinds of part a block is
// built of (an attention kind and a feed-forward kind). families.ts says which kinds each family uses.
import type * as tf from '@tensorflow/tfjs-core';
import type { KVCache } from '../engine/kernels/index.ts';
import type { ModelConfig } from './config.ts';
import type { Weight } from './linear.ts';
import type { LatentCache } from './mla.ts';
import type { ExpertLoad } from './moe.ts';

export type Params = Record<string, tf.Variable>;

/** What generation keeps between steps: keys and values per head (GQA), or MLA's latents. */
export type Cache = KVCache | LatentCache;

/** Several documents packed into each row of a [B, T] batch (TRL's padding-free packing with
 * position_ids): for each token, row-major [B*T], its position within its document (0 at the
 * document's first token) and its document's id (any number; a document is a contiguous run of
 * tokens with one id; padding may be a document of its own). */
export type Packed = { positions: Int32Array; documents: Int32Array };

/** What a decoder block needs beside its input: rotary tables, the packed rows' mask, the cache,
 * where to record expert loads, and the list the MoE layers add their balance losses to. */
export type BlockContext = {
  B: number;
  T: number;
  cos: tf.Tensor4D;
  sin: tf.Tensor4D;
  mask?: tf.Tensor4D;
  cache?: Cache;
  load?: ExpertLoad;
  balance: tf.Scalar[];
};

/** Layer i's weight `name` (undefined when the layer has none of that name, e.g. a bias), and its
 * projections as the products should see them: with their LoRA adapter where one is on (lora.ts). */
export type LayerWeight = {
  (name: string): tf.Variable;
  projection(name: string): Weight;
};

/** The sizes and tables of one attention call. */
export type AttentionShape = { B: number; T: number; cos: tf.Tensor4D; sin: tf.Tensor4D; mask?: tf.Tensor4D };

/** An attention kind: its weights under a layer's prefix, its forward over normed hidden states
 * [B*T, C] -> [B*T, C], the cache it generates with, and the size its rotary tables rotate. */
export type AttentionKind = {
  shapes(c: ModelConfig, prefix: string): Record<string, number[]>;
  forward(x: tf.Tensor2D, w: LayerWeight, c: ModelConfig, shape: AttentionShape, cache?: { cache: Cache; layer: number }): tf.Tensor2D;
  newCache(c: ModelConfig, capacity: number): Cache;
  ropeDim(c: ModelConfig): number;
};

/** A feed-forward kind: its weights under a layer's prefix, and its forward over normed hidden
 * states [B*T, C] -> [B*T, C] (an MoE layer also gives its balance loss, and records expert loads). */
export type FeedForwardKind = {
  shapes(c: ModelConfig, prefix: string): Record<string, number[]>;
  forward(
    h: tf.Tensor2D,
    w: LayerWeight,
    c: ModelConfig,
    ctx: BlockContext,
    layer: number,
  ): { out: tf.Tensor2D; balance?: tf.Scalar | null };
};

/** What the MTP module needs of the model it predicts with (Transformer is one). */
export type MtpHost = {
  readonly config: ModelConfig;
  readonly params: Params;
  block(i: number, x: tf.Tensor2D, ctx: BlockContext): tf.Tensor2D;
  blockContext(B: number, T: number, packed?: Packed, cache?: Cache): Omit<BlockContext, 'balance'>;
};
