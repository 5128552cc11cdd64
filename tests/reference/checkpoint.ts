// The model tests' checkpoints and reference numbers without Python: fixtures/<suite>.json, written
// by hf_reference.py (`python3 tests/reference/hf_reference.py fixtures`), lists each random
// checkpoint's tensors and a summary of PyTorch's logits. The values come from a counter-based
// generator repeated here bit for bit, so the checkpoint written here is the one PyTorch wrote (the
// SHA-256 of its tensors says so), and r1kit's logits can be checked against PyTorch's summary.
// Written independently of src/ (its own safetensors writer, bfloat16 and float16 rounding), so a
// bug in r1kit's checkpoint code cannot hide in the fixture.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fnv1a32, mix32 } from '../../scripts/make-random-qwen.ts';

type StoredDtype = 'F32' | 'F16' | 'BF16';
/** One tensor: name, shape, values offset + scale * unit(name), stored dtype, index into `files`. */
export type PlanEntry = [string, number[], number, number, StoredDtype, number];
/** PyTorch's logits in brief: each position's logsumexp and mean over the vocabulary, and single
 * logits at `positions` x `vocab`, per sequence. */
export type LogitSummary = { lse: number[][]; mean: number[][]; positions: number[][]; vocab: number[]; grid: number[][][] };
export type FixtureCase = {
  family: string;
  dtype: string;
  seed: number;
  files: string[];
  params: number;
  digest: string;
  config: Record<string, unknown>;
  generation_config: Record<string, unknown>;
  plan: PlanEntry[];
  ids: number[][];
  logits: LogitSummary;
  mtp_logits?: LogitSummary;
};
export type CaseSpec = { name: string; family: string; dtype: string; shards: number; seed?: number; set?: Record<string, unknown> };

const HERE = new URL('.', import.meta.url);
export const REGENERATE = 'regenerate with `python3 tests/reference/hf_reference.py fixtures` (needs python3-torch)';

/** cases.json's list for a test file, and the fixture hf_reference.py wrote from it. */
export function loadSuite(suite: string): { cases: CaseSpec[]; fixtures: Record<string, FixtureCase> } {
  const spec = JSON.parse(readFileSync(new URL('cases.json', HERE), 'utf8')).suites[suite];
  const { cases } = JSON.parse(readFileSync(new URL(`fixtures/${suite}.json`, HERE), 'utf8'));
  for (const c of spec.cases as CaseSpec[])
    if (!cases[c.name]) throw new Error(`tests/reference/fixtures/${suite}.json has no case ${c.name}: ${REGENERATE}`);
  return { cases: spec.cases, fixtures: cases };
}

// The generator (hf_reference.py's unit_stream): murmur3's finaliser over seed-and-name-keyed counters,
// the same one scripts/make-random-qwen.ts draws its checkpoint from.
function tensorValues(name: string, seed: number, n: number, offset: number, scale: number): Float32Array {
  const key = fnv1a32(`${seed}:${name}`),
    out = new Float32Array(n);
  for (let j = 0; j < n; j++) {
    const u = mix32((key + Math.imul(j, 0x9e3779b9)) >>> 0) / 4294967296;
    out[j] = offset + scale * ((2 * u - 1) * Math.sqrt(3));
  }
  return out;
}

/** Round half to even (v >= 0). */
function roundEven(v: number): number {
  const f = Math.floor(v),
    d = v - f;
  return d > 0.5 || (d === 0.5 && f % 2 === 1) ? f + 1 : f;
}

/** float32 -> bfloat16 bits, round to nearest even (finite values). */
function bf16Bits(x: Float32Array): Uint16Array {
  const bits = new Uint32Array(x.buffer, x.byteOffset, x.length),
    out = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = (bits[i] + 0x7fff + ((bits[i] >>> 16) & 1)) >>> 16;
  return out;
}

/** float32 -> float16 bits, round to nearest even, subnormals included (finite values in range). */
function f16Bits(x: Float32Array): Uint16Array {
  const out = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const v = x[i],
      sign = v < 0 || Object.is(v, -0) ? 0x8000 : 0,
      a = Math.abs(v);
    if (a < 2 ** -14) {
      out[i] = sign | roundEven(a / 2 ** -24); // 1024 is the smallest normal's bit pattern, as it should be
      continue;
    }
    let e = Math.floor(Math.log2(a));
    if (2 ** e > a) e -= 1;
    else if (2 ** (e + 1) <= a) e += 1;
    let m = roundEven((a / 2 ** e - 1) * 1024);
    if (m === 1024) {
      m = 0;
      e += 1;
    }
    if (e > 15) throw new Error(`f16Bits: ${v} is out of the float16 range`);
    out[i] = sign | ((e + 15) << 10) | m;
  }
  return out;
}

function storedBytes(values: Float32Array, dtype: StoredDtype): Buffer {
  const typed = dtype === 'F32' ? values : dtype === 'BF16' ? bf16Bits(values) : f16Bits(values);
  return Buffer.from(typed.buffer, typed.byteOffset, typed.byteLength);
}

/** Writes the fixture's checkpoint into `dir`: config.json, generation_config.json, the shards and
 * (for more than one) model.safetensors.index.json, as hf_reference.py make does. */
export function writeCheckpoint(c: FixtureCase, dir: string): void {
  mkdirSync(dir, { recursive: true });
  c.files.forEach((file, k) => {
    const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
    const blobs: Buffer[] = [];
    let offset = 0;
    for (const [name, shape, off, scale, dtype] of c.plan.filter((e) => e[5] === k)) {
      const blob = storedBytes(
        tensorValues(
          name,
          c.seed,
          shape.reduce((a, b) => a * b, 1),
          off,
          scale,
        ),
        dtype,
      );
      header[name] = { dtype, shape, data_offsets: [offset, offset + blob.length] };
      offset += blob.length;
      blobs.push(blob);
    }
    let text = JSON.stringify(header);
    text += ' '.repeat((8 - (text.length % 8)) % 8);
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(Buffer.byteLength(text)));
    writeFileSync(join(dir, file), Buffer.concat([length, Buffer.from(text), ...blobs]));
  });
  if (c.files.length > 1) {
    const weightMap = Object.fromEntries(c.plan.map((e) => [e[0], c.files[e[5]]]));
    const total = c.plan.reduce((a, e) => a + e[1].reduce((x, y) => x * y, 1) * (e[4] === 'F32' ? 4 : 2), 0);
    writeFileSync(
      join(dir, 'model.safetensors.index.json'),
      JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2),
    );
  }
  writeFileSync(join(dir, 'config.json'), JSON.stringify(c.config, null, 2));
  writeFileSync(join(dir, 'generation_config.json'), JSON.stringify(c.generation_config, null, 2));
}

/** SHA-256 of a checkpoint directory's stored tensors (hf_reference.py's digest): in name order,
 * each name, dtype and shape, then its bytes as stored. Read here from the raw files. */
export function storedDigest(dir: string): string {
  const tensors: Record<string, { dtype: string; shape: number[]; bytes: Buffer }> = {};
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.safetensors'))) {
    const data = readFileSync(join(dir, file));
    const n = Number(data.readBigUInt64LE(0));
    const header = JSON.parse(data.subarray(8, 8 + n).toString());
    for (const [name, e] of Object.entries(header) as [string, { dtype: string; shape: number[]; data_offsets: [number, number] }][]) {
      if (name !== '__metadata__')
        tensors[name] = { dtype: e.dtype, shape: e.shape, bytes: data.subarray(8 + n + e.data_offsets[0], 8 + n + e.data_offsets[1]) };
    }
  }
  const h = createHash('sha256');
  for (const name of Object.keys(tensors).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))) {
    const t = tensors[name];
    h.update(`${name}\n${t.dtype}\n${t.shape.join(',')}\n`);
    h.update(t.bytes);
  }
  return h.digest('hex');
}

/** The largest gap between logits [B][T][V] and PyTorch's summary of them: over every position's
 * logsumexp and mean (each moves no more than the logits do) and the single logits of the grid. */
export function summaryDiff(logits: number[][][], ref: LogitSummary): number {
  if (logits.length !== ref.lse.length) throw new Error(`${logits.length} sequences of logits, the fixture has ${ref.lse.length}`);
  let max = 0;
  const see = (a: number, b: number) => (max = Math.max(max, Number.isFinite(a) ? Math.abs(a - b) : Infinity));
  logits.forEach((rows, r) => {
    if (rows.length !== ref.lse[r].length) throw new Error(`sequence ${r}: ${rows.length} positions, the fixture has ${ref.lse[r].length}`);
    rows.forEach((z, t) => {
      const top = Math.max(...z);
      see(top + Math.log(z.reduce((a, x) => a + Math.exp(x - top), 0)), ref.lse[r][t]);
      see(z.reduce((a, x) => a + x, 0) / z.length, ref.mean[r][t]);
    });
    ref.positions[r].forEach((t, i) => ref.vocab.forEach((v, j) => see(rows[t][v], ref.grid[r][i][j])));
  });
  return max;
}
