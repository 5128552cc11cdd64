// Policy weights through the object store: the trainer publishes each version as one blob of float32
// weights (parameterShapes order, the layout Transformer.loadFlat reads) with its sha256, and points
// the KV key `policy` at it; a worker fetches the version a job names, checks the digest and keeps
// it (and the tokenizer) cached by digest.
import type { ModelConfig } from '../model/config.ts';
import { Tokenizer } from '../model/tokenizer.ts';
import { type Transformer, parameterShapes } from '../model/transformer.ts';
import { type Bus, retry, sha256 } from './bus.ts';
import { encode, type PolicyRef } from './protocol.ts';

/** The model's weights as one flat float32 array (parameterShapes order). */
export function flatWeights(model: Transformer): Float32Array {
  const shapes = parameterShapes(model.config);
  const total = Object.values(shapes).reduce((a, s) => a + s.reduce((x, y) => x * y, 1), 0);
  const out = new Float32Array(total);
  let offset = 0;
  for (const name of Object.keys(shapes)) {
    const data = model.weightData(name);
    out.set(data, offset);
    offset += data.length;
  }
  return out;
}

const asBytes = (f: Float32Array) => new Uint8Array(f.buffer, f.byteOffset, f.byteLength);

/** Puts a tokenizer into the object store once (by digest); returns its name and digest. */
export async function publishTokenizer(bus: Bus, tok: Tokenizer): Promise<PolicyRef['tokenizer']> {
  const data = encode(tok.toJSON());
  const digest = sha256(data);
  const object = `tokenizer-${digest.slice(0, 16)}`;
  if (!(await retry(() => bus.os.info(object), 'object store')))
    await retry(() => bus.os.putBlob({ name: object }, data), `publish ${object}`);
  return { object, sha256: digest };
}

/** Publishes `weights` as policy `version` of `session`; returns what a job names. */
export async function publishPolicy(
  bus: Bus,
  session: string,
  version: number,
  config: ModelConfig,
  weights: Float32Array,
  tokenizer: PolicyRef['tokenizer'],
): Promise<PolicyRef> {
  const bytes = asBytes(weights);
  const ref: PolicyRef = { version, object: `policy-${session}-${version}`, sha256: sha256(bytes), bytes: bytes.length, config, tokenizer };
  await retry(
    () => bus.os.putBlob({ name: ref.object, description: `r1kit policy v${version} sha256 ${ref.sha256}` }, bytes),
    `publish ${ref.object}`,
  );
  await retry(() => bus.kv.put('policy', encode(ref)), 'KV policy');
  return ref;
}

/** Deletes a session's policy blobs older than `keepFrom` (and, with keepFrom Infinity, all of them). */
export async function deletePolicies(bus: Bus, names: string[]): Promise<void> {
  for (const name of names) await bus.os.delete(name).catch(() => {});
}

/** A digest mismatch: the blob is not the one the job names. */
export class DigestMismatch extends Error {
  constructor(
    readonly object: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`${object}: sha256 ${actual.slice(0, 12)}... does not match the published ${expected.slice(0, 12)}...; refused`);
    this.name = 'DigestMismatch';
  }
}

/** What a worker keeps between jobs: the last policy and tokenizer it fetched, by digest. */
export class PolicyCache {
  private weights: { sha: string; data: Float32Array } | null = null;
  private tokenizers = new Map<string, Tokenizer>();
  fetches = 0;

  constructor(private readonly bus: Bus) {}

  private async blob(object: string, expected: string): Promise<Uint8Array> {
    const data = await retry(() => this.bus.os.getBlob(object), `fetch ${object}`);
    if (!data) throw new Error(`${object} is not in the object store (deleted, or never published)`);
    const actual = sha256(data);
    if (actual !== expected) throw new DigestMismatch(object, expected, actual);
    return data;
  }

  /** The weights of `ref` (digest checked), fetched unless cached. */
  async policy(ref: PolicyRef): Promise<Float32Array> {
    if (this.weights?.sha === ref.sha256) return this.weights.data;
    const data = await this.blob(ref.object, ref.sha256);
    this.fetches++;
    const copy = new Uint8Array(data.length);
    copy.set(data);
    this.weights = { sha: ref.sha256, data: new Float32Array(copy.buffer) };
    return this.weights.data;
  }

  async tokenizer(ref: PolicyRef['tokenizer']): Promise<Tokenizer> {
    const hit = this.tokenizers.get(ref.sha256);
    if (hit) return hit;
    const data = await this.blob(ref.object, ref.sha256);
    const tok = Tokenizer.fromJSON(JSON.parse(new TextDecoder().decode(data)), ref.object);
    this.tokenizers.set(ref.sha256, tok);
    return tok;
  }
}
