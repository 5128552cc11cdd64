// safetensors: an 8-byte little-endian header length, a JSON header naming each tensor's dtype,
// shape and byte range, then the raw little-endian data. Written atomically.
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync, rmSync } from 'node:fs';
import { UserError } from '../errors.ts';

export type NamedArray = { shape: number[]; data: Float32Array };

/** Writes `path` via a temporary file and a rename, so a crash never leaves a half-written file. */
export function writeFileAtomic(path: string, chunks: (Uint8Array | string)[]): void {
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  const fd = openSync(tmp, 'w');
  try {
    for (const c of chunks) writeSync(fd, typeof c === 'string' ? Buffer.from(c) : c);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, path);
}

export function writeSafetensors(path: string, tensors: Record<string, NamedArray>, metadata: Record<string, string> = {}): void {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  const names = Object.keys(tensors).sort();
  for (const name of names) {
    const { shape, data } = tensors[name];
    if (shape.reduce((a, b) => a * b, 1) !== data.length) throw new Error(`tensor ${name}: shape [${shape}] does not match ${data.length} values`);
    header[name] = { dtype: 'F32', shape, data_offsets: [offset, offset + data.byteLength] };
    offset += data.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8); // keeps the data 8-byte aligned
  const jsonBytes = Buffer.from(json);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(jsonBytes.length));
  const chunks: Uint8Array[] = [len, jsonBytes];
  for (const name of names) {
    const d = tensors[name].data;
    chunks.push(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
  }
  writeFileAtomic(path, chunks);
}

/** Reads every tensor of a safetensors file; a truncated or corrupt file is a UserError naming it. */
export function readSafetensors(path: string): { tensors: Record<string, NamedArray>; metadata: Record<string, string> } {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (e) {
    throw new UserError(`cannot read checkpoint file ${path}: ${(e as Error).message}`);
  }
  const bad = (why: string) => new UserError(`corrupt or truncated safetensors file ${path}: ${why}`);
  if (buf.length < 8) throw bad(`only ${buf.length} bytes`);
  const n = Number(buf.readBigUInt64LE(0));
  if (n <= 0 || 8 + n > buf.length) throw bad(`header length ${n} does not fit in ${buf.length} bytes`);
  let header: Record<string, any>;
  try {
    header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  } catch (e) {
    throw bad(`header is not JSON (${(e as Error).message})`);
  }
  const base = 8 + n;
  const tensors: Record<string, NamedArray> = {};
  let end = 0;
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const { dtype, shape, data_offsets: off } = info ?? {};
    if (dtype !== 'F32' && dtype !== 'F16' && dtype !== 'BF16') throw bad(`tensor ${name} has unsupported dtype ${dtype}`);
    if (!Array.isArray(shape) || !Array.isArray(off) || off.length !== 2) throw bad(`tensor ${name} has a malformed entry`);
    const count = shape.reduce((a: number, b: number) => a * b, 1);
    const width = dtype === 'F32' ? 4 : 2;
    if (off[1] - off[0] !== count * width || base + off[1] > buf.length) throw bad(`tensor ${name} runs past the end of the file`);
    end = Math.max(end, off[1]);
    const bytes = buf.subarray(base + off[0], base + off[1]);
    tensors[name] = { shape, data: toFloat32(bytes, dtype) };
  }
  if (base + end !== buf.length) throw bad(`${buf.length - base - end} unexpected trailing bytes`);
  return { tensors, metadata: (header.__metadata__ as Record<string, string>) ?? {} };
}

function toFloat32(bytes: Buffer, dtype: string): Float32Array {
  if (dtype === 'F32') {
    const out = new Float32Array(bytes.length / 4);
    new Uint8Array(out.buffer).set(bytes);
    return out;
  }
  const out = new Float32Array(bytes.length / 2);
  const u32 = new Uint32Array(1), f32 = new Float32Array(u32.buffer);
  for (let i = 0; i < out.length; i++) {
    const h = bytes.readUInt16LE(2 * i);
    if (dtype === 'BF16') {
      u32[0] = h << 16;
      out[i] = f32[0];
    } else {
      const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
      out[i] = e === 0 ? s * 2 ** -14 * (m / 1024) : e === 31 ? (m ? NaN : s * Infinity) : s * 2 ** (e - 15) * (1 + m / 1024);
    }
  }
  return out;
}
