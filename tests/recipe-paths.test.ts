// Paths in a recipe are relative to the recipe's folder or absolute, in every field that takes one
// (tokenizer.train.datasets, tokenizer.path, datasets, eval_datasets, model, output_dir): a recipe
// that `r1 recipe` accepts also runs. And what a run tells its user: a short "done" line per stage
// (the summary JSON stays in manifest.json), an eval's true elapsed time, eval samples with their
// step, finish reason and question.
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { readMetrics } from '../src/metrics/logger.ts';
import { dataDigest, tokenizerDigests } from '../src/pipeline/fingerprint.ts';
import { readManifest, runRecipe } from '../src/pipeline/run.ts';
import { loadRecipe } from '../src/recipe/index.ts';

const root = mkdtempSync(join(tmpdir(), 'r1-paths-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const progressStream = Object.assign(new Writable({ write: (_c, _e, cb) => cb() }), { isTTY: false });

/** The micro recipe's data in one folder, the recipe in another, naming the data by `path(file)`. */
function recipeWith(name: string, path: (file: string) => string, extra = ''): string {
  const data = join(root, 'data');
  if (!existsSync(data)) {
    cpSync(resolve('tests/fixtures/e2e'), data, { recursive: true });
    writeFileSync(join(data, 'heldout.jsonl'), readFileSync(join(data, 'corpus.jsonl'), 'utf8').split('\n').slice(0, 20).join('\n') + '\n');
  }
  const dir = join(root, 'recipes', name);
  cpSync(resolve('tests/fixtures/e2e'), dir, { recursive: true, filter: (f) => !f.endsWith('.jsonl') });
  const file = join(dir, 'recipe.yaml');
  writeFileSync(
    file,
    `name: ${name}
seed: 1
backend: wasm
output_dir: ${path('runs')}
model: { vocab_size: 0, hidden_size: 32, num_hidden_layers: 1, num_attention_heads: 4, num_key_value_heads: 2, intermediate_size: 64, max_position_embeddings: 96 }
tokenizer:
${extra || `  train: { datasets: [${path('corpus.jsonl')}], vocab_size: 300 }`}
stages:
  - { name: pretrain, type: pretrain, datasets: [${path('corpus.jsonl')}], eval_datasets: [${path('heldout.jsonl')}], seq_length: 32, per_device_train_batch_size: 2, max_steps: 4, logging_steps: 2, save_steps: 4 }
  - { name: eval, type: eval, datasets: [${path('eval.jsonl')}], num_generations: 2, max_new_tokens: 6, template: 'Q: {prompt} A:' }
`,
  );
  return file;
}

describe('recipe paths', () => {
  const absolute = (f: string) => (f === 'runs' ? join(root, 'runs') : join(root, 'data', f));

  it('absolute paths everywhere: the recipe checks, the digests read the files, and the run finishes', async () => {
    const file = recipeWith('absolute', absolute);
    const recipe = loadRecipe(file);
    // fingerprint.ts joined the path onto the recipe folder: ENOENT for an absolute one
    expect(Object.keys(tokenizerDigests(recipe))).toEqual([absolute('corpus.jsonl')]);
    expect(dataDigest(recipe, 1)).toMatch(/^[0-9a-f]{16}$/);
    const logs: string[] = [];
    const { runDir, manifest } = await runRecipe(recipe, { log: (l) => logs.push(l), progressStream });
    expect(runDir).toBe(join(root, 'runs', 'absolute'));
    expect(Object.values(manifest.stages).map((s) => s.status)).toEqual(['done', 'done']);

    // "done" lines: short and for people; the summary JSON is in manifest.json
    const done = logs.filter((l) => / done\b/.test(l));
    expect(done).toHaveLength(2);
    expect(done[0]).toMatch(/^\[pretrain\] done in \d+(\.\d)?s: 4 steps · final loss \d+(\.\d+)? · held-out loss \d+(\.\d+)?/);
    expect(done[1]).toMatch(/^\[eval\] done in \d+(\.\d)?s: pass@1 \d+\.\d% · maj@2 \d+\.\d% · format \d+\.\d% \(4 prompts × 2 samples\)$/);
    for (const line of done) {
      expect(line).not.toMatch(/[{}"]/);
      expect(line).not.toMatch(/\d\.\d{6,}/);
    }
    expect(readManifest(runDir)!.stages.pretrain.summary).toMatchObject({ steps: 4 });

    // the eval's one row says how long the eval took, as the manifest does
    const [row] = readMetrics(join(runDir, 'eval', 'metrics.jsonl'));
    const rec = readManifest(runDir)!.stages.eval;
    const wall = (Date.parse(rec.finished_at!) - Date.parse(rec.started_at)) / 1000;
    expect(row.elapsed_s as number).toBeGreaterThan(0);
    expect(row.elapsed_s as number).toBeLessThanOrEqual(wall + 0.01);
    // eval samples carry their step, finish reason and the question before the template
    const samples = readFileSync(join(runDir, 'eval', 'samples.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(samples).toHaveLength(8);
    for (const s of samples) {
      expect(s.step).toBe(1);
      expect(['stop', 'length']).toContain(s.finish_reason);
      expect(s.prompt).toBe(`Q: ${s.question} A:`);
    }
    expect(samples[0].question).toBe('What is 31 + 7?');
  }, 120_000);

  it('relative paths that leave the recipe folder, and an absolute tokenizer.path', async () => {
    const dir = join(root, 'recipes', 'relative');
    const rel = (f: string) => relative(dir, absolute(f));
    const file = recipeWith('relative', rel);
    expect(rel('corpus.jsonl')).toBe('../../data/corpus.jsonl');
    const recipe = loadRecipe(file);
    expect(Object.keys(tokenizerDigests(recipe))).toEqual(['../../data/corpus.jsonl']);
    expect(Object.values(tokenizerDigests(recipe))).toEqual(Object.values(tokenizerDigests(loadRecipe(recipeWith('absolute', absolute)))));
    expect(dataDigest(recipe, 1)).toMatch(/^[0-9a-f]{16}$/);

    const tokenizer = join(root, 'runs', 'absolute', 'tokenizer', 'tokenizer.json');
    expect(existsSync(tokenizer)).toBe(true);
    const withTokenizer = loadRecipe(recipeWith('given-tokenizer', absolute, `  path: ${tokenizer}`), {
      set: ['stages.pretrain.max_steps=2'],
    });
    const { manifest } = await runRecipe(withTokenizer, { log: () => {}, progressStream, only: 'pretrain' });
    expect(manifest.stages.pretrain.status).toBe('done');
  }, 120_000);
});
