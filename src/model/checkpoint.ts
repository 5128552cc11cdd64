// Checkpoints on disk in Hugging Face layout: config.json, model.safetensors (or shards named in
// model.safetensors.index.json) with the family's tensor names and [out, in] projections, and
// generation_config.json, so a model trained here opens in other tools and theirs open here.
// Loading checks every tensor against config.json: a missing, extra or misshapen one is an error
// naming the file and the tensor, never a silently different model. A checkpoint directory is
// staged beside its final name and renamed into place: a crash leaves the old one or the new one.
import * as tf from '@tensorflow/tfjs-core';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { UserError } from '../errors.ts';
import {
  type Dtype,
  type NamedArray,
  type TensorEntry,
  readSafetensors,
  readSafetensorsHeader,
  writeSafetensors,
} from '../engine/safetensors.ts';
import { type ModelConfig, biases, deepseek, family, hasQkNorm, headDim, isMoeLayer } from './config.ts';
import { hfConfig, originConfig, parseHfConfig } from './hf-config.ts';
import { resolveModelDir } from './hub.ts';
import type { z } from 'zod';
import { Bf16Weight, toBf16 } from './bf16.ts';
import { bf16HoldableParams, holdFrozenAsBf16 } from './bf16-frozen.ts';
import { LoraAdapters, type LoraConfig, type ProjectionParam, adaptersFromPeft, loraScale, resolveLoraConfig } from './lora.ts';
import { type Origin, type Params, Transformer, isTrainable, parameterShapes, uniqueName } from './transformer.ts';

const SINGLE = 'model.safetensors';
const INDEX = 'model.safetensors.index.json';
/** save_pretrained's default max_shard_size ("5GB"). */
export const MAX_SHARD_BYTES = 5e9;
/** The tokenizer's files in a model directory (generation_config.json is written with the weights). */
const COMPANIONS = [
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'chat_template.jinja',
  'chat_template.json',
  'tokenizer.model',
  'vocab.json',
  'merges.txt',
  'added_tokens.json',
];

type Special = { bos?: number; eos?: number; pad?: number };

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

/** One internal parameter and the Hugging Face tensors it is made of: their rows stacked (q, k, v;
 * gate, up), then transposed to [in, out] where `transpose` (projections; not the embedding).
 * `store`: the dtype it is saved in whatever the checkpoint's (DeepSeek keeps its routers' correction
 * biases in F32). */
type Mapping = { param: string; parts: { name: string; shape: number[] }[]; transpose: boolean; store?: Dtype };

function mappings(c: ModelConfig): Mapping[] {
  if (family(c) === 'deepseek_v3') return deepseekMappings(c);
  const C = c.hidden_size,
    D = headDim(c),
    H = c.num_attention_heads,
    Hkv = c.num_key_value_heads,
    F = c.intermediate_size,
    V = c.vocab_size;
  const b = biases(c);
  const one = (param: string, name: string, shape: number[], transpose = false): Mapping => ({
    param,
    parts: [{ name, shape }],
    transpose,
  });
  const out: Mapping[] = [one('embed', 'model.embed_tokens.weight', [V, C]), one('norm', 'model.norm.weight', [C])];
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const l = `layers.${i}.`,
      a = `model.layers.${i}.self_attn.`,
      m = `model.layers.${i}.mlp.`;
    const qkv = (suffix: string, shape: (rows: number) => number[]) =>
      [
        ['q', H],
        ['k', Hkv],
        ['v', Hkv],
      ].map(([p, n]) => ({ name: `${a}${p}_proj.${suffix}`, shape: shape((n as number) * D) }));
    const gateUp = (suffix: string, shape: number[]) => ['gate', 'up'].map((p) => ({ name: `${m}${p}_proj.${suffix}`, shape }));
    out.push(one(l + 'attn_norm', `model.layers.${i}.input_layernorm.weight`, [C]));
    out.push({ param: l + 'wqkv', parts: qkv('weight', (rows) => [rows, C]), transpose: true });
    if (b.qkv) out.push({ param: l + 'bqkv', parts: qkv('bias', (rows) => [rows]), transpose: false });
    if (hasQkNorm(c)) out.push(one(l + 'q_norm', `${a}q_norm.weight`, [D]), one(l + 'k_norm', `${a}k_norm.weight`, [D]));
    out.push(one(l + 'wo', `${a}o_proj.weight`, [C, H * D], true));
    if (b.o) out.push(one(l + 'bo', `${a}o_proj.bias`, [C]));
    out.push(one(l + 'mlp_norm', `model.layers.${i}.post_attention_layernorm.weight`, [C]));
    out.push({ param: l + 'w_gate_up', parts: gateUp('weight', [F, C]), transpose: true });
    if (b.mlp) out.push({ param: l + 'b_gate_up', parts: gateUp('bias', [F]), transpose: false });
    out.push(one(l + 'w_down', `${m}down_proj.weight`, [C, F], true));
    if (b.mlp) out.push(one(l + 'b_down', `${m}down_proj.bias`, [C]));
  }
  if (!c.tie_word_embeddings) out.push(one('lm_head', 'lm_head.weight', [V, C], true));
  return out;
}

/** DeepSeek-V3's names: MLA projections, dense or MoE feed-forwards (mlp.gate = the router), and the
 * MTP module as layer num_hidden_layers (enorm, hnorm, eh_proj, its block, shared_head). */
function deepseekMappings(c: ModelConfig): Mapping[] {
  const d = deepseek(c),
    C = c.hidden_size,
    H = c.num_attention_heads,
    V = c.vocab_size,
    bias = c.attention_bias ?? false;
  const { q_lora_rank: qr, kv_lora_rank: r, qk_nope_head_dim: dn, qk_rope_head_dim: dr, v_head_dim: dv } = d;
  const one = (param: string, name: string, shape: number[], transpose = false): Mapping => ({
    param,
    parts: [{ name, shape }],
    transpose,
  });
  const swiglu = (param: string, hf: string, F: number): Mapping[] => [
    { param: param + 'w_gate_up', parts: ['gate', 'up'].map((p) => ({ name: `${hf}${p}_proj.weight`, shape: [F, C] })), transpose: true },
    one(param + 'w_down', `${hf}down_proj.weight`, [C, F], true),
  ];
  const out: Mapping[] = [one('embed', 'model.embed_tokens.weight', [V, C]), one('norm', 'model.norm.weight', [C])];
  const block = (i: number) => {
    const l = `layers.${i}.`,
      m = `model.layers.${i}.`,
      a = `${m}self_attn.`;
    out.push(one(l + 'attn_norm', `${m}input_layernorm.weight`, [C]));
    if (qr === null) out.push(one(l + 'wq', `${a}q_proj.weight`, [H * (dn + dr), C], true));
    else {
      out.push(one(l + 'wq_a', `${a}q_a_proj.weight`, [qr, C], true));
      if (bias) out.push(one(l + 'bq_a', `${a}q_a_proj.bias`, [qr]));
      out.push(one(l + 'q_a_norm', `${a}q_a_layernorm.weight`, [qr]), one(l + 'wq_b', `${a}q_b_proj.weight`, [H * (dn + dr), qr], true));
    }
    out.push(one(l + 'wkv_a', `${a}kv_a_proj_with_mqa.weight`, [r + dr, C], true));
    if (bias) out.push(one(l + 'bkv_a', `${a}kv_a_proj_with_mqa.bias`, [r + dr]));
    out.push(one(l + 'kv_a_norm', `${a}kv_a_layernorm.weight`, [r]), one(l + 'wkv_b', `${a}kv_b_proj.weight`, [H * (dn + dv), r], true));
    out.push(one(l + 'wo', `${a}o_proj.weight`, [C, H * dv], true));
    if (bias) out.push(one(l + 'bo', `${a}o_proj.bias`, [C]));
    out.push(one(l + 'mlp_norm', `${m}post_attention_layernorm.weight`, [C]));
    if (!isMoeLayer(c, i)) return out.push(...swiglu(l, `${m}mlp.`, c.intermediate_size));
    const E = d.n_routed_experts;
    out.push(one(l + 'router', `${m}mlp.gate.weight`, [E, C], true));
    out.push({ ...one(l + 'router_bias', `${m}mlp.gate.e_score_correction_bias`, [E]), store: 'F32' });
    for (let e = 0; e < E; e++) out.push(...swiglu(`${l}experts.${e}.`, `${m}mlp.experts.${e}.`, d.moe_intermediate_size));
    if (d.n_shared_experts > 0) out.push(...swiglu(`${l}shared.`, `${m}mlp.shared_experts.`, d.moe_intermediate_size * d.n_shared_experts));
  };
  for (let i = 0; i < c.num_hidden_layers; i++) block(i);
  if (d.num_nextn_predict_layers) {
    const L = c.num_hidden_layers,
      l = `layers.${L}.`,
      m = `model.layers.${L}.`;
    out.push(
      one(l + 'enorm', `${m}enorm.weight`, [C]),
      one(l + 'hnorm', `${m}hnorm.weight`, [C]),
      one(l + 'eh_proj', `${m}eh_proj.weight`, [C, 2 * C], true),
    );
    block(L);
    out.push(one(l + 'head_norm', `${m}shared_head.norm.weight`, [C]), one(l + 'head', `${m}shared_head.head.weight`, [V, C], true));
  }
  if (!c.tie_word_embeddings) out.push(one('lm_head', 'lm_head.weight', [V, C], true));
  return out;
}

/** The block projections of a model as LoRA sees them: each fused [in, out] parameter and the
 * Hugging Face modules stacked in it, with their columns (the heads, routers and MTP's input
 * projection are not block projections). */
export function projectionParams(c: ModelConfig): ProjectionParam[] {
  return mappings(c)
    .filter(
      (m) =>
        m.transpose && /^layers\.\d+\./.test(m.param) && Number(m.param.split('.')[1]) < c.num_hidden_layers && !/\.router$/.test(m.param),
    )
    .map(({ param, parts }) => {
      let offset = 0;
      const projections = parts.map(({ name, shape }) => {
        const p = { module: name.replace(/\.weight$/, ''), in: shape[1], out: shape[0], offset };
        offset += shape[0];
        return p;
      });
      return { param, projections };
    });
}

function transpose(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c];
  return out;
}

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** Our parameters -> the family's Hugging Face tensors, in model order. */
export function toHuggingFace(c: ModelConfig, values: Record<string, Float32Array>): Record<string, NamedArray> {
  const out: Record<string, NamedArray> = {};
  for (const { param, parts, transpose: t, store } of mappings(c)) {
    const rows = parts.reduce((n, p) => n + p.shape[0], 0);
    const hf = t ? transpose(values[param], size(parts[0].shape.slice(1)), rows) : values[param];
    let offset = 0;
    for (const { name, shape } of parts) {
      out[name] = { shape, data: hf.slice(offset, offset + size(shape)), ...(store && { store }) };
      offset += size(shape);
    }
  }
  return out;
}

/** Checks the tensors a checkpoint holds (names and shapes) against what config.json implies.
 * `fileOf` names the file holding each tensor, for the error. */
export function checkTensors(c: ModelConfig, shapes: Record<string, number[]>, fileOf: (name: string) => string, configFile: string): void {
  const expected = new Map(mappings(c).flatMap((m) => m.parts.map((p) => [p.name, p.shape] as const)));
  const what = `a ${family(c)} model as ${configFile} describes it`;
  for (const [name, shape] of expected) {
    const got = shapes[name];
    if (!got) throw new UserError(`checkpoint ${dirname(configFile)} has no tensor ${name}, which ${what} needs`);
    if (got.join() !== shape.join())
      throw new UserError(`${fileOf(name)}: tensor ${name} has shape [${got}]; ${configFile} implies [${shape}]`);
  }
  for (const name of Object.keys(shapes)) {
    if (!expected.has(name)) {
      const hint =
        name === 'lm_head.weight'
          ? ' (tie_word_embeddings is true: the head is the embedding)'
          : /\.bias$/.test(name)
            ? ' (check attention_bias / mlp_bias)'
            : '';
      throw new UserError(`${fileOf(name)}: tensor ${name} is not part of ${what}${hint}`);
    }
  }
}

/** Hugging Face tensors (checked by checkTensors) -> our parameters. */
export function fromHuggingFace(c: ModelConfig, hf: Record<string, NamedArray>): Record<string, Float32Array> {
  const values: Record<string, Float32Array> = {};
  for (const { param, parts, transpose: t } of mappings(c)) {
    const rows = parts.reduce((n, p) => n + p.shape[0], 0);
    const stacked = parts.length === 1 ? hf[parts[0].name].data : new Float32Array(parts.reduce((n, p) => n + size(p.shape), 0));
    if (parts.length > 1) {
      let offset = 0;
      for (const p of parts) {
        stacked.set(hf[p.name].data, offset);
        offset += size(p.shape);
      }
    }
    values[param] = t ? transpose(stacked, rows, size(parts[0].shape.slice(1))) : stacked;
  }
  return values;
}

/** The weight files of a model directory: one file, or the shards its index names (name -> file). */
function weightFiles(dir: string): { files: string[]; index: Record<string, string> | null } {
  const single = existsSync(join(dir, SINGLE)),
    indexed = existsSync(join(dir, INDEX));
  if (single && indexed) throw new UserError(`${dir} holds both ${SINGLE} and ${INDEX}: remove the stale one`);
  if (single) return { files: [SINGLE], index: null };
  if (!indexed) throw new UserError(`${dir} is not a checkpoint: it has neither ${SINGLE} nor ${INDEX}`);
  const file = join(dir, INDEX);
  let map: unknown;
  try {
    map = JSON.parse(readFileSync(file, 'utf8')).weight_map;
  } catch (e) {
    throw new UserError(`cannot read ${file}: ${(e as Error).message}`);
  }
  if (
    typeof map !== 'object' ||
    map === null ||
    Object.values(map).some((f) => typeof f !== 'string' || f !== basename(f) || !f.endsWith('.safetensors'))
  ) {
    throw new UserError(`${file}: weight_map must map tensor names to .safetensors files of the same folder`);
  }
  const index = map as Record<string, string>;
  const files = [...new Set(Object.values(index))].sort();
  for (const f of files) {
    if (!existsSync(join(dir, f))) throw new UserError(`${file} names shard ${f}, which is missing from ${dir}`);
  }
  return { files, index };
}

/** Checks that each shard holds exactly the tensors the index assigns to it. */
function checkShard(dir: string, index: Record<string, string> | null, file: string, names: string[]): void {
  if (!index) return;
  for (const name of names) {
    if (index[name] !== file) throw new UserError(`${join(dir, file)}: tensor ${name} is not listed for this file in ${join(dir, INDEX)}`);
  }
  const held = new Set(names);
  for (const [name, f] of Object.entries(index)) {
    if (f === file && !held.has(name)) throw new UserError(`${join(dir, INDEX)} lists tensor ${name} in ${f}, which does not hold it`);
  }
}

/** True when `dir` holds weights (one file or an index). */
export function checkpointExists(dir: string): boolean {
  return existsSync(join(dir, SINGLE)) || existsSync(join(dir, INDEX)) || isAdapterDir(dir);
}

function readJson(file: string): Record<string, unknown> {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new UserError(`cannot read ${file}: ${(e as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new UserError(`${file}: expected a JSON object`);
  return raw as Record<string, unknown>;
}

/** config.json of a model directory, parsed (ModelConfig) and as written (raw). */
export function readModelConfig(dir: string): { config: ModelConfig; raw: Record<string, unknown> } {
  const file = join(dir, 'config.json');
  const raw = readJson(file);
  return { config: parseHfConfig(raw, file), raw };
}

/** What a checkpoint holds, from its headers alone: tensor entries by name, and the file of each. */
export function checkpointHeaders(dir: string): { entries: Record<string, TensorEntry>; fileOf: Record<string, string> } {
  const { files, index } = weightFiles(dir);
  const entries: Record<string, TensorEntry> = {},
    fileOf: Record<string, string> = {};
  for (const f of files) {
    const header = readSafetensorsHeader(join(dir, f));
    checkShard(dir, index, f, Object.keys(header));
    for (const [name, e] of Object.entries(header)) {
      entries[name] = e;
      fileOf[name] = join(dir, f);
    }
  }
  return { entries, fileOf };
}

/** PEFT's adapter folder: these two files (plus the tokenizer's), the base named in the config. */
export const ADAPTER_CONFIG = 'adapter_config.json';
export const ADAPTER_WEIGHTS = 'adapter_model.safetensors';

/** True when `dir` is a PEFT adapter folder rather than a full checkpoint. */
export function isAdapterDir(dir: string): boolean {
  return existsSync(join(dir, ADAPTER_CONFIG));
}

/** The base model an adapter folder names (base_model_name_or_path): a hub name, an absolute path,
 * or a path relative to the adapter folder (as r1kit writes it) or to the working directory. */
export function adapterBase(dir: string): string {
  const file = join(dir, ADAPTER_CONFIG),
    raw = readJson(file);
  const base = raw.base_model_name_or_path;
  if (typeof base !== 'string' || !base)
    throw new UserError(`${file}: base_model_name_or_path must name the base model (a folder or hf:<org>/<name>)`);
  if (base.startsWith('hf:') || isAbsolute(base)) return base;
  if (existsSync(join(dir, base))) return join(dir, base);
  if (existsSync(base)) return base;
  return `hf:${base}`;
}

/** The folder whose config.json describes the model `spec` names: its own, or an adapter folder's
 * base (hub names resolved; a hub model missing from the cache is a UserError). */
export function configDir(spec: string): string {
  const dir = resolveModelDir(spec);
  return isAdapterDir(dir) ? resolve(resolveModelDir(adapterBase(dir))) : dir;
}

/** A PEFT LoRA adapter folder on its base: the base loaded and frozen, the adapters attached.
 * adapter_config.json is checked field by field (peft_type LORA, r, lora_alpha, target_modules as a
 * list, lora_dropout, use_rslora), and every tensor against the base's projections. */
function loadAdapterModel(dir: string, opts: LoadOptions): Transformer {
  const file = join(dir, ADAPTER_CONFIG),
    raw = readJson(file);
  if (raw.peft_type !== 'LORA')
    throw new UserError(`${file}: peft_type ${JSON.stringify(raw.peft_type)}: only LORA adapters are supported`);
  if (raw.target_modules !== undefined && !Array.isArray(raw.target_modules)) {
    throw new UserError(`${file}: target_modules must be a list of module names (a regular expression is not supported)`);
  }
  for (const k of ['use_dora', 'fan_in_fan_out'] as const) if (raw[k] === true) throw new UserError(`${file}: ${k} is not supported`);
  const model = loadModel(adapterBase(dir), opts);
  const cfg = resolveLoraConfig(
    model.config,
    {
      r: raw.r as number,
      alpha: raw.lora_alpha as number | undefined,
      dropout: (raw.lora_dropout as number | undefined) ?? 0,
      target_modules: raw.target_modules as string[] | undefined,
      use_rslora: (raw.use_rslora as boolean | undefined) ?? false,
    },
    file,
  );
  const weights = join(dir, ADAPTER_WEIGHTS);
  if (!existsSync(weights)) throw new UserError(`${dir} has ${ADAPTER_CONFIG} but no ${ADAPTER_WEIGHTS}`);
  const { tensors } = readSafetensors(weights);
  model.attachAdapters(adaptersFromPeft(projectionParams(model.config), cfg, tensors, weights, String(raw.base_model_name_or_path)));
  return model;
}

/** Writes a model's adapters as a PEFT folder's two files (not atomic on its own: see saveModel). */
export function writeAdapterFiles(dir: string, adapters: LoraAdapters): void {
  writeSafetensors(join(dir, ADAPTER_WEIGHTS), adapters.toPeft(), { format: 'pt' });
  writeFileSync(join(dir, ADAPTER_CONFIG), JSON.stringify(adapters.peftConfig(), null, 2) + '\n');
}

/** Puts a stage's `lora:` block on a loaded model. A model loaded from an adapter folder keeps
 * training its adapters when the block describes the same ones (r, alpha, targets, rsLoRA), as PEFT's
 * is_trainable does; other settings are an error (merge first with r1 convert --merge). Fresh
 * adapters name `base` (the stage's input) in their adapter_config.json. Without a block, a loaded
 * adapter is merged into its base: the stage trains every weight. */
export function prepareStageAdapters(
  model: Transformer,
  raw: z.input<typeof LoraConfig> | undefined,
  base: string,
  where: string,
  seed: number,
): void {
  if (!raw) return mergeAdapters(model);
  const cfg = resolveLoraConfig(model.config, raw, where);
  const held = model.adapters;
  if (held) {
    const a = held.config,
      same =
        a.r === cfg.r &&
        loraScale(a) === loraScale(cfg) &&
        a.use_rslora === cfg.use_rslora &&
        [...a.target_modules].sort().join() === [...cfg.target_modules].sort().join();
    if (!same) {
      throw new UserError(
        `${where}: the input ${base} is a LoRA adapter with r ${a.r}, alpha ${a.alpha ?? 2 * a.r}, targets ${a.target_modules.join(', ')}; ` +
          'this stage asks for other adapters: give the same settings to keep training it, or merge it first (r1 convert --model ADAPTER --merge --output DIR)',
      );
    }
    held.config.dropout = cfg.dropout;
    held.config.frozen_dtype = cfg.frozen_dtype;
  } else {
    model.attachAdapters(
      // `raw`, not `cfg`: init tells a target list the user wrote (which must match in full) from the
      // family's default (which names every form the family's layers may take).
      LoraAdapters.init(model.config, projectionParams(model.config), raw, base.startsWith('hf:') ? base.slice(3) : resolve(base), seed),
    );
  }
  if (cfg.frozen_dtype === 'bfloat16') holdFrozenAsBf16(model, bf16HoldableParams(projectionParams(model.config)));
}

/** Folds a model's adapters into its base weights (W + s B A) and drops them: the merged model. */
export function mergeAdapters(model: Transformer): void {
  const lora = model.adapters;
  if (!lora) return;
  widenFrozen(model);
  for (const param of lora.slots.keys()) {
    const merged = lora.merged(param, model.params[param]);
    model.params[param].assign(merged);
    merged.dispose();
  }
  model.adapters = null;
  lora.dispose();
}

/** Brings bf16-held frozen weights back into the backend as float32 variables (a merged model
 * trains or saves every weight). */
export function widenFrozen(model: Transformer): void {
  for (const [name, w] of model.frozen) {
    model.params[name] = tf.tidy(() => tf.variable(w.widen(), false, uniqueName(name)));
    model.frozen.delete(name);
  }
}

export type LoadOptions = {
  /** Hold the block projections as bf16 outside the backend from the start (a LoRA stage with
   * frozen_dtype: bfloat16; bf16-frozen.ts), so their float32 copies never enter the heap. */
  frozenBf16?: boolean;
};

/** Loads a model directory, a PEFT adapter folder (on its base), or an `hf:` name: config.json, then
 * every weight file, checked. */
export function loadModel(spec: string, opts: LoadOptions = {}): Transformer {
  const dir = resolveModelDir(spec);
  if (isAdapterDir(dir)) return loadAdapterModel(dir, opts);
  const { config, raw } = readModelConfig(dir);
  const { files, index } = weightFiles(dir);
  const tensors: Record<string, NamedArray> = {},
    fileOf: Record<string, string> = {};
  for (const f of files) {
    const part = readSafetensors(join(dir, f)).tensors;
    checkShard(dir, index, f, Object.keys(part));
    for (const [name, t] of Object.entries(part)) {
      tensors[name] = t;
      fileOf[name] = join(dir, f);
    }
  }
  checkTensors(
    config,
    Object.fromEntries(Object.entries(tensors).map(([k, t]) => [k, t.shape])),
    (n) => fileOf[n],
    join(dir, 'config.json'),
  );
  const values = fromHuggingFace(config, tensors);
  const params: Params = {},
    frozen = new Map<string, Bf16Weight>();
  const bf16 = new Set(opts.frozenBf16 ? bf16HoldableParams(projectionParams(config)) : []);
  for (const [name, shape] of Object.entries(parameterShapes(config))) {
    if (bf16.has(name)) frozen.set(name, new Bf16Weight(toBf16(values[name]), shape as [number, number]));
    // In a tidy: the variable keeps the buffer; the tensor it was made from would pin it after dispose().
    else params[name] = tf.tidy(() => tf.variable(tf.tensor(values[name], shape), isTrainable(name), uniqueName(name)));
    delete values[name]; // each float32 array may go as soon as it is held
  }
  const generation = join(dir, 'generation_config.json');
  const origin: Origin = {
    config: raw,
    generationConfig: existsSync(generation) ? readJson(generation) : null,
    dtype: tensors['model.embed_tokens.weight'].dtype ?? 'F32',
  };
  return new Transformer(config, params, origin, frozen);
}

export function modelValues(model: Transformer): Record<string, Float32Array> {
  const values: Record<string, Float32Array> = {};
  for (const k of Object.keys(parameterShapes(model.config))) values[k] = model.weightData(k);
  return values;
}

/** Tensors into one file, or into shards of at most `maxBytes` each (a larger tensor gets one of its
 * own) named model-0000i-of-0000n.safetensors with the index, as save_pretrained splits them. */
function writeWeights(dir: string, tensors: Record<string, NamedArray>, dtype: Dtype, maxBytes: number): void {
  const width = dtype === 'F32' ? 4 : 2;
  const shards: string[][] = [[]];
  let bytes = 0,
    total = 0;
  for (const [name, t] of Object.entries(tensors)) {
    const n = t.data.length * width;
    if (bytes > 0 && bytes + n > maxBytes) {
      shards.push([]);
      bytes = 0;
    }
    shards[shards.length - 1].push(name);
    bytes += n;
    total += n;
  }
  const meta = { format: 'pt' };
  if (shards.length === 1) return writeSafetensors(join(dir, SINGLE), tensors, meta, dtype);
  const pad = (i: number) => String(i).padStart(5, '0');
  const weightMap: Record<string, string> = {};
  shards.forEach((names, i) => {
    const file = `model-${pad(i + 1)}-of-${pad(shards.length)}.safetensors`;
    writeSafetensors(join(dir, file), Object.fromEntries(names.map((n) => [n, tensors[n]])), meta, dtype);
    for (const n of names) weightMap[n] = file;
  });
  const sorted = Object.fromEntries(Object.entries(weightMap).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  writeFileSync(join(dir, INDEX), JSON.stringify({ metadata: { total_size: total }, weight_map: sorted }, null, 2) + '\n');
}

export type SaveOptions = {
  /** Storage dtype; default: the dtype the model was loaded in (F32 for a model made here). */
  dtype?: Dtype;
  /** Largest shard in bytes (default MAX_SHARD_BYTES). */
  maxShardBytes?: number;
};

/** Writes the weights, config.json and generation_config.json into `dir` (not atomic on its own: call
 * inside writeDirAtomic, or use saveModel). A loaded model keeps its family, config files and dtype;
 * a model made here gets the tokenizer's ids (`special`) in its config files. */
export function writeModelFiles(dir: string, model: Transformer, special: Special = {}, opts: SaveOptions = {}): void {
  if (model.adapters) return writeAdapterFiles(dir, model.adapters);
  const origin = model.origin,
    dtype = opts.dtype ?? origin?.dtype ?? 'F32';
  writeWeights(dir, toHuggingFace(model.config, modelValues(model)), dtype, opts.maxShardBytes ?? MAX_SHARD_BYTES);
  const config = origin ? originConfig(origin.config, dtype) : hfConfig(model.config, dtype, special);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  const ids = { bos_token_id: special.bos, eos_token_id: special.eos, pad_token_id: special.pad };
  const generation = origin?.generationConfig ?? {
    _from_model_config: true,
    ...Object.fromEntries(Object.entries(ids).filter(([, v]) => v !== undefined && v >= 0)),
  };
  writeFileSync(join(dir, 'generation_config.json'), JSON.stringify(generation, null, 2) + '\n');
}

export function saveModel(dir: string, model: Transformer, special: Special = {}, opts: SaveOptions = {}): void {
  writeDirAtomic(dir, (staging) => writeModelFiles(staging, model, special, opts));
}

/** Copies the tokenizer files of one model directory into another; returns their names. */
export function copyCompanions(from: string, to: string): string[] {
  const present = new Set(readdirSync(from));
  const copied = COMPANIONS.filter((f) => present.has(f));
  for (const f of copied) copyFileSync(join(from, f), join(to, f));
  return copied;
}
