// Which blocks each model family is built of, in one table: its attention kind (grouped-query
// attention, attention.ts; or multi-head latent attention, mla.ts), its feed-forward kind per layer
// (SwiGLU, mlp.ts; or DeepSeekMoE, moe.ts) and whether it has a multi-token prediction module
// (mtp.ts). transformer.ts asks this table and never tests a family's name; a new family is an
// entry here (and its checkpoint names in checkpoint.ts / hf-config.ts).
import { KVCache } from '../engine/kernels/index.ts';
import { type Family, type ModelConfig, deepseek, headDim, isMoeLayer } from './config.ts';
import type { AttentionKind, FeedForwardKind } from './blocks.ts';
import { attentionShapes, selfAttention } from './attention.ts';
import { LatentCache, type MlaWeights, mlaAttention, mlaShapes } from './mla.ts';
import { type MoeWeights, moe, moeShapes } from './moe.ts';
import { mlp, mlpShapes } from './mlp.ts';

export type FamilyBlocks = {
  attention: AttentionKind;
  /** The feed-forward kind of layer `layer` (the MTP module's block is layer num_hidden_layers). */
  feedForward(c: ModelConfig, layer: number): FeedForwardKind;
  /** Has a multi-token prediction module when num_nextn_predict_layers says so, and trains its loss. */
  mtp: boolean;
};

/** Grouped-query attention with rotary embeddings (llama, qwen2's biases, qwen3's q/k norm). */
const GQA: AttentionKind = {
  shapes: attentionShapes,
  forward: (x, w, c, shape, cache) => {
    const weights = {
      wqkv: w.projection('wqkv'),
      bqkv: w('bqkv'),
      q_norm: w('q_norm'),
      k_norm: w('k_norm'),
      wo: w.projection('wo'),
      bo: w('bo'),
    };
    return selfAttention(x, weights, c, shape, cache && { cache: cache.cache as KVCache, layer: cache.layer });
  },
  newCache: (c, capacity) => new KVCache(c.num_hidden_layers, capacity),
  ropeDim: headDim,
};

/** Multi-head latent attention (DeepSeek-V2/V3): the cache keeps one latent per token. */
const MLA: AttentionKind = {
  shapes: mlaShapes,
  forward: (x, w, c, shape, cache) => {
    const weights: MlaWeights = {
      wq: w.projection('wq'),
      wq_a: w.projection('wq_a'),
      bq_a: w('bq_a'),
      q_a_norm: w('q_a_norm'),
      wq_b: w.projection('wq_b'),
      wkv_a: w.projection('wkv_a'),
      bkv_a: w('bkv_a'),
      kv_a_norm: w('kv_a_norm'),
      wkv_b: w('wkv_b'),
      wo: w.projection('wo'),
      bo: w('bo'),
    };
    return mlaAttention(x, weights, c, shape, cache && { cache: cache.cache as LatentCache, layer: cache.layer });
  },
  newCache: (c) => new LatentCache(c.num_hidden_layers),
  ropeDim: (c) => deepseek(c).qk_rope_head_dim,
};

/** The dense SwiGLU feed-forward. */
const SWIGLU: FeedForwardKind = {
  shapes: mlpShapes,
  forward: (h, w) => ({
    out: mlp(h, { w_gate_up: w.projection('w_gate_up'), b_gate_up: w('b_gate_up'), w_down: w.projection('w_down'), b_down: w('b_down') }),
  }),
};

/** DeepSeekMoE: shared experts plus top-k routed ones, with its sequence-wise balance loss. */
const MOE: FeedForwardKind = {
  shapes: moeShapes,
  forward: (h, w, c, ctx, layer) => {
    const expert = (pre: string) => ({ w_gate_up: w.projection(pre + 'w_gate_up'), w_down: w.projection(pre + 'w_down') });
    const weights: MoeWeights = {
      router: w('router'),
      router_bias: w('router_bias'),
      experts: Array.from({ length: deepseek(c).n_routed_experts }, (_, e) => expert(`experts.${e}.`)),
      shared: deepseek(c).n_shared_experts > 0 ? expert('shared.') : undefined, // (its weights may be bf16-held, not in params)
    };
    return moe(h, weights, c, ctx.B, ctx.load && { load: ctx.load, layer });
  },
};

const DENSE: FamilyBlocks = { attention: GQA, feedForward: () => SWIGLU, mtp: false };

export const FAMILY_BLOCKS: Record<Family, FamilyBlocks> = {
  llama: DENSE,
  qwen2: DENSE,
  qwen3: DENSE,
  /** MLA in every layer; dense SwiGLU before first_k_dense_replace, MoE from there on; MTP. */
  deepseek_v3: { attention: MLA, feedForward: (c, layer) => (isMoeLayer(c, layer) ? MOE : SWIGLU), mtp: true },
};
