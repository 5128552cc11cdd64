// A small GGUF writer (ggml's docs/gguf.md, version 3): the policy's weights as a file llama.cpp
// loads, for the llama.cpp rollout engine. No npm package writes GGUF tensors, and the format is
// short: a header (magic, version, tensor count, metadata count), typed key/value metadata, tensor
// infos (name, dims innermost first, type, offset), then the tensor data, each tensor aligned to 32 bytes.
// Tensors are float32, or float16 for the matrices when asked (the LoRA engine's base, written once);
// each tensor's values are made only when it is written, so a model is never copied whole.
//
// Layout conversion: r1kit keeps projections as [in, out] (fused q/k/v and gate/up); GGUF stores a
// weight of ggml dims [in, out] as PyTorch's [out, in] rows, so each projection is transposed and
// split. llama.cpp's `llama` architecture rotates ADJACENT RoPE pairs (2i, 2i+1) while Hugging Face's
// llama layout rotates halves (i, i + D/2), so q and k rows are permuted within each head, as
// llama.cpp's convert_hf_to_gguf.py does; `qwen2` and `qwen3` rotate halves in llama.cpp too (NEOX).
// The vocabulary is a placeholder: r1kit feeds token ids and decodes with its own tokenizer, which
// stays the source of truth; llama.cpp only needs a loadable one (see placeholderVocabulary).
import { openSync, readSync, writeSync, closeSync } from 'node:fs';
import { UserError } from '../errors.ts';
import { type ModelConfig, biases, family, hasQkNorm, headDim } from '../model/config.ts';
import type { Transformer } from '../model/transformer.ts';

/** The model families the exporter writes, by llama.cpp architecture name. */
export const GGUF_ARCHITECTURES = { llama: 'llama', qwen2: 'qwen2', qwen3: 'qwen3' } as const;

/** How the file stores a tensor's values. */
export type GgufDtype = 'f32' | 'f16';

/** A tensor for the file: ggml dims (innermost first), how it is stored, and its float32 values in
 * that order, made when the tensor is written (`values`, called once). */
export type GgufTensor = { name: string; dims: number[]; dtype: GgufDtype; values: () => Float32Array };

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
/** ggml's type ids and bytes per value of the two storage types. */
const GGML_TYPE = { f32: 0, f16: 1 } as const;
const BYTES: Record<GgufDtype, number> = { f32: 4, f16: 2 };

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

/** Rows [out, in] of columns from..from+n of an [in, out] matrix (a transposed slice), in tiles so
 * both sides are read and written a cache line at a time (a plain loop strides the source by `outDim`). */
function rowsOf(w: Float32Array, inDim: number, outDim: number, from: number, n: number): Float32Array {
  const out = new Float32Array(n * inDim);
  const TILE = 64;
  for (let o0 = 0; o0 < n; o0 += TILE) {
    const o1 = Math.min(n, o0 + TILE);
    for (let i0 = 0; i0 < inDim; i0 += TILE) {
      const i1 = Math.min(inDim, i0 + TILE);
      for (let i = i0; i < i1; i++) {
        const src = i * outDim + from;
        for (let o = o0; o < o1; o++) out[o * inDim + i] = w[src + o];
      }
    }
  }
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

/** What ggufContents writes: which weights (the policy as it samples, adapters merged, or the base
 * under LoRA with the adapters left out) and how matrices are stored (vectors stay float32, as
 * llama.cpp's converter keeps them). */
export type GgufExport = { weights?: 'merged' | 'base'; matrices?: GgufDtype; name?: string };

/** The architecture name and the metadata llama.cpp reads for it (hyper-parameters, no vocabulary). */
export function ggufArchitecture(c: ModelConfig): { arch: string; fam: keyof typeof GGUF_ARCHITECTURES } {
  const why = ggufUnsupported(c);
  if (why) throw new UserError(why);
  const fam = family(c) as keyof typeof GGUF_ARCHITECTURES;
  return { arch: GGUF_ARCHITECTURES[fam], fam };
}

/** The metadata and tensors of a model in llama.cpp's layout for its architecture. */
export function ggufContents(model: Transformer, opts: GgufExport = {}): { metadata: Record<string, GgufValue>; tensors: GgufTensor[] } {
  const c = model.config;
  const { arch, fam } = ggufArchitecture(c);
  const matrix: GgufDtype = opts.matrices ?? 'f32';
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
    'general.name': { type: 'string', value: opts.name ?? 'r1kit-policy' },
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
  // The base under LoRA is the parameters as stored; otherwise what the policy samples with.
  const p = (k: string) => (opts.weights === 'base' ? model.baseData(k) : model.weightData(k));
  const vector = (name: string, dims: number[], values: () => Float32Array): GgufTensor => ({ name, dims, dtype: 'f32', values });
  const mat = (name: string, dims: number[], values: () => Float32Array): GgufTensor => ({ name, dims, dtype: matrix, values });
  const tensors: GgufTensor[] = [mat('token_embd.weight', [C, V], () => p('embed')), vector('output_norm.weight', [C], () => p('norm'))];
  if (!c.tie_word_embeddings) tensors.push(mat('output.weight', [C, V], () => rowsOf(p('lm_head'), C, V, 0, V)));
  const permute = fam === 'llama';
  const b = biases(c);
  const W = (H + 2 * Hkv) * D;
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const l = `layers.${i}.`,
      g = `blk.${i}.`;
    const q = () => rowsOf(p(l + 'wqkv'), C, W, 0, H * D),
      k = () => rowsOf(p(l + 'wqkv'), C, W, H * D, Hkv * D);
    tensors.push(
      vector(g + 'attn_norm.weight', [C], () => p(l + 'attn_norm')),
      mat(g + 'attn_q.weight', [C, H * D], permute ? () => permuteRope(q(), H, D, C) : q),
      mat(g + 'attn_k.weight', [C, Hkv * D], permute ? () => permuteRope(k(), Hkv, D, C) : k),
      mat(g + 'attn_v.weight', [C, Hkv * D], () => rowsOf(p(l + 'wqkv'), C, W, (H + Hkv) * D, Hkv * D)),
      mat(g + 'attn_output.weight', [H * D, C], () => rowsOf(p(l + 'wo'), H * D, C, 0, C)),
      vector(g + 'ffn_norm.weight', [C], () => p(l + 'mlp_norm')),
      mat(g + 'ffn_gate.weight', [C, F], () => rowsOf(p(l + 'w_gate_up'), C, 2 * F, 0, F)),
      mat(g + 'ffn_up.weight', [C, F], () => rowsOf(p(l + 'w_gate_up'), C, 2 * F, F, F)),
      mat(g + 'ffn_down.weight', [F, C], () => rowsOf(p(l + 'w_down'), F, C, 0, C)),
    );
    if (b.qkv) {
      const bias = () => p(l + 'bqkv');
      tensors.push(
        vector(g + 'attn_q.bias', [H * D], () => bias().slice(0, H * D)),
        vector(g + 'attn_k.bias', [Hkv * D], () => bias().slice(H * D, (H + Hkv) * D)),
        vector(g + 'attn_v.bias', [Hkv * D], () => bias().slice((H + Hkv) * D)),
      );
    }
    if (b.o) tensors.push(vector(g + 'attn_output.bias', [C], () => p(l + 'bo')));
    if (hasQkNorm(c))
      tensors.push(
        vector(g + 'attn_q_norm.weight', [D], () => p(l + 'q_norm')),
        vector(g + 'attn_k_norm.weight', [D], () => p(l + 'k_norm')),
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

const elements = (dims: number[]) => dims.reduce((a, b) => a * b, 1);

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
    const info = Buffer.alloc(4 + 8 * t.dims.length + 4 + 8);
    info.writeUInt32LE(t.dims.length, 0);
    t.dims.forEach((d, j) => info.writeBigUInt64LE(BigInt(d), 4 + 8 * j));
    info.writeUInt32LE(GGML_TYPE[t.dtype], 4 + 8 * t.dims.length);
    info.writeBigUInt64LE(BigInt(offset), 8 + 8 * t.dims.length);
    parts.push(stringBytes(t.name), info);
    const bytes = elements(t.dims) * BYTES[t.dtype];
    offset += bytes + pad(bytes);
  }
  const out = Buffer.concat(parts);
  return Buffer.concat([out, Buffer.alloc(pad(out.length))]);
}

/** IEEE half-precision bits of float32 values, rounded to nearest even (overflow to infinity,
 * underflow through the subnormals to signed zero), as numpy's astype(float16) does. */
export function float16Bits(values: Float32Array): Uint16Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < bits.length; i++) {
    const b = bits[i];
    const sign = (b >>> 16) & 0x8000,
      exp = (b >>> 23) & 0xff,
      mant = b & 0x7fffff;
    if (exp === 0xff) {
      out[i] = sign | 0x7c00 | (mant ? 0x200 : 0); // infinity, or a quiet NaN
      continue;
    }
    const e = exp - 112; // the exponent re-biased from 127 to 15
    if (e >= 0x1f) {
      out[i] = sign | 0x7c00;
      continue;
    }
    if (e <= 0) {
      // A subnormal half (or zero): the 24-bit significand shifted down, rounded to nearest even.
      if (e < -10) {
        out[i] = sign;
        continue;
      }
      const m = mant | 0x800000,
        shift = 14 - e;
      const rest = m & ((1 << shift) - 1),
        half = 1 << (shift - 1);
      let h = m >>> shift;
      if (rest > half || (rest === half && h & 1)) h++;
      out[i] = sign | h;
      continue;
    }
    let h = sign | (e << 10) | (mant >>> 13);
    const rest = mant & 0x1fff;
    if (rest > 0x1000 || (rest === 0x1000 && h & 1)) h++; // a carry may roll into the exponent: still right
    out[i] = h;
  }
  return out;
}

/** Writes metadata and tensors as a GGUF file at `path`, one tensor's values in memory at a time. */
export function writeGgufFile(path: string, metadata: Record<string, GgufValue>, tensors: GgufTensor[]): void {
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, ggufHeader(metadata, tensors));
    for (const t of tensors) {
      const values = t.values();
      if (values.length !== elements(t.dims)) throw new Error(`gguf: tensor ${t.name} has ${values.length} values for dims [${t.dims}]`);
      const stored = t.dtype === 'f16' ? float16Bits(values) : values;
      writeSync(fd, new Uint8Array(stored.buffer, stored.byteOffset, stored.byteLength));
      const n = pad(stored.byteLength);
      if (n) writeSync(fd, Buffer.alloc(n));
    }
  } finally {
    closeSync(fd);
  }
}

/** Writes the model as a GGUF file at `path` (the policy's merged weights in float32 unless `opts` says). */
export function writeGguf(path: string, model: Transformer, opts: GgufExport = {}): void {
  const { metadata, tensors } = ggufContents(model, opts);
  writeGgufFile(path, metadata, tensors);
}

/** What a GGUF file holds, read back from its header: metadata (scalars and strings; arrays as their
 * length) and tensor infos. For tests and checks of our own files. */
export type GgufInfo = {
  metadata: Record<string, number | boolean | string | { array: number }>;
  tensors: { name: string; dims: number[]; type: number; offset: number }[];
};

/** Reads the header of a GGUF file (the types this writer emits, and the other scalar types). */
export function readGgufInfo(path: string): GgufInfo {
  const fd = openSync(path, 'r');
  let buf = Buffer.alloc(1 << 16),
    have = 0;
  const need = (n: number) => {
    while (have < n) {
      if (buf.length < n) buf = Buffer.concat([buf, Buffer.alloc(Math.max(n, buf.length))]);
      const got = readSync(fd, buf, have, buf.length - have, have);
      if (got === 0) throw new Error(`${path}: not a complete GGUF header (ends at byte ${have})`);
      have += got;
    }
  };
  try {
    let at = 0;
    const u32 = () => (need(at + 4), (at += 4), buf.readUInt32LE(at - 4));
    const u64 = () => (need(at + 8), (at += 8), Number(buf.readBigUInt64LE(at - 8)));
    const str = () => {
      const n = u64();
      need(at + n);
      at += n;
      return buf.toString('utf8', at - n, at);
    };
    const SCALAR_BYTES: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
    const scalar = (type: number): number | boolean | string => {
      if (type === VALUE_TYPE.string) return str();
      const n = SCALAR_BYTES[type];
      if (n === undefined) throw new Error(`${path}: unknown GGUF value type ${type}`);
      need(at + n);
      at += n;
      if (type === VALUE_TYPE.u32) return buf.readUInt32LE(at - 4);
      if (type === VALUE_TYPE.i32) return buf.readInt32LE(at - 4);
      if (type === VALUE_TYPE.f32) return buf.readFloatLE(at - 4);
      if (type === VALUE_TYPE.bool) return buf[at - 1] !== 0;
      return NaN; // other widths: skipped, not needed here
    };
    if (u32() !== GGUF_MAGIC) throw new Error(`${path}: not a GGUF file (no GGUF magic)`);
    u32(); // version
    const nTensors = u64(),
      nKv = u64();
    const metadata: GgufInfo['metadata'] = {};
    for (let i = 0; i < nKv; i++) {
      const key = str(),
        type = u32();
      if (type === VALUE_TYPE.array) {
        const itemType = u32(),
          n = u64();
        for (let j = 0; j < n; j++) scalar(itemType);
        metadata[key] = { array: n };
      } else metadata[key] = scalar(type);
    }
    const tensors: GgufInfo['tensors'] = [];
    for (let i = 0; i < nTensors; i++) {
      const name = str(),
        nDims = u32();
      const dims = Array.from({ length: nDims }, u64);
      tensors.push({ name, dims, type: u32(), offset: u64() });
    }
    return { metadata, tensors };
  } finally {
    closeSync(fd);
  }
}
