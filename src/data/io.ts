// Reading and writing datasets: JSON Lines (the usual form), a JSON array, or Parquet (the format
// Hugging Face datasets ship in, read with hyparquet). Writes are atomic.
import { existsSync, readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parquetReadObjects } from 'hyparquet';
import { UserError } from '../errors.ts';
import { writeFileAtomic } from '../files.ts';

export type Row = Record<string, unknown>;

/** Rows of a dataset file. A line that is not a JSON object is an error naming file:line. */
export async function readRows(file: string): Promise<Row[]> {
  if (!existsSync(file)) throw new UserError(`dataset ${file} does not exist`);
  const ext = extname(file).toLowerCase();
  if (ext === '.parquet') {
    const buf = readFileSync(file);
    try {
      const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
      return ((await parquetReadObjects({ file: ab })) as Row[]).map((r) => plainNumbers(r) as Row);
    } catch (e) {
      throw new UserError(`dataset ${file}: not a readable Parquet file (${(e as Error).message})`);
    }
  }
  const text = readFileSync(file, 'utf8');
  if (ext === '.json') {
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch (e) {
      throw new UserError(`dataset ${file}: not valid JSON (${(e as Error).message})`);
    }
    if (!Array.isArray(data) || data.some((r) => r === null || typeof r !== 'object' || Array.isArray(r))) {
      throw new UserError(`dataset ${file}: a .json dataset must be an array of objects`);
    }
    return data as Row[];
  }
  const rows: Row[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (!line) continue;
    let row: unknown;
    try {
      row = JSON.parse(line);
    } catch (e) {
      throw new UserError(`${file}:${i + 1}: not valid JSON (${(e as Error).message})`);
    }
    if (row === null || typeof row !== 'object' || Array.isArray(row)) throw new UserError(`${file}:${i + 1}: a row must be a JSON object`);
    rows.push(row as Row);
  }
  return rows;
}

/** BigInt (hyparquet's INT64) as a number where it fits exactly, else as a string, recursively:
 * the rest of the code (and JSON) expects plain values. */
function plainNumbers(v: unknown): unknown {
  if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
  if (Array.isArray(v)) return v.map(plainNumbers);
  if (v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plainNumbers(x)]));
  }
  return v;
}

/** Writes rows as JSON Lines via a temporary file and a rename. */
export function writeJsonl(file: string, rows: readonly unknown[]): void {
  writeFileAtomic(file, [rows.map((r) => JSON.stringify(r) + '\n').join('')]);
}
