// Model configuration, named as in Hugging Face's LlamaConfig so config.json opens in other tools.
import { UserError } from '../errors.ts';

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
  if (bad.length === 0) {
    if (c.hidden_size % c.num_attention_heads !== 0) {
      bad.push(`${where}.hidden_size (${c.hidden_size}) must be divisible by ${where}.num_attention_heads (${c.num_attention_heads})`);
    } else if ((c.hidden_size / c.num_attention_heads) % 2 !== 0) {
      bad.push(`${where}.hidden_size / num_attention_heads must be even for rotary embeddings (got ${c.hidden_size / c.num_attention_heads})`);
    }
    if (c.num_attention_heads % c.num_key_value_heads !== 0) {
      bad.push(`${where}.num_attention_heads (${c.num_attention_heads}) must be divisible by ${where}.num_key_value_heads (${c.num_key_value_heads})`);
    }
  }
  if (bad.length) throw new UserError(`model config does not fit:\n  ${bad.join('\n  ')}`);
  return c;
}

export function headDim(c: ModelConfig): number {
  return c.hidden_size / c.num_attention_heads;
}

/** Parameters, counting tied embeddings once. */
export function parameterCount(c: ModelConfig): number {
  const d = headDim(c);
  const attn = c.hidden_size * (c.num_attention_heads + 2 * c.num_key_value_heads) * d + c.num_attention_heads * d * c.hidden_size;
  const mlp = 3 * c.hidden_size * c.intermediate_size;
  const layer = attn + mlp + 2 * c.hidden_size;
  const emb = c.vocab_size * c.hidden_size * (c.tie_word_embeddings ? 1 : 2);
  return emb + c.num_hidden_layers * layer + c.hidden_size;
}
