// Model configuration, named as in Hugging Face's config.json (LlamaConfig, Qwen2Config, Qwen3Config,
// DeepseekV3Config) so a config opens in other tools. r1kit's own models are `llama` (or `deepseek_v3`);
// hf-config.ts reads the others.
import { UserError } from '../errors.ts';

/** Decoder families with their exact Hugging Face semantics: `qwen2` is llama with q/k/v biases,
 * `qwen3` llama with an RMSNorm over each head of q and k before the rotation; `deepseek_v3` has
 * multi-head latent attention (mla.ts), DeepSeekMoE layers (moe.ts) and multi-token prediction (mtp.ts). */
export const FAMILIES = ['llama', 'qwen2', 'qwen3', 'deepseek_v3'] as const;
export type Family = (typeof FAMILIES)[number];

/** RoPE frequency scaling (modeling_rope_utils.py): `linear` divides every frequency by `factor`;
 * `llama3` divides the low frequencies, keeps the high ones and blends those in between; `yarn`
 * (DeepSeek-V3) ramps between the two by wavelength (beta_fast .. beta_slow rotations over the original
 * context) and scales cos and sin by attention_factor (default mscale(factor, mscale) /
 * mscale(factor, mscale_all_dim)); MLA also scales its softmax by mscale(factor, mscale_all_dim)^2. */
export type RopeScaling =
  | { rope_type: 'linear'; factor: number }
  | { rope_type: 'llama3'; factor: number; low_freq_factor: number; high_freq_factor: number; original_max_position_embeddings: number }
  | {
      rope_type: 'yarn';
      factor: number;
      original_max_position_embeddings?: number;
      beta_fast?: number;
      beta_slow?: number;
      mscale?: number;
      mscale_all_dim?: number;
      attention_factor?: number;
      truncate?: boolean;
    };

/** The fields of DeepseekV3Config that r1kit implements (only with model_type deepseek_v3). */
export type DeepseekFields = {
  /** MLA: rank of the query compression (null: a plain q projection). */
  q_lora_rank?: number | null;
  /** MLA: rank of the shared key/value latent (what the KV cache holds per token, with the rope key). */
  kv_lora_rank?: number;
  /** MLA: per-head sizes of the query/key part without rotation, the rotated part, and the values. */
  qk_nope_head_dim?: number;
  qk_rope_head_dim?: number;
  v_head_dim?: number;
  /** RoPE pairs (2i, 2i+1), as DeepSeek's checkpoints store q and k (default true). */
  rope_interleave?: boolean;
  /** MoE: layers before this one are dense (intermediate_size); the rest are DeepSeekMoE. */
  first_k_dense_replace?: number;
  n_routed_experts?: number;
  n_shared_experts?: number;
  moe_intermediate_size?: number;
  num_experts_per_tok?: number;
  n_group?: number;
  topk_group?: number;
  norm_topk_prob?: boolean;
  routed_scaling_factor?: number;
  /** Only `sigmoid` and `noaux_tc` (DeepSeek-V3's) are implemented. */
  scoring_func?: string;
  topk_method?: string;
  /** DeepSeekMoE layers every this many layers: only 1. */
  moe_layer_freq?: number;
  /** Multi-token prediction modules (0 or 1): model.layers.<num_hidden_layers>. */
  num_nextn_predict_layers?: number;
  /** Weight of the sequence-wise balance loss added to the LM loss (0: none). */
  aux_loss_alpha?: number;
  /** r1kit's own: weight of the MTP cross-entropy added to the LM loss in training (default 0.3). */
  mtp_loss_weight?: number;
};

export type ModelConfig = {
  vocab_size: number;
  hidden_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  intermediate_size: number;
  max_position_embeddings: number;
  rope_theta: number;
  rms_norm_eps: number;
  tie_word_embeddings: boolean;
  /** Default llama. */
  model_type?: Family;
  /** Default hidden_size / num_attention_heads. */
  head_dim?: number;
  /** Biases on q/k/v and o (llama, qwen3); qwen2 always has q/k/v biases and never o. */
  attention_bias?: boolean;
  /** Biases on the feed-forward projections (llama only). */
  mlp_bias?: boolean;
  rope_scaling?: RopeScaling | null;
} & DeepseekFields;

/** The reference model of DESIGN.md ("tiny"). */
export const TINY: ModelConfig = {
  vocab_size: 512,
  hidden_size: 128,
  num_hidden_layers: 4,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  intermediate_size: 352,
  max_position_embeddings: 256,
  rope_theta: 10000,
  rms_norm_eps: 1e-6,
  tie_word_embeddings: true,
};

/** Checks that the sizes fit together; the error names the fields that do not. */
export function validateConfig(c: ModelConfig, where = 'model'): ModelConfig {
  const bad: string[] = [];
  for (const k of [
    'vocab_size',
    'hidden_size',
    'num_hidden_layers',
    'num_attention_heads',
    'num_key_value_heads',
    'intermediate_size',
    'max_position_embeddings',
  ] as const) {
    if (!Number.isInteger(c[k]) || c[k] <= 0) bad.push(`${where}.${k} must be a positive integer (got ${c[k]})`);
  }
  if (c.head_dim !== undefined && (!Number.isInteger(c.head_dim) || c.head_dim <= 0))
    bad.push(`${where}.head_dim must be a positive integer (got ${c.head_dim})`);
  if (c.model_type !== undefined && !FAMILIES.includes(c.model_type))
    bad.push(`${where}.model_type must be one of ${FAMILIES.join(', ')} (got ${JSON.stringify(c.model_type)})`);
  else if (family(c) === 'deepseek_v3') bad.push(...deepseekProblems(c, where));
  else {
    if (c.rope_scaling?.rope_type === 'yarn')
      bad.push(`${where}.rope_scaling: rope type yarn is supported for model_type deepseek_v3 only`);
    const stray = strayDeepseekFields(c);
    if (stray.length) bad.push(`${where}: ${stray.join(', ')} belong to model_type deepseek_v3 (got model_type ${family(c)})`);
  }
  if (bad.length === 0 && family(c) !== 'deepseek_v3') {
    if (c.head_dim === undefined && c.hidden_size % c.num_attention_heads !== 0) {
      bad.push(`${where}.hidden_size (${c.hidden_size}) must be divisible by ${where}.num_attention_heads (${c.num_attention_heads})`);
    } else if (headDim(c) % 2 !== 0) {
      bad.push(`${where}: the head size must be even for rotary embeddings (got ${headDim(c)})`);
    }
    if (c.num_attention_heads % c.num_key_value_heads !== 0) {
      bad.push(
        `${where}.num_attention_heads (${c.num_attention_heads}) must be divisible by ${where}.num_key_value_heads (${c.num_key_value_heads})`,
      );
    }
  }
  if (bad.length) throw new UserError(`model config does not fit:\n  ${bad.join('\n  ')}`);
  return c;
}

const DEEPSEEK_KEYS = [
  'q_lora_rank',
  'kv_lora_rank',
  'qk_nope_head_dim',
  'qk_rope_head_dim',
  'v_head_dim',
  'rope_interleave',
  'first_k_dense_replace',
  'n_routed_experts',
  'n_shared_experts',
  'moe_intermediate_size',
  'num_experts_per_tok',
  'n_group',
  'topk_group',
  'norm_topk_prob',
  'routed_scaling_factor',
  'scoring_func',
  'topk_method',
  'moe_layer_freq',
  'num_nextn_predict_layers',
  'aux_loss_alpha',
  'mtp_loss_weight',
] as const;

/** The deepseek_v3 fields a config of another family sets (refused: only deepseek_v3 reads them). The
 * training-loss weights aux_loss_alpha and mtp_loss_weight are let through, as they always were. */
export function strayDeepseekFields(c: Partial<Record<(typeof DEEPSEEK_KEYS)[number], unknown>>): (typeof DEEPSEEK_KEYS)[number][] {
  return DEEPSEEK_KEYS.filter((k) => c[k] !== undefined && k !== 'aux_loss_alpha' && k !== 'mtp_loss_weight');
}

/** The deepseek_v3 fields with r1kit's defaults where a config leaves one out. */
export type Deepseek = {
  q_lora_rank: number | null;
  kv_lora_rank: number;
  qk_nope_head_dim: number;
  qk_rope_head_dim: number;
  v_head_dim: number;
  rope_interleave: boolean;
  first_k_dense_replace: number;
  n_routed_experts: number;
  n_shared_experts: number;
  moe_intermediate_size: number;
  num_experts_per_tok: number;
  n_group: number;
  topk_group: number;
  norm_topk_prob: boolean;
  routed_scaling_factor: number;
  num_nextn_predict_layers: number;
  aux_loss_alpha: number;
  mtp_loss_weight: number;
};

/** MLA, MoE and MTP sizes of a deepseek_v3 config (validated), defaults filled in: q_lora_rank null,
 * rope_interleave true, first_k_dense_replace 1, n_shared_experts 1, n_group and topk_group 1,
 * norm_topk_prob true, routed_scaling_factor 1, no MTP module, aux_loss_alpha 0.0001, mtp_loss_weight 0.3. */
export function deepseek(c: ModelConfig): Deepseek {
  return {
    q_lora_rank: c.q_lora_rank ?? null,
    kv_lora_rank: c.kv_lora_rank!,
    qk_nope_head_dim: c.qk_nope_head_dim!,
    qk_rope_head_dim: c.qk_rope_head_dim!,
    v_head_dim: c.v_head_dim!,
    rope_interleave: c.rope_interleave ?? true,
    first_k_dense_replace: c.first_k_dense_replace ?? 1,
    n_routed_experts: c.n_routed_experts!,
    n_shared_experts: c.n_shared_experts ?? 1,
    moe_intermediate_size: c.moe_intermediate_size!,
    num_experts_per_tok: c.num_experts_per_tok!,
    n_group: c.n_group ?? 1,
    topk_group: c.topk_group ?? 1,
    norm_topk_prob: c.norm_topk_prob ?? true,
    routed_scaling_factor: c.routed_scaling_factor ?? 1,
    num_nextn_predict_layers: c.num_nextn_predict_layers ?? 0,
    aux_loss_alpha: c.aux_loss_alpha ?? 0.0001,
    mtp_loss_weight: c.mtp_loss_weight ?? 0.3,
  };
}

/** What does not fit in a deepseek_v3 config, each naming its field (`${where}.<field> ...`). */
export function deepseekProblems(c: ModelConfig, where: string): string[] {
  const bad: string[] = [];
  const positive = (k: keyof DeepseekFields, optional = false, zero = false) => {
    const v = c[k] as unknown;
    if (v === undefined && optional) return true;
    if (!Number.isInteger(v) || (v as number) < (zero ? 0 : 1)) {
      bad.push(`${where}.${k} must be a ${zero ? 'non-negative' : 'positive'} integer (got ${JSON.stringify(v)})`);
      return false;
    }
    return true;
  };
  for (const k of [
    'kv_lora_rank',
    'qk_nope_head_dim',
    'qk_rope_head_dim',
    'v_head_dim',
    'n_routed_experts',
    'moe_intermediate_size',
    'num_experts_per_tok',
  ] as const)
    positive(k);
  if (c.q_lora_rank !== null) positive('q_lora_rank', true);
  for (const k of ['n_group', 'topk_group', 'moe_layer_freq'] as const) positive(k, true);
  for (const k of ['first_k_dense_replace', 'n_shared_experts', 'num_nextn_predict_layers'] as const) positive(k, true, true);
  for (const k of ['routed_scaling_factor', 'aux_loss_alpha', 'mtp_loss_weight'] as const) {
    const v = c[k];
    if (v !== undefined && (typeof v !== 'number' || !(v >= 0) || (k === 'routed_scaling_factor' && v === 0)))
      bad.push(`${where}.${k} must be a ${k === 'routed_scaling_factor' ? 'positive' : 'non-negative'} number (got ${JSON.stringify(v)})`);
  }
  if ((c.scoring_func ?? 'sigmoid') !== 'sigmoid')
    bad.push(`${where}.scoring_func ${JSON.stringify(c.scoring_func)} is not supported; supported: sigmoid (DeepSeek-V3)`);
  if ((c.topk_method ?? 'noaux_tc') !== 'noaux_tc')
    bad.push(
      `${where}.topk_method ${JSON.stringify(c.topk_method)} is not supported; supported: noaux_tc (group-limited top-k with the correction bias)`,
    );
  if ((c.moe_layer_freq ?? 1) !== 1)
    bad.push(`${where}.moe_layer_freq must be 1 (every layer after first_k_dense_replace is MoE; got ${c.moe_layer_freq})`);
  if (bad.length) return bad;
  const d = deepseek(c);
  if (c.num_key_value_heads !== c.num_attention_heads) {
    bad.push(
      `${where}.num_key_value_heads (${c.num_key_value_heads}) must equal ${where}.num_attention_heads (${c.num_attention_heads}): MLA expands its latent into every head`,
    );
  }
  if (d.qk_rope_head_dim % 2 !== 0) bad.push(`${where}.qk_rope_head_dim must be even for rotary embeddings (got ${d.qk_rope_head_dim})`);
  const kvSize = c.num_attention_heads * (d.qk_nope_head_dim + d.v_head_dim);
  if (d.kv_lora_rank > kvSize) {
    bad.push(
      `${where}.kv_lora_rank (${d.kv_lora_rank}) must not exceed num_attention_heads x (qk_nope_head_dim + v_head_dim) = ${kvSize}: the latent would be larger than the keys and values it expands to`,
    );
  }
  if (d.q_lora_rank !== null && d.q_lora_rank > c.num_attention_heads * (d.qk_nope_head_dim + d.qk_rope_head_dim)) {
    bad.push(
      `${where}.q_lora_rank (${d.q_lora_rank}) must not exceed num_attention_heads x (qk_nope_head_dim + qk_rope_head_dim) = ${c.num_attention_heads * (d.qk_nope_head_dim + d.qk_rope_head_dim)}`,
    );
  }
  const E = d.n_routed_experts,
    G = d.n_group;
  if (d.num_experts_per_tok > E)
    bad.push(`${where}.num_experts_per_tok (${d.num_experts_per_tok}) must not exceed ${where}.n_routed_experts (${E})`);
  if (d.topk_group > G) bad.push(`${where}.topk_group (${d.topk_group}) must not exceed ${where}.n_group (${G})`);
  if (E % G !== 0) bad.push(`${where}.n_routed_experts (${E}) must divide into ${where}.n_group (${G}) equal groups`);
  else if (E / G < 2)
    bad.push(`${where}.n_group (${G}) must leave at least 2 experts per group (a group scores by its top 2), got ${E / G}`);
  else if (d.topk_group <= G && d.num_experts_per_tok > d.topk_group * (E / G)) {
    bad.push(
      `${where}.num_experts_per_tok (${d.num_experts_per_tok}) must not exceed topk_group x experts per group = ${d.topk_group * (E / G)}`,
    );
  }
  if (d.first_k_dense_replace > c.num_hidden_layers)
    bad.push(`${where}.first_k_dense_replace (${d.first_k_dense_replace}) must not exceed num_hidden_layers (${c.num_hidden_layers})`);
  if (d.num_nextn_predict_layers > 1)
    bad.push(`${where}.num_nextn_predict_layers must be 0 or 1 (one MTP module, as DeepSeek-V3 ships; got ${d.num_nextn_predict_layers})`);
  if (c.mlp_bias) bad.push(`${where}.mlp_bias: deepseek_v3 has no feed-forward biases`);
  return bad;
}

/** True for a DeepSeekMoE layer (index num_hidden_layers is the MTP module's block). */
export function isMoeLayer(c: ModelConfig, layer: number): boolean {
  return family(c) === 'deepseek_v3' && layer >= deepseek(c).first_k_dense_replace;
}

/** Bytes the KV cache holds per token (all layers), at `bytesPerValue` (4: float32): 2 x kv heads x
 * head size per layer for grouped-query attention; kv_lora_rank + qk_rope_head_dim per layer for MLA,
 * which caches only the latent and the shared rope key. */
export function kvCacheBytesPerToken(c: ModelConfig, bytesPerValue = 4): number {
  if (family(c) !== 'deepseek_v3') return c.num_hidden_layers * 2 * c.num_key_value_heads * headDim(c) * bytesPerValue;
  const d = deepseek(c);
  return c.num_hidden_layers * (d.kv_lora_rank + d.qk_rope_head_dim) * bytesPerValue;
}

export function family(c: ModelConfig): Family {
  return c.model_type ?? 'llama';
}

/** Per-head size of queries and keys (deepseek_v3: qk_nope_head_dim + qk_rope_head_dim). */
export function headDim(c: ModelConfig): number {
  if (family(c) === 'deepseek_v3') return c.qk_nope_head_dim! + c.qk_rope_head_dim!;
  return c.head_dim ?? c.hidden_size / c.num_attention_heads;
}

/** Which projections carry a bias, as each family's modeling file builds them. */
export function biases(c: ModelConfig): { qkv: boolean; o: boolean; mlp: boolean } {
  const f = family(c),
    attention = c.attention_bias ?? false;
  return { qkv: f === 'qwen2' || attention, o: f !== 'qwen2' && attention, mlp: f === 'llama' && (c.mlp_bias ?? false) };
}

/** qwen3's RMSNorm over each head of q and of k. */
export function hasQkNorm(c: ModelConfig): boolean {
  return family(c) === 'qwen3';
}

/** Parameters, counting tied embeddings once. deepseek_v3: every expert and the MTP module
 * (`active`: only num_experts_per_tok routed experts per MoE layer, as a token sees them). */
export function parameterCount(c: ModelConfig, active = false): number {
  if (family(c) === 'deepseek_v3') return deepseekParameterCount(c, active);
  const C = c.hidden_size,
    D = headDim(c),
    H = c.num_attention_heads,
    Hkv = c.num_key_value_heads,
    F = c.intermediate_size,
    b = biases(c);
  const attn = C * (H + 2 * Hkv) * D + H * D * C + (b.qkv ? (H + 2 * Hkv) * D : 0) + (b.o ? C : 0) + (hasQkNorm(c) ? 2 * D : 0);
  const mlp = 3 * C * F + (b.mlp ? 2 * F + C : 0);
  const layer = attn + mlp + 2 * C;
  const emb = c.vocab_size * C * (c.tie_word_embeddings ? 1 : 2);
  return emb + c.num_hidden_layers * layer + C;
}

function deepseekParameterCount(c: ModelConfig, active: boolean): number {
  const C = c.hidden_size,
    H = c.num_attention_heads,
    V = c.vocab_size,
    d = deepseek(c),
    bias = c.attention_bias ?? false;
  const { q_lora_rank: qr, kv_lora_rank: r, qk_nope_head_dim: dn, qk_rope_head_dim: dr, v_head_dim: dv } = d;
  const q = qr === null ? C * H * (dn + dr) : C * qr + (bias ? qr : 0) + qr + qr * H * (dn + dr);
  const attn = q + C * (r + dr) + (bias ? r + dr : 0) + r + r * H * (dn + dv) + H * dv * C + (bias ? C : 0);
  const moe =
    d.n_routed_experts * C +
    d.n_routed_experts +
    (active ? d.num_experts_per_tok : d.n_routed_experts) * 3 * C * d.moe_intermediate_size +
    3 * C * d.moe_intermediate_size * d.n_shared_experts;
  const layer = (i: number) => attn + 2 * C + (i < d.first_k_dense_replace ? 3 * C * c.intermediate_size : moe);
  let n = V * C * (c.tie_word_embeddings ? 1 : 2) + C;
  for (let i = 0; i < c.num_hidden_layers; i++) n += layer(i);
  if (d.num_nextn_predict_layers) n += 3 * C + 2 * C * C + layer(c.num_hidden_layers) + C * V;
  return n;
}
