// Content digests of the dataset files a stage depends on. The recipe hash sees only file names, so
// without these an edited dataset would leave finished stages "done"; with them, a stage reruns
// when a file it, an earlier stage or the tokenizer reads has changed. Each file is read once per
// (path, size, mtime), in 1 MB chunks.
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { datasetSources, type Recipe } from '../recipe/index.ts';

const digests = new Map<string, string>();

export function fileDigest(path: string): string {
  const st = statSync(path);
  const key = `${path}\0${st.size}\0${st.mtimeMs}`;
  let digest = digests.get(key);
  if (digest === undefined) {
    const hash = createHash('sha256'), buf = Buffer.alloc(1 << 20), fd = openSync(path, 'r');
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

/** One digest over every dataset file that stages 0..i and the tokenizer read. */
export function dataDigest(recipe: Recipe, i: number): string {
  const hash = createHash('sha256').update(JSON.stringify(tokenizerDigests(recipe)));
  for (let k = 0; k <= i; k++) {
    for (const field of ['datasets', 'mix', 'eval_datasets'] as const) {
      for (const src of datasetSources(recipe, k, field)) if (src.kind === 'file') hash.update(`${src.path}\0${fileDigest(src.path)}\0`);
    }
  }
  return hash.digest('hex').slice(0, 16);
}
