// A small GGUF writer (ggml's docs/gguf.md, version 3): the policy's weights as a file llama.cpp
// loads, for the llama.cpp rollout engine. No npm package writes GGUF tensors, and the format is
// short: a header (magic, version, tensor count, metadata count), typed key/value metadata, tensor
// infos (name, dims innermost first, type, offset), then the tensor data, each tensor aligned to 32 bytes.
//
// Layout conversion: r1kit keeps projections as [in, out] (fused q/k/v and gate/up); GGUF stores a
// weight of ggml dims [in, out] as PyTorch's [out, in] rows, so each projection is transposed and
// split. llama.cpp's `llama` architecture rotates ADJACENT RoPE pairs (2i, 2i+1) while Hugging Face's
// llama layout rotates halves (i, i + D/2), so q and k rows are permuted within each head, as
// llama.cpp's convert_hf_to_gguf.py does; `qwen2` and `qwen3` rotate halves in llama.cpp too (NEOX).
// The vocabulary is a placeholder: r1kit feeds token ids and decodes with its own tokenizer, which
// stays the source of truth; llama.cpp only needs a loadable one (see placeholderVocabulary).
import { openSync, writeSync, closeSync } from 'node:fs';
import { UserError } from '../errors.ts';
import { type ModelConfig, biases, family, hasQkNorm, headDim } from '../model/config.ts';
import type { Transformer } from '../model/transformer.ts';

/** The model families the exporter writes, by llama.cpp architecture name. */
export const GGUF_ARCHITECTURES = { llama: 'llama', qwen2: 'qwen2', qwen3: 'qwen3' } as const;

/** A tensor for the file: ggml dims (innermost first) and float32 data in that order. */
export type GgufTensor = { name: string; dims: number[]; data: Float32Array };

/** A metadata value with its GGUF type. */
export type GgufValue =
  | { type: 'u32'; value: number }
  | { type: 'f32'; value: number }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string }
  | { type: 'strings'; value: string[] }
  | { type: 'i32s'; value: number[] };

const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
const GGUF_VERSION = 3;
const ALIGNMENT = 32;
const VALUE_TYPE = { i32: 5, u32: 4, f32: 6, bool: 7, string: 8, array: 9 } as const;
const GGML_TYPE_F32 = 0;

/** Why a model cannot be exported for llama.cpp, or null when it can. */
export function ggufUnsupported(c: ModelConfig): string | null {
  const fam = family(c);
  if (!(fam in GGUF_ARCHITECTURES)) {
    return `the llama.cpp rollout engine exports ${Object.keys(GGUF_ARCHITECTURES).join(', ')} models, not ${fam} (use rollout.engine: tfjs for it)`;
  }
  const b = biases(c);
  if (fam === 'llama' && (b.qkv || b.o || b.mlp))
    return 'the llama.cpp rollout engine does not export llama models with attention_bias or mlp_bias (use rollout.engine: tfjs)';
  if (fam === 'qwen3' && b.qkv)
    return 'the llama.cpp rollout engine does not export qwen3 models with attention_bias (use rollout.engine: tfjs)';
  if (c.rope_scaling && c.rope_scaling.rope_type !== 'linear') {
    return `the llama.cpp rollout engine exports no rope_scaling but linear, not ${c.rope_scaling.rope_type} (use rollout.engine: tfjs)`;
  }
  return null;
}

/** GPT-2's byte-level alphabet: the printable character standing for each byte. */
function byteCharacters(): string[] {
  const out = new Array<string>(256);
  let next = 256;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    out[b] = String.fromCodePoint(printable ? b : next++);
  }
  return out;
}

/** A vocabulary llama.cpp loads for V ids: a byte-level BPE ("gpt2") whose first 256 tokens are the
 * bytes and the rest control tokens, no merges. llama.cpp and node-llama-cpp tokenize a few strings
 * while loading (a vocabulary-less model fails an assertion there); r1kit's ids never go through it. */
function placeholderVocabulary(V: number): Record<string, GgufValue> {
  if (V < 256)
    throw new UserError(
      `the llama.cpp rollout engine needs a vocabulary of at least 256 tokens, the model has ${V} (use rollout.engine: tfjs)`,
    );
  const bytes = byteCharacters();
  const tokens = Array.from({ length: V }, (_, i) => (i < 256 ? bytes[i] : `<|r1kit_${i}|>`));
  return {
    'tokenizer.ggml.model': { type: 'string', value: 'gpt2' },
    'tokenizer.ggml.pre': { type: 'string', value: 'default' },
    'tokenizer.ggml.tokens': { type: 'strings', value: tokens },
    'tokenizer.ggml.token_type': { type: 'i32s', value: tokens.map((_, i) => (i < 256 ? 1 : 3)) },
    'tokenizer.ggml.merges': { type: 'strings', value: [] },
  };
}

/** Rows [out, in] of columns from..from+n of an [in, out] matrix (a transposed slice). */
function rowsOf(w: Float32Array, inDim: number, outDim: number, from: number, n: number): Float32Array {
  const out = new Float32Array(n * inDim);
  for (let o = 0; o < n; o++) for (let i = 0; i < inDim; i++) out[o * inDim + i] = w[i * outDim + from + o];
  return out;
}

/** Rows of `heads` heads of D rows each, reordered from rotate-half pairs (i, i + D/2) to adjacent
 * pairs (2i, 2i+1): new row 2j + s of a head is old row s * D/2 + j (convert_hf_to_gguf.py's permute). */
export function permuteRope(rows: Float32Array, heads: number, D: number, inDim: number): Float32Array {
  const out = new Float32Array(rows.length);
  for (let h = 0; h < heads; h++) {
    for (let j = 0; j < D / 2; j++) {
      for (let s = 0; s < 2; s++) {
        const from = (h * D + s * (D / 2) + j) * inDim,
          to = (h * D + 2 * j + s) * inDim;
        out.set(rows.subarray(from, from + inDim), to);
      }
    }
  }
  return out;
}

/** The metadata and tensors of a model in llama.cpp's layout for its architecture. */
export function ggufContents(model: Transformer, name = 'r1kit-policy'): { metadata: Record<string, GgufValue>; tensors: GgufTensor[] } {
  const c = model.config;
  const why = ggufUnsupported(c);
  if (why) throw new UserError(why);
  const fam = family(c) as keyof typeof GGUF_ARCHITECTURES;
  const arch = GGUF_ARCHITECTURES[fam];
  const C = c.hidden_size,
    D = headDim(c),
    H = c.num_attention_heads,
    Hkv = c.num_key_value_heads,
    F = c.intermediate_size,
    V = c.vocab_size;
  const u32 = (value: number): GgufValue => ({ type: 'u32', value });
  const f32 = (value: number): GgufValue => ({ type: 'f32', value });
  const metadata: Record<string, GgufValue> = {
    'general.architecture': { type: 'string', value: arch },
    'general.name': { type: 'string', value: name },
    'general.alignment': u32(ALIGNMENT),
    [`${arch}.context_length`]: u32(c.max_position_embeddings),
    [`${arch}.embedding_length`]: u32(C),
    [`${arch}.block_count`]: u32(c.num_hidden_layers),
    [`${arch}.feed_forward_length`]: u32(F),
    [`${arch}.attention.head_count`]: u32(H),
    [`${arch}.attention.head_count_kv`]: u32(Hkv),
    [`${arch}.attention.key_length`]: u32(D),
    [`${arch}.attention.value_length`]: u32(D),
    [`${arch}.rope.dimension_count`]: u32(D),
    [`${arch}.rope.freq_base`]: f32(c.rope_theta),
    [`${arch}.attention.layer_norm_rms_epsilon`]: f32(c.rms_norm_eps),
    [`${arch}.vocab_size`]: u32(V),
    ...placeholderVocabulary(V),
  };
  if (c.rope_scaling?.rope_type === 'linear') {
    metadata[`${arch}.rope.scaling.type`] = { type: 'string', value: 'linear' };
    metadata[`${arch}.rope.scaling.factor`] = f32(c.rope_scaling.factor);
  }
  const p = (k: string) => model.weightData(k);
  const tensors: GgufTensor[] = [
    { name: 'token_embd.weight', dims: [C, V], data: p('embed') },
    { name: 'output_norm.weight', dims: [C], data: p('norm') },
  ];
  if (!c.tie_word_embeddings) tensors.push({ name: 'output.weight', dims: [C, V], data: rowsOf(p('lm_head'), C, V, 0, V) });
  const permute = fam === 'llama';
  const b = biases(c);
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const l = `layers.${i}.`,
      g = `blk.${i}.`;
    const qkv = p(l + 'wqkv'),
      W = (H + 2 * Hkv) * D;
    let q = rowsOf(qkv, C, W, 0, H * D),
      k = rowsOf(qkv, C, W, H * D, Hkv * D);
    if (permute) [q, k] = [permuteRope(q, H, D, C), permuteRope(k, Hkv, D, C)];
    const gateUp = p(l + 'w_gate_up');
    tensors.push(
      { name: g + 'attn_norm.weight', dims: [C], data: p(l + 'attn_norm') },
      { name: g + 'attn_q.weight', dims: [C, H * D], data: q },
      { name: g + 'attn_k.weight', dims: [C, Hkv * D], data: k },
      { name: g + 'attn_v.weight', dims: [C, Hkv * D], data: rowsOf(qkv, C, W, (H + Hkv) * D, Hkv * D) },
      { name: g + 'attn_output.weight', dims: [H * D, C], data: rowsOf(p(l + 'wo'), H * D, C, 0, C) },
      { name: g + 'ffn_norm.weight', dims: [C], data: p(l + 'mlp_norm') },
      { name: g + 'ffn_gate.weight', dims: [C, F], data: rowsOf(gateUp, C, 2 * F, 0, F) },
      { name: g + 'ffn_up.weight', dims: [C, F], data: rowsOf(gateUp, C, 2 * F, F, F) },
      { name: g + 'ffn_down.weight', dims: [F, C], data: rowsOf(p(l + 'w_down'), F, C, 0, C) },
    );
    if (b.qkv) {
      const bias = p(l + 'bqkv');
      tensors.push(
        { name: g + 'attn_q.bias', dims: [H * D], data: bias.slice(0, H * D) },
        { name: g + 'attn_k.bias', dims: [Hkv * D], data: bias.slice(H * D, (H + Hkv) * D) },
        { name: g + 'attn_v.bias', dims: [Hkv * D], data: bias.slice((H + Hkv) * D) },
      );
    }
    if (b.o) tensors.push({ name: g + 'attn_output.bias', dims: [C], data: p(l + 'bo') });
    if (hasQkNorm(c))
      tensors.push(
        { name: g + 'attn_q_norm.weight', dims: [D], data: p(l + 'q_norm') },
        { name: g + 'attn_k_norm.weight', dims: [D], data: p(l + 'k_norm') },
      );
  }
  return { metadata, tensors };
}

/** Bytes of a GGUF string: u64 length, then UTF-8. */
function stringBytes(s: string): Buffer {
  const text = Buffer.from(s, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(text.length));
  return Buffer.concat([len, text]);
}

function valueBytes(v: GgufValue): Buffer {
  const type = Buffer.alloc(4);
  type.writeUInt32LE(VALUE_TYPE[v.type === 'strings' || v.type === 'i32s' ? 'array' : v.type]);
  let body: Buffer;
  if (v.type === 'strings' || v.type === 'i32s') {
    const head = Buffer.alloc(12);
    head.writeUInt32LE(v.type === 'strings' ? VALUE_TYPE.string : VALUE_TYPE.i32, 0);
    head.writeBigUInt64LE(BigInt(v.value.length), 4);
    const items = v.type === 'strings' ? v.value.map(stringBytes) : [Buffer.from(Int32Array.from(v.value).buffer)];
    body = Buffer.concat([head, ...items]);
  } else if (v.type === 'string') body = stringBytes(v.value);
  else {
    body = Buffer.alloc(v.type === 'bool' ? 1 : 4);
    if (v.type === 'u32') body.writeUInt32LE(v.value);
    else if (v.type === 'f32') body.writeFloatLE(v.value);
    else body.writeUInt8(v.value ? 1 : 0);
  }
  return Buffer.concat([type, body]);
}

const pad = (n: number) => (ALIGNMENT - (n % ALIGNMENT)) % ALIGNMENT;

/** The header, metadata and tensor infos, padded to the alignment (the data section follows). */
export function ggufHeader(metadata: Record<string, GgufValue>, tensors: GgufTensor[]): Buffer {
  const head = Buffer.alloc(24);
  head.writeUInt32LE(GGUF_MAGIC, 0);
  head.writeUInt32LE(GGUF_VERSION, 4);
  head.writeBigUInt64LE(BigInt(tensors.length), 8);
  head.writeBigUInt64LE(BigInt(Object.keys(metadata).length), 16);
  const parts: Buffer[] = [head];
  for (const [k, v] of Object.entries(metadata)) parts.push(stringBytes(k), valueBytes(v));
  let offset = 0;
  for (const t of tensors) {
    const count = t.dims.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) throw new Error(`gguf: tensor ${t.name} has ${t.data.length} values for dims [${t.dims}]`);
    const info = Buffer.alloc(4 + 8 * t.dims.length + 4 + 8);
    info.writeUInt32LE(t.dims.length, 0);
    t.dims.forEach((d, j) => info.writeBigUInt64LE(BigInt(d), 4 + 8 * j));
    info.writeUInt32LE(GGML_TYPE_F32, 4 + 8 * t.dims.length);
    info.writeBigUInt64LE(BigInt(offset), 8 + 8 * t.dims.length);
    parts.push(stringBytes(t.name), info);
    offset += t.data.byteLength + pad(t.data.byteLength);
  }
  const out = Buffer.concat(parts);
  return Buffer.concat([out, Buffer.alloc(pad(out.length))]);
}

/** Writes the model as a GGUF file (float32 tensors) at `path`. */
export function writeGguf(path: string, model: Transformer, name?: string): void {
  const { metadata, tensors } = ggufContents(model, name);
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, ggufHeader(metadata, tensors));
    for (const t of tensors) {
      writeSync(fd, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
      const n = pad(t.data.byteLength);
      if (n) writeSync(fd, Buffer.alloc(n));
    }
  } finally {
    closeSync(fd);
  }
}
