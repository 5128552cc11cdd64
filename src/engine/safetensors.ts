// safetensors: an 8-byte little-endian header length, a JSON header naming each tensor's dtype,
// shape and byte range, then the raw little-endian data. F32, F16 and BF16 are read into float32
// and written from it (rounded to nearest even, as PyTorch casts). Written atomically.
import { closeSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { UserError } from '../errors.ts';
import { writeFileAtomic } from '../files.ts';

export type Dtype = 'F32' | 'F16' | 'BF16';
export const DTYPES: readonly Dtype[] = ['F32', 'F16', 'BF16'];
const WIDTH: Record<Dtype, number> = { F32: 4, F16: 2, BF16: 2 };

/** A tensor in float32; `dtype` is what it was stored as (on reading); `store` (on writing) the dtype
 * to store it in whatever the file's (DeepSeek-V3 keeps e_score_correction_bias in F32). */
export type NamedArray = { shape: number[]; data: Float32Array; dtype?: Dtype; store?: Dtype };
/** A tensor as the header describes it. */
export type TensorEntry = { shape: number[]; dtype: Dtype; begin: number; end: number };

/** Writes float32 tensors stored as `dtype`, names sorted, data 8-byte aligned. */
export function writeSafetensors(
  path: string,
  tensors: Record<string, NamedArray>,
  metadata: Record<string, string> = {},
  dtype: Dtype = 'F32',
): void {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  const names = Object.keys(tensors).sort();
  for (const name of names) {
    const { shape, data } = tensors[name];
    if (shape.reduce((a, b) => a * b, 1) !== data.length)
      throw new Error(`tensor ${name}: shape [${shape}] does not match ${data.length} values`);
    const stored = tensors[name].store ?? dtype,
      bytes = data.length * WIDTH[stored];
    header[name] = { dtype: stored, shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8); // keeps the data 8-byte aligned
  const jsonBytes = Buffer.from(json);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(jsonBytes.length));
  writeFileAtomic(path, [len, jsonBytes, ...names.map((name) => encode(tensors[name].data, tensors[name].store ?? dtype))]);
}

/** The header of a safetensors file, checked against the file's size: every tensor's range fits its
 * shape and dtype, and the ranges tile the data with no gap, overlap or trailing bytes. `bytes` is the
 * file's size; `headerBytes` the offset where the data starts. A bad file is a UserError naming it. */
export function parseHeader(
  path: string,
  head: Buffer,
  bytes: number,
): { entries: Record<string, TensorEntry>; metadata: Record<string, string>; dataStart: number } {
  const bad = (why: string) => new UserError(`corrupt or truncated safetensors file ${path}: ${why}`);
  if (bytes < 8) throw bad(`only ${bytes} bytes`);
  const n = Number(head.readBigUInt64LE(0));
  if (n <= 0 || 8 + n > bytes) throw bad(`header length ${n} does not fit in ${bytes} bytes`);
  if (head.length < 8 + n) throw new Error(`parseHeader: given ${head.length} bytes of a ${8 + n}-byte header`);
  let header: unknown;
  try {
    header = JSON.parse(head.subarray(8, 8 + n).toString('utf8'));
  } catch (e) {
    throw bad(`header is not JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw bad('header is not a JSON object');
  const fields = header as Record<string, unknown>;
  const entries: Record<string, TensorEntry> = {};
  for (const [name, info] of Object.entries(fields)) {
    if (name === '__metadata__') continue;
    const { dtype, shape, data_offsets: off } = (info ?? {}) as { dtype?: Dtype; shape?: unknown; data_offsets?: unknown };
    if (dtype === undefined || !DTYPES.includes(dtype)) throw bad(`tensor ${name} has dtype ${dtype}; supported: ${DTYPES.join(', ')}`);
    const isCount = (x: unknown) => Number.isSafeInteger(x) && (x as number) >= 0;
    if (!Array.isArray(shape) || !shape.every(isCount) || !Array.isArray(off) || off.length !== 2 || !off.every(isCount)) {
      throw bad(`tensor ${name} has a malformed entry ${JSON.stringify(info)}`);
    }
    const count = (shape as number[]).reduce((a, b) => a * b, 1);
    if (off[1] - off[0] !== count * WIDTH[dtype])
      throw bad(`tensor ${name}: data_offsets [${off}] do not hold shape [${shape}] of ${dtype}`);
    entries[name] = { shape, dtype, begin: off[0], end: off[1] };
  }
  const dataStart = 8 + n;
  let end = 0;
  for (const [name, e] of Object.entries(entries).sort((a, b) => a[1].begin - b[1].begin || a[1].end - b[1].end)) {
    if (e.begin !== end) throw bad(`tensor ${name} starts at byte ${e.begin} of the data, expected ${end} (a gap or an overlap)`);
    end = e.end;
  }
  if (dataStart + end > bytes) throw bad(`the tensors need ${dataStart + end} bytes, the file has ${bytes}`);
  if (dataStart + end < bytes) throw bad(`${bytes - dataStart - end} unexpected trailing bytes`);
  return { entries, metadata: (fields.__metadata__ as Record<string, string> | undefined) ?? {}, dataStart };
}

/** The header alone (names, shapes, dtypes), without reading the data. */
export function readSafetensorsHeader(path: string): Record<string, TensorEntry> {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new UserError(`cannot read checkpoint file ${path}: ${(e as Error).message}`);
  }
  try {
    const size = fstatSync(fd).size;
    const first = Buffer.alloc(Math.min(8, size));
    readSync(fd, first, 0, first.length, 0);
    const n = size >= 8 ? Number(first.readBigUInt64LE(0)) : 0;
    const head = Buffer.alloc(8 + n <= size ? 8 + n : first.length);
    readSync(fd, head, 0, head.length, 0);
    return parseHeader(path, head, size).entries;
  } finally {
    closeSync(fd);
  }
}

/** Reads every tensor of a safetensors file into float32; a truncated or corrupt file is a UserError naming it. */
export function readSafetensors(path: string): { tensors: Record<string, NamedArray>; metadata: Record<string, string> } {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (e) {
    throw new UserError(`cannot read checkpoint file ${path}: ${(e as Error).message}`);
  }
  const { entries, metadata, dataStart } = parseHeader(path, buf, buf.length);
  const tensors: Record<string, NamedArray> = {};
  for (const [name, e] of Object.entries(entries)) {
    tensors[name] = { shape: e.shape, dtype: e.dtype, data: decode(buf.subarray(dataStart + e.begin, dataStart + e.end), e.dtype) };
  }
  return { tensors, metadata };
}

const u32 = new Uint32Array(1),
  f32 = new Float32Array(u32.buffer);

function decode(bytes: Buffer, dtype: Dtype): Float32Array {
  if (dtype === 'F32') {
    const out = new Float32Array(bytes.length / 4);
    new Uint8Array(out.buffer).set(bytes);
    return out;
  }
  const out = new Float32Array(bytes.length / 2);
  for (let i = 0; i < out.length; i++) {
    const h = bytes.readUInt16LE(2 * i);
    if (dtype === 'BF16') {
      u32[0] = h << 16;
      out[i] = f32[0];
    } else {
      const s = h & 0x8000 ? -1 : 1,
        e = (h >> 10) & 0x1f,
        m = h & 0x3ff;
      out[i] = e === 0 ? s * 2 ** -14 * (m / 1024) : e === 31 ? (m ? NaN : s * Infinity) : s * 2 ** (e - 15) * (1 + m / 1024);
    }
  }
  return out;
}

function encode(data: Float32Array, dtype: Dtype): Uint8Array {
  if (dtype === 'F32') return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const out = Buffer.alloc(data.length * 2);
  for (let i = 0; i < data.length; i++) out.writeUInt16LE(dtype === 'BF16' ? toBf16(data[i]) : toF16(data[i]), 2 * i);
  return out;
}

/** float32 -> bfloat16 bits, rounded to nearest even; NaN stays NaN. */
function toBf16(x: number): number {
  f32[0] = x;
  const u = u32[0];
  if ((u & 0x7fffffff) > 0x7f800000) return (u >>> 16) | 0x40;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

/** float32 -> IEEE half bits, rounded to nearest even (subnormals, overflow to infinity, NaN). */
function toF16(x: number): number {
  f32[0] = x;
  const u = u32[0],
    sign = (u >>> 16) & 0x8000,
    exp = (u >>> 23) & 0xff,
    man = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (man ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign; // below half the smallest subnormal: zero
    const m = man | 0x800000,
      shift = 14 - e; // 24-bit significand -> subnormal with 10 bits
    const half = 1 << (shift - 1),
      rest = m & ((1 << shift) - 1);
    let r = m >>> shift;
    if (rest > half || (rest === half && r & 1)) r++;
    return sign | r;
  }
  let r = (e << 10) | (man >>> 13);
  const rest = man & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && r & 1)) r++; // may carry into the exponent, up to infinity: right
  return sign | r;
}
