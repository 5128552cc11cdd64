// Content digests of the dataset files a stage depends on, and of the checkpoint folders it starts
// from. The recipe hash sees only file names, so without these an edited dataset (or a shipped base
// model replaced by a new one) would leave finished stages "done"; with them, a stage reruns when a
// file it, an earlier stage or the tokenizer reads has changed. Each file is read once per
// (path, size, mtime), in 1 MB chunks.
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { datasetSources, modelSource, type Recipe } from '../recipe/index.ts';

const digests = new Map<string, string>();

export function fileDigest(path: string): string {
  const st = statSync(path);
  const key = `${path}\0${st.size}\0${st.mtimeMs}`;
  let digest = digests.get(key);
  if (digest === undefined) {
    const hash = createHash('sha256'),
      buf = Buffer.alloc(1 << 20),
      fd = openSync(path, 'r');
    try {
      for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0; ) hash.update(buf.subarray(0, n));
    } finally {
      closeSync(fd);
    }
    digest = hash.digest('hex').slice(0, 16);
    digests.set(key, digest);
  }
  return digest;
}

/** Digests of the tokenizer's training files, keyed by the path the recipe gives. A path is relative to
 * the recipe's folder, or absolute (resolve, not join: join would put an absolute path under the folder). */
export function tokenizerDigests(recipe: Recipe): Record<string, string> {
  const files = recipe.tokenizer.train?.datasets ?? [];
  return Object.fromEntries(files.map((d) => [d, fileDigest(resolve(recipe.recipeDir, d))]));
}

/** Above this size a checkpoint file counts by size and modification time, not content: a hub model's
 * gigabytes are not read at every run. */
const CONTENT_DIGEST_MAX_BYTES = 64 * 2 ** 20;

/** The files of a checkpoint folder (weights, config, tokenizer), each by content digest (or size and
 * time when large), in name order. */
export function checkpointDigest(dir: string): string {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) return 'missing';
  const hash = createHash('sha256');
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    const st = statSync(path);
    if (!st.isFile()) continue;
    hash.update(`${name}\0${st.size <= CONTENT_DIGEST_MAX_BYTES ? fileDigest(path) : `${st.size}:${st.mtimeMs}`}\0`);
  }
  return hash.digest('hex').slice(0, 16);
}

/** One digest over every dataset file that stages 0..i and the tokenizer read, and every checkpoint
 * folder they start from. */
export function dataDigest(recipe: Recipe, i: number): string {
  const hash = createHash('sha256').update(JSON.stringify(tokenizerDigests(recipe)));
  for (let k = 0; k <= i; k++) {
    const model = modelSource(recipe, k);
    if (model.kind === 'checkpoint') hash.update(`model\0${model.path}\0${checkpointDigest(model.path)}\0`);
    for (const field of ['datasets', 'mix', 'eval_datasets'] as const) {
      for (const src of datasetSources(recipe, k, field)) if (src.kind === 'file') hash.update(`${src.path}\0${fileDigest(src.path)}\0`);
    }
  }
  return hash.digest('hex').slice(0, 16);
}
