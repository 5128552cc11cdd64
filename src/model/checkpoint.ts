// Checkpoints on disk in Hugging Face's Llama layout: model.safetensors (HF tensor names, [out, in]
// projections) and config.json, so a trained model opens in other tools. A checkpoint directory is
// staged beside its final name and renamed into place: a crash leaves the old one or the new one.
import * as tf from '@tensorflow/tfjs-core';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { UserError } from '../errors.ts';
import { type NamedArray, readSafetensors, writeSafetensors } from '../engine/safetensors.ts';
import { type ModelConfig, headDim, validateConfig } from './config.ts';
import { type Params, Transformer, parameterShapes, uniqueName } from './transformer.ts';

/** Writes a directory atomically: `fill` writes into a staging directory, which then replaces `dir`. */
export function writeDirAtomic(dir: string, fill: (staging: string) => void): void {
  mkdirSync(dirname(dir), { recursive: true });
  const staging = join(dirname(dir), `.${basename(dir)}.staging-${process.pid}`);
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging);
  try {
    fill(staging);
  } catch (e) {
    rmSync(staging, { recursive: true, force: true });
    throw e;
  }
  const old = join(dirname(dir), `.${basename(dir)}.old-${process.pid}`);
  if (existsSync(dir)) renameSync(dir, old);
  renameSync(staging, dir);
  rmSync(old, { recursive: true, force: true });
}

function transpose(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c];
  return out;
}

/** Columns [from, from + n) of a row-major [rows, cols] matrix, transposed to [n, rows]. */
function columnsT(data: Float32Array, rows: number, cols: number, from: number, n: number): Float32Array {
  const out = new Float32Array(n * rows);
  for (let r = 0; r < rows; r++) for (let c = 0; c < n; c++) out[c * rows + r] = data[r * cols + from + c];
  return out;
}

/** Our parameters -> Hugging Face Llama tensors. */
export function toHuggingFace(c: ModelConfig, values: Record<string, Float32Array>): Record<string, NamedArray> {
  const C = c.hidden_size, D = headDim(c), H = c.num_attention_heads, Hkv = c.num_key_value_heads, F = c.intermediate_size;
  const out: Record<string, NamedArray> = {
    'model.embed_tokens.weight': { shape: [c.vocab_size, C], data: values.embed },
    'model.norm.weight': { shape: [C], data: values.norm },
  };
  if (!c.tie_word_embeddings) out['lm_head.weight'] = { shape: [c.vocab_size, C], data: transpose(values.lm_head, C, c.vocab_size) };
  const qkvCols = (H + 2 * Hkv) * D;
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const p = `model.layers.${i}`, qkv = values[`layers.${i}.wqkv`], gu = values[`layers.${i}.w_gate_up`];
    out[`${p}.input_layernorm.weight`] = { shape: [C], data: values[`layers.${i}.attn_norm`] };
    out[`${p}.post_attention_layernorm.weight`] = { shape: [C], data: values[`layers.${i}.mlp_norm`] };
    out[`${p}.self_attn.q_proj.weight`] = { shape: [H * D, C], data: columnsT(qkv, C, qkvCols, 0, H * D) };
    out[`${p}.self_attn.k_proj.weight`] = { shape: [Hkv * D, C], data: columnsT(qkv, C, qkvCols, H * D, Hkv * D) };
    out[`${p}.self_attn.v_proj.weight`] = { shape: [Hkv * D, C], data: columnsT(qkv, C, qkvCols, (H + Hkv) * D, Hkv * D) };
    out[`${p}.self_attn.o_proj.weight`] = { shape: [C, H * D], data: transpose(values[`layers.${i}.wo`], H * D, C) };
    out[`${p}.mlp.gate_proj.weight`] = { shape: [F, C], data: columnsT(gu, C, 2 * F, 0, F) };
    out[`${p}.mlp.up_proj.weight`] = { shape: [F, C], data: columnsT(gu, C, 2 * F, F, F) };
    out[`${p}.mlp.down_proj.weight`] = { shape: [C, F], data: transpose(values[`layers.${i}.w_down`], F, C) };
  }
  return out;
}

/** Hugging Face Llama tensors -> our parameters; names the missing or misshapen tensor. */
export function fromHuggingFace(c: ModelConfig, hf: Record<string, NamedArray>, file: string): Record<string, Float32Array> {
  const C = c.hidden_size, D = headDim(c), H = c.num_attention_heads, Hkv = c.num_key_value_heads, F = c.intermediate_size;
  const get = (name: string, shape: number[]): Float32Array => {
    const t = hf[name];
    if (!t) throw new UserError(`checkpoint ${file} has no tensor ${name}`);
    if (t.shape.join() !== shape.join()) throw new UserError(`checkpoint ${file}: ${name} has shape [${t.shape}], config.json implies [${shape}]`);
    return t.data;
  };
  const values: Record<string, Float32Array> = {
    embed: get('model.embed_tokens.weight', [c.vocab_size, C]),
    norm: get('model.norm.weight', [C]),
  };
  if (!c.tie_word_embeddings) values.lm_head = transpose(get('lm_head.weight', [c.vocab_size, C]), c.vocab_size, C);
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const p = `model.layers.${i}`;
    values[`layers.${i}.attn_norm`] = get(`${p}.input_layernorm.weight`, [C]);
    values[`layers.${i}.mlp_norm`] = get(`${p}.post_attention_layernorm.weight`, [C]);
    const q = get(`${p}.self_attn.q_proj.weight`, [H * D, C]);
    const k = get(`${p}.self_attn.k_proj.weight`, [Hkv * D, C]);
    const v = get(`${p}.self_attn.v_proj.weight`, [Hkv * D, C]);
    const qkvT = new Float32Array((H + 2 * Hkv) * D * C);
    qkvT.set(q, 0);
    qkvT.set(k, q.length);
    qkvT.set(v, q.length + k.length);
    values[`layers.${i}.wqkv`] = transpose(qkvT, (H + 2 * Hkv) * D, C);
    values[`layers.${i}.wo`] = transpose(get(`${p}.self_attn.o_proj.weight`, [C, H * D]), C, H * D);
    const gu = new Float32Array(2 * F * C);
    gu.set(get(`${p}.mlp.gate_proj.weight`, [F, C]), 0);
    gu.set(get(`${p}.mlp.up_proj.weight`, [F, C]), F * C);
    values[`layers.${i}.w_gate_up`] = transpose(gu, 2 * F, C);
    values[`layers.${i}.w_down`] = transpose(get(`${p}.mlp.down_proj.weight`, [C, F]), C, F);
  }
  return values;
}

export function hfConfig(c: ModelConfig, special: { bos?: number; eos?: number; pad?: number } = {}): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_act: 'silu',
    torch_dtype: 'float32',
    attention_bias: false,
    mlp_bias: false,
    head_dim: headDim(c),
    bos_token_id: special.bos,
    eos_token_id: special.eos,
    pad_token_id: special.pad,
    ...c,
  };
}

export function modelValues(model: Transformer): Record<string, Float32Array> {
  const values: Record<string, Float32Array> = {};
  for (const [k, v] of Object.entries(model.params)) values[k] = v.dataSync() as Float32Array;
  return values;
}

/** Writes model.safetensors and config.json into `dir` (not atomic on its own: call inside
 * writeDirAtomic, or use saveModel). */
export function writeModelFiles(dir: string, model: Transformer, special: { bos?: number; eos?: number; pad?: number } = {}): void {
  writeSafetensors(join(dir, 'model.safetensors'), toHuggingFace(model.config, modelValues(model)), { format: 'pt' });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(hfConfig(model.config, special), null, 2) + '\n');
}

export function saveModel(dir: string, model: Transformer, special: { bos?: number; eos?: number; pad?: number } = {}): void {
  writeDirAtomic(dir, (staging) => writeModelFiles(staging, model, special));
}

export function readModelConfig(dir: string): ModelConfig {
  const file = join(dir, 'config.json');
  let raw: Record<string, any>;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new UserError(`cannot read model config ${file}: ${(e as Error).message}`);
  }
  const c: ModelConfig = {
    vocab_size: raw.vocab_size,
    hidden_size: raw.hidden_size,
    num_hidden_layers: raw.num_hidden_layers,
    num_attention_heads: raw.num_attention_heads,
    num_key_value_heads: raw.num_key_value_heads ?? raw.num_attention_heads,
    intermediate_size: raw.intermediate_size,
    max_position_embeddings: raw.max_position_embeddings,
    rope_theta: raw.rope_theta ?? 10000,
    rms_norm_eps: raw.rms_norm_eps ?? 1e-6,
    tie_word_embeddings: raw.tie_word_embeddings ?? false,
  };
  return validateConfig(c, file);
}

export function loadModel(dir: string): Transformer {
  const config = readModelConfig(dir);
  const file = join(dir, 'model.safetensors');
  const values = fromHuggingFace(config, readSafetensors(file).tensors, file);
  const params: Params = {};
  for (const [name, shape] of Object.entries(parameterShapes(config))) params[name] = tf.variable(tf.tensor(values[name], shape), true, uniqueName(name));
  return new Transformer(config, params);
}
