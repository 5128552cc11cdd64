// config.json of a Hugging Face checkpoint <-> ModelConfig. Reading accepts exactly what the model
// code implements (FAMILIES, rope_scaling linear and llama3) and refuses the rest with an error that
// names the file, the field and what is supported: a field ignored here would be a different model.
import { UserError } from '../errors.ts';
import type { Dtype } from '../engine/safetensors.ts';
import { FAMILIES, type Family, type ModelConfig, type RopeScaling, deepseek, headDim, validateConfig } from './config.ts';

const ARCHITECTURE: Record<Family, string> = {
  llama: 'LlamaForCausalLM',
  qwen2: 'Qwen2ForCausalLM',
  qwen3: 'Qwen3ForCausalLM',
  deepseek_v3: 'DeepseekV3ForCausalLM',
};
/** The defaults of each family's configuration class where a config.json leaves a field out. */
const DEFAULT_CONTEXT: Record<Family, number> = { llama: 2048, qwen2: 32768, qwen3: 32768, deepseek_v3: 4096 };
const ROPE_FIELDS: Record<string, string[]> = {
  default: [],
  linear: ['factor'],
  llama3: ['factor', 'low_freq_factor', 'high_freq_factor', 'original_max_position_embeddings'],
  yarn: [
    'factor',
    'original_max_position_embeddings',
    'beta_fast',
    'beta_slow',
    'mscale',
    'mscale_all_dim',
    'attention_factor',
    'truncate',
  ],
};
/** DeepseekV3Config's defaults (DeepSeek-V3's sizes) for fields a config.json leaves out. */
const DEEPSEEK_DEFAULTS: Record<string, unknown> = {
  q_lora_rank: 1536,
  kv_lora_rank: 512,
  qk_nope_head_dim: 128,
  qk_rope_head_dim: 64,
  v_head_dim: 128,
  n_routed_experts: 256,
  n_shared_experts: 1,
  moe_intermediate_size: 2048,
  num_experts_per_tok: 8,
  n_group: 8,
  topk_group: 4,
  first_k_dense_replace: 3,
  norm_topk_prob: true,
  routed_scaling_factor: 2.5,
  rope_interleave: true,
  scoring_func: 'sigmoid',
  topk_method: 'noaux_tc',
  moe_layer_freq: 1,
  num_nextn_predict_layers: 0,
};
export const TORCH_DTYPE: Record<Dtype, string> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' };

type Raw = Record<string, unknown>;

/** A config.json's content as a ModelConfig; `file` names it in errors. */
export function parseHfConfig(raw: Raw, file: string): ModelConfig {
  const fail = (msg: string): never => {
    throw new UserError(`${file}: ${msg}`);
  };
  const type = raw.model_type;
  if (!FAMILIES.includes(type as Family)) {
    fail(`model_type ${JSON.stringify(type)} is not supported; supported: ${FAMILIES.join(', ')}`);
  }
  const fam = type as Family;
  if (raw.quantization_config !== undefined)
    fail('quantization_config: quantized checkpoints are not supported (F32, F16 and BF16 weights are)');
  const act = raw.hidden_act ?? 'silu';
  if (act !== 'silu') fail(`hidden_act ${JSON.stringify(act)} is not supported; supported: silu (SwiGLU)`);
  if (raw.use_sliding_window === true)
    fail('use_sliding_window: sliding-window attention is not supported; supported: full attention (use_sliding_window false)');
  if (Array.isArray(raw.layer_types) && raw.layer_types.some((t) => t !== 'full_attention')) {
    fail(`layer_types: only full_attention layers are supported (got ${[...new Set(raw.layer_types)].join(', ')})`);
  }
  if ((raw.partial_rotary_factor ?? 1) !== 1) fail('partial_rotary_factor: only 1 (rotation over the whole head) is supported');
  const int = (k: string, def?: number): number => {
    const v = raw[k] ?? def;
    if (!Number.isInteger(v) || (v as number) <= 0) fail(`${k} must be a positive integer (got ${JSON.stringify(raw[k])})`);
    return v as number;
  };
  const num = (k: string, def: number): number => {
    const v = raw[k] ?? def;
    if (typeof v !== 'number' || !(v > 0)) fail(`${k} must be a positive number (got ${JSON.stringify(raw[k])})`);
    return v as number;
  };
  const bool = (k: string): boolean => {
    const v = raw[k] ?? false;
    if (typeof v !== 'boolean') fail(`${k} must be true or false (got ${JSON.stringify(raw[k])})`);
    return v as boolean;
  };
  const heads = int('num_attention_heads');
  const rope = parseRope(raw, fail, fam);
  const c: ModelConfig = {
    model_type: fam,
    vocab_size: int('vocab_size'),
    hidden_size: int('hidden_size'),
    num_hidden_layers: int('num_hidden_layers'),
    num_attention_heads: heads,
    num_key_value_heads: int('num_key_value_heads', heads),
    intermediate_size: int('intermediate_size'),
    max_position_embeddings: int('max_position_embeddings', DEFAULT_CONTEXT[fam]),
    rope_theta: rope.theta,
    rope_scaling: rope.scaling,
    rms_norm_eps: num('rms_norm_eps', 1e-6),
    tie_word_embeddings: bool('tie_word_embeddings'),
    attention_bias: bool('attention_bias'),
    mlp_bias: bool('mlp_bias'),
  };
  if (fam === 'deepseek_v3') {
    // Types only here; validateConfig checks the sizes fit (naming this file and the field).
    const field = (k: string) => (raw[k] === undefined ? DEEPSEEK_DEFAULTS[k] : raw[k]);
    const d = c as Record<string, unknown>;
    for (const k of Object.keys(DEEPSEEK_DEFAULTS)) {
      const v = field(k),
        want = typeof DEEPSEEK_DEFAULTS[k];
      if (k === 'q_lora_rank' && v === null) d[k] = null;
      else if (typeof v !== want) fail(`${k} must be a ${want === 'boolean' ? 'boolean' : want} (got ${JSON.stringify(v)})`);
      else d[k] = v;
    }
    if (raw.aux_loss_alpha !== undefined) {
      if (typeof raw.aux_loss_alpha !== 'number') fail(`aux_loss_alpha must be a number (got ${JSON.stringify(raw.aux_loss_alpha)})`);
      c.aux_loss_alpha = raw.aux_loss_alpha as number;
    }
    delete c.mlp_bias;
    return validateConfig(c, file);
  }
  // Qwen3Config's head_dim defaults to 128; the others' to hidden_size / heads.
  if (raw.head_dim !== undefined && raw.head_dim !== null) c.head_dim = int('head_dim');
  else if (fam === 'qwen3') c.head_dim = 128;
  return validateConfig(c, file);
}

/** rope_theta and rope_scaling, from transformers 4.x `rope_scaling` + `rope_theta` or 5.x `rope_parameters`. */
function parseRope(raw: Raw, fail: (msg: string) => never, fam: Family): { theta: number; scaling: RopeScaling | null } {
  const key = raw.rope_parameters ? 'rope_parameters' : 'rope_scaling';
  for (const k of ['rope_scaling', 'rope_parameters']) {
    if (raw[k] !== undefined && raw[k] !== null && (typeof raw[k] !== 'object' || Array.isArray(raw[k])))
      fail(`${k} must be an object or null`);
  }
  const scaling = (raw.rope_scaling ?? {}) as Raw,
    parameters = (raw.rope_parameters ?? {}) as Raw;
  for (const k of Object.keys(scaling)) {
    if (k in parameters && JSON.stringify(parameters[k]) !== JSON.stringify(scaling[k]))
      fail(`rope_scaling.${k} and rope_parameters.${k} disagree`);
  }
  const p: Raw = { ...scaling, ...parameters };
  if (p.type !== undefined && p.rope_type !== undefined && p.type !== p.rope_type)
    fail(`${key}: type ${JSON.stringify(p.type)} and rope_type ${JSON.stringify(p.rope_type)} disagree`);
  const type = p.rope_type ?? p.type ?? 'default';
  // yarn is checked against the reference for deepseek_v3 only.
  const types = Object.keys(ROPE_FIELDS).filter((t) => t !== 'yarn' || fam === 'deepseek_v3');
  const fields = types.includes(type as string) ? ROPE_FIELDS[type as string] : undefined;
  if (!fields)
    fail(
      `${key}: rope type ${JSON.stringify(type)} is not supported; supported: ${types.join(', ')}${type === 'yarn' ? ' (yarn: model_type deepseek_v3 only)' : ''}`,
    );
  for (const k of Object.keys(p)) {
    if (k === 'type' || k === 'rope_type' || k === 'rope_theta' || fields.includes(k)) continue;
    if (k === 'partial_rotary_factor' && p[k] === 1) continue;
    fail(`${key}.${k} is not supported for rope type ${type}; supported fields: ${['rope_type', 'rope_theta', ...fields].join(', ')}`);
  }
  const value = (k: string): number => {
    if (typeof p[k] !== 'number' || !((p[k] as number) > 0))
      fail(`${key}.${k} must be a positive number for rope type ${type} (got ${JSON.stringify(p[k])})`);
    return p[k] as number;
  };
  const thetaGiven = p.rope_theta ?? raw.rope_theta ?? 10000;
  if (typeof thetaGiven !== 'number' || !(thetaGiven > 0)) fail(`rope_theta must be a positive number (got ${JSON.stringify(thetaGiven)})`);
  const theta = thetaGiven as number;
  if (type === 'linear') return { theta, scaling: { rope_type: 'linear', factor: value('factor') } };
  if (type === 'yarn') {
    const optional = (k: string) => (p[k] === undefined || p[k] === null ? undefined : value(k));
    if (p.truncate !== undefined && typeof p.truncate !== 'boolean')
      fail(`${key}.truncate must be true or false (got ${JSON.stringify(p.truncate)})`);
    const yarn: RopeScaling = { rope_type: 'yarn', factor: value('factor') };
    for (const k of [
      'original_max_position_embeddings',
      'beta_fast',
      'beta_slow',
      'mscale',
      'mscale_all_dim',
      'attention_factor',
    ] as const) {
      const v = optional(k);
      if (v !== undefined) yarn[k] = v;
    }
    if (p.truncate !== undefined) yarn.truncate = p.truncate as boolean;
    return { theta, scaling: yarn };
  }
  if (type === 'llama3') {
    const scaling = {
      rope_type: 'llama3' as const,
      factor: value('factor'),
      low_freq_factor: value('low_freq_factor'),
      high_freq_factor: value('high_freq_factor'),
      original_max_position_embeddings: value('original_max_position_embeddings'),
    };
    if (scaling.high_freq_factor <= scaling.low_freq_factor) fail(`${key}: high_freq_factor must exceed low_freq_factor`);
    return { theta, scaling };
  }
  return { theta, scaling: null };
}

/** config.json for a model made here: the family's architecture and every field its config class reads. */
export function hfConfig(c: ModelConfig, dtype: Dtype, special: { bos?: number; eos?: number; pad?: number } = {}): Raw {
  const fam = c.model_type ?? 'llama';
  if (fam === 'deepseek_v3') {
    // Every field written out: DeepseekV3Config's defaults are DeepSeek-V3's sizes, not r1kit's.
    return {
      architectures: [ARCHITECTURE[fam]],
      model_type: fam,
      hidden_act: 'silu',
      torch_dtype: TORCH_DTYPE[dtype],
      attention_bias: false,
      scoring_func: 'sigmoid',
      topk_method: 'noaux_tc',
      moe_layer_freq: 1,
      bos_token_id: special.bos,
      eos_token_id: special.eos,
      pad_token_id: special.pad,
      ...c,
      ...deepseek(c),
      rope_scaling: c.rope_scaling ?? null,
    };
  }
  return {
    architectures: [ARCHITECTURE[fam]],
    model_type: fam,
    hidden_act: 'silu',
    torch_dtype: TORCH_DTYPE[dtype],
    attention_bias: false,
    mlp_bias: false,
    head_dim: headDim(c),
    bos_token_id: special.bos,
    eos_token_id: special.eos,
    pad_token_id: special.pad,
    ...c,
  };
}

/** A loaded checkpoint's config.json written back: every field as it was, the dtype as saved. */
export function originConfig(origin: Raw, dtype: Dtype): Raw {
  const out: Raw = { ...origin, torch_dtype: TORCH_DTYPE[dtype] };
  if ('dtype' in origin) out.dtype = TORCH_DTYPE[dtype]; // transformers 5 renamed torch_dtype
  return out;
}
