// Model configuration, named as in Hugging Face's config.json (LlamaConfig, Qwen2Config, Qwen3Config)
// so a config opens in other tools. r1kit's own models are `llama`; hf-config.ts reads the others.
import { UserError } from '../errors.ts';

/** Decoder families with their exact Hugging Face semantics: `qwen2` is llama with q/k/v biases,
 * `qwen3` llama with an RMSNorm over each head of q and k before the rotation. */
export const FAMILIES = ['llama', 'qwen2', 'qwen3'] as const;
export type Family = (typeof FAMILIES)[number];

/** RoPE frequency scaling (modeling_rope_utils.py): `linear` divides every frequency by `factor`;
 * `llama3` divides the low frequencies, keeps the high ones and blends those in between. */
export type RopeScaling =
  | { rope_type: 'linear'; factor: number }
  | { rope_type: 'llama3'; factor: number; low_freq_factor: number; high_freq_factor: number; original_max_position_embeddings: number };

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
};

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
  for (const k of ['vocab_size', 'hidden_size', 'num_hidden_layers', 'num_attention_heads', 'num_key_value_heads', 'intermediate_size', 'max_position_embeddings'] as const) {
    if (!Number.isInteger(c[k]) || c[k] <= 0) bad.push(`${where}.${k} must be a positive integer (got ${c[k]})`);
  }
  if (c.head_dim !== undefined && (!Number.isInteger(c.head_dim) || c.head_dim <= 0)) bad.push(`${where}.head_dim must be a positive integer (got ${c.head_dim})`);
  if (bad.length === 0) {
    if (c.head_dim === undefined && c.hidden_size % c.num_attention_heads !== 0) {
      bad.push(`${where}.hidden_size (${c.hidden_size}) must be divisible by ${where}.num_attention_heads (${c.num_attention_heads})`);
    } else if (headDim(c) % 2 !== 0) {
      bad.push(`${where}: the head size must be even for rotary embeddings (got ${headDim(c)})`);
    }
    if (c.num_attention_heads % c.num_key_value_heads !== 0) {
      bad.push(`${where}.num_attention_heads (${c.num_attention_heads}) must be divisible by ${where}.num_key_value_heads (${c.num_key_value_heads})`);
    }
  }
  if (bad.length) throw new UserError(`model config does not fit:\n  ${bad.join('\n  ')}`);
  return c;
}

export function family(c: ModelConfig): Family {
  return c.model_type ?? 'llama';
}

export function headDim(c: ModelConfig): number {
  return c.head_dim ?? c.hidden_size / c.num_attention_heads;
}

/** Which projections carry a bias, as each family's modeling file builds them. */
export function biases(c: ModelConfig): { qkv: boolean; o: boolean; mlp: boolean } {
  const f = family(c), attention = c.attention_bias ?? false;
  return { qkv: f === 'qwen2' || attention, o: f !== 'qwen2' && attention, mlp: f === 'llama' && (c.mlp_bias ?? false) };
}

/** qwen3's RMSNorm over each head of q and of k. */
export function hasQkNorm(c: ModelConfig): boolean {
  return family(c) === 'qwen3';
}

/** Parameters, counting tied embeddings once. */
export function parameterCount(c: ModelConfig): number {
  const C = c.hidden_size, D = headDim(c), H = c.num_attention_heads, Hkv = c.num_key_value_heads, F = c.intermediate_size, b = biases(c);
  const attn = C * (H + 2 * Hkv) * D + H * D * C + (b.qkv ? (H + 2 * Hkv) * D : 0) + (b.o ? C : 0) + (hasQkNorm(c) ? 2 * D : 0);
  const mlp = 3 * C * F + (b.mlp ? 2 * F + C : 0);
  const layer = attn + mlp + 2 * C;
  const emb = c.vocab_size * C * (c.tie_word_embeddings ? 1 : 2);
  return emb + c.num_hidden_layers * layer + C;
}
