import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { loadRecipe } from '../src/recipe/index.ts';
import { runRecipe, readManifest } from '../src/pipeline/run.ts';
import { readMetrics } from '../src/metrics/logger.ts';

const RECIPE = resolve('tests/fixtures/e2e/micro.yaml');
// The runs go to a temporary folder (the fixture's own output_dir is the repository's runs/test).
const RUNS = mkdtempSync(join(tmpdir(), 'r1-pipeline-'));
const OUT = `output_dir=${RUNS}`;
afterAll(() => rmSync(RUNS, { recursive: true, force: true }));
const quiet = { log: () => {}, progressStream: Object.assign(new Writable({ write: (_c, _e, cb) => cb() }), { isTTY: false }) };

function finalLoss(runDir: string, stage: string): number {
  const rows = readMetrics(join(runDir, stage, 'metrics.jsonl'));
  return rows.at(-1)!.loss as number;
}

/** Runs `r1 run` in a child process and SIGKILLs it once the pretrain metrics reach `killAt` rows. */
function runAndKill(args: string[], metricsFile: string, killAt: number): Promise<void> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, ['bin/r1.js', 'run', RECIPE, ...args], { stdio: 'ignore' });
    const timer = setInterval(() => {
      if (existsSync(metricsFile) && readFileSync(metricsFile, 'utf8').split('\n').filter(Boolean).length >= killAt) {
        child.kill('SIGKILL');
      }
    }, 20);
    child.on('exit', (_code, signal) => {
      clearInterval(timer);
      if (signal === 'SIGKILL') done();
      else fail(new Error(`child exited on its own (${_code}) before it was killed`));
    });
  });
}

describe('pipeline end to end (pretrain -> sft -> eval)', () => {
  it('writes the run folder, skips finished stages, reruns changed ones', async () => {
    rmSync(join(RUNS, 'micro'), { recursive: true, force: true });
    const recipe = loadRecipe(RECIPE, { set: [OUT] });
    const { runDir, manifest } = await runRecipe(recipe, quiet);
    expect(Object.values(manifest.stages).map((s) => s.status)).toEqual(['done', 'done', 'done']);
    for (const f of [
      'manifest.json',
      'recipe.yaml',
      'tokenizer/tokenizer.json',
      'pretrain/checkpoint/model.safetensors',
      'pretrain/checkpoint/config.json',
      'pretrain/checkpoint/tokenizer.json',
      'pretrain/report.html',
      'sft/checkpoint/model.safetensors',
      'eval/eval.json',
      'eval/samples.jsonl',
    ]) {
      expect(existsSync(join(runDir, f)), f).toBe(true);
    }
    const pre = readMetrics(join(runDir, 'pretrain', 'metrics.jsonl'));
    expect(pre.map((r) => r.step)).toEqual(Array.from({ length: 24 }, (_, i) => i + 1));
    expect(pre.at(-1)!.loss as number).toBeLessThan(pre[0].loss as number);
    // Each row carries the process's memory (this test process: Node, tfjs, vitest): resident now, and
    // the peak so far, which never falls.
    for (const r of pre) expect(r['memory/rss_gib'] as number).toBeGreaterThan(0.03);
    for (const r of pre) expect(r['memory/max_rss_gib'] as number).toBeGreaterThanOrEqual(r['memory/rss_gib'] as number);
    for (const [i, r] of pre.entries())
      if (i > 0) expect(r['memory/max_rss_gib'] as number).toBeGreaterThanOrEqual(pre[i - 1]['memory/max_rss_gib'] as number);
    const report = JSON.parse(readFileSync(join(runDir, 'eval', 'eval.json'), 'utf8'));
    expect(report.prompts).toBe(4);
    expect(report['pass@1']).toBeGreaterThanOrEqual(0);
    expect(report).toHaveProperty('maj@2');

    const logs: string[] = [];
    await runRecipe(recipe, { ...quiet, log: (l) => logs.push(l) });
    expect(logs.filter((l) => l.includes('skipped'))).toHaveLength(3);

    const changed = loadRecipe(RECIPE, { set: [OUT, 'stages.1.learning_rate=5e-4'] });
    const logs2: string[] = [];
    await runRecipe(changed, { ...quiet, log: (l) => logs2.push(l) });
    expect(logs2.some((l) => l.startsWith('[pretrain] done earlier, skipped'))).toBe(true);
    expect(logs2.some((l) => l.startsWith('[sft] sft'))).toBe(true);
    expect(logs2.some((l) => l.startsWith('[eval] eval'))).toBe(true);
    expect(readManifest(runDir)!.stages.sft.status).toBe('done');
  });

  it('reruns a stage whose dataset file changed, and keeps the ones before it', async () => {
    const { appendFileSync, cpSync, mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { dataDigest } = await import('../src/pipeline/fingerprint.ts');
    const dir = mkdtempSync(join(tmpdir(), 'r1-data-digest-'));
    try {
      cpSync(dirname(RECIPE), dir, { recursive: true });
      const load = () => loadRecipe(join(dir, 'micro.yaml'), { set: [`output_dir=${join(dir, 'runs')}`] });
      await runRecipe(load(), quiet);
      const digests = [0, 1, 2].map((i) => dataDigest(load(), i));
      appendFileSync(join(dir, 'eval.jsonl'), readFileSync(join(dir, 'eval.jsonl'), 'utf8').split('\n')[0] + '\n');
      expect([0, 1, 2].map((i) => dataDigest(load(), i)).map((d, i) => d === digests[i])).toEqual([true, true, false]);
      const logs: string[] = [];
      await runRecipe(load(), { ...quiet, log: (l) => logs.push(l) });
      expect(logs.filter((l) => l.includes('done earlier, skipped')).map((l) => l.split(']')[0])).toEqual(['[pretrain', '[sft']);
      expect(logs.some((l) => l.startsWith('[eval] eval'))).toBe(true);
      // The tokenizer's corpus counts for every stage.
      appendFileSync(join(dir, 'corpus.jsonl'), '{"text": "one more line"}\n');
      expect(dataDigest(load(), 0)).not.toBe(digests[0]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);

  it('reruns a stage whose starting checkpoint folder changed (a replaced shipped base model), and the stages after it', async () => {
    const { cpSync, mkdtempSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { dataDigest } = await import('../src/pipeline/fingerprint.ts');
    const dir = mkdtempSync(join(tmpdir(), 'r1-ckpt-digest-'));
    try {
      cpSync(resolve('tests/fixtures/recipes'), dir, { recursive: true });
      writeFileSync(
        join(dir, 'r.yaml'),
        [
          'tokenizer: { path: data/corpus.jsonl }', // any existing file: the digest never loads it
          'stages:',
          '  - { name: first, type: eval, model: ckpt, datasets: [data/tasks.jsonl], max_new_tokens: 8 }',
          '  - { name: later, type: eval, model: ckpt, datasets: [data/tasks.jsonl], max_new_tokens: 8 }',
          '',
        ].join('\n'),
      );
      const load = () => loadRecipe(join(dir, 'r.yaml'));
      const before = [0, 1].map((i) => dataDigest(load(), i));
      expect([0, 1].map((i) => dataDigest(load(), i))).toEqual(before);
      writeFileSync(join(dir, 'ckpt', 'config.json'), '{"max_position_embeddings": 64, "vocab_size": 1024}');
      const after = [0, 1].map((i) => dataDigest(load(), i));
      expect(after.map((d, i) => d === before[i])).toEqual([false, false]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('resumes a stage killed with SIGKILL and ends with the same loss as an uninterrupted run', async () => {
    const straight = loadRecipe(RECIPE, { set: [OUT, 'name=micro-straight', 'stages.2.max_new_tokens=2'] });
    rmSync(join(RUNS, 'micro-straight'), { recursive: true, force: true });
    const a = await runRecipe(straight, quiet);

    const killedDir = join(RUNS, 'micro-killed');
    rmSync(killedDir, { recursive: true, force: true });
    const set = ['--set', OUT, '--set', 'name=micro-killed', '--set', 'stages.2.max_new_tokens=2'];
    await runAndKill(set, join(killedDir, 'pretrain', 'metrics.jsonl'), 10);
    expect(readManifest(killedDir)!.stages.pretrain.status).toBe('running');
    expect(existsSync(join(killedDir, 'pretrain', 'checkpoint-last', 'trainer_state.json'))).toBe(true);
    const logs: string[] = [];
    const b = await runRecipe(loadRecipe(RECIPE, { set: [OUT, 'name=micro-killed', 'stages.2.max_new_tokens=2'] }), {
      ...quiet,
      log: (l) => logs.push(l),
    });
    expect(logs).toContain('[pretrain] pretrain (resuming)');
    const steps = readMetrics(join(b.runDir, 'pretrain', 'metrics.jsonl')).map((r) => r.step);
    expect(steps).toEqual(Array.from({ length: 24 }, (_, i) => i + 1));
    expect(finalLoss(b.runDir, 'pretrain')).toBeCloseTo(finalLoss(a.runDir, 'pretrain'), 5);
    expect(finalLoss(b.runDir, 'sft')).toBeCloseTo(finalLoss(a.runDir, 'sft'), 5);
  });
});

describe('manifest order', () => {
  it('lists a stage added to a finished run where the recipe puts it, not at the end', async () => {
    const { cpSync, mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { parseRecipe } = await import('../src/recipe/index.ts');
    const dir = mkdtempSync(join(tmpdir(), 'r1-order-'));
    try {
      cpSync(dirname(RECIPE), dir, { recursive: true });
      const text = readFileSync(join(dir, 'micro.yaml'), 'utf8')
        .replace('max_steps: 24', 'max_steps: 2')
        .replace('max_steps: 8', 'max_steps: 2');
      const load = (t: string) => parseRecipe(t, join(dir, 'micro.yaml'), { set: [`output_dir=${join(dir, 'runs')}`] });
      await runRecipe(load(text), quiet);
      const inserted = text.replace(
        '  - name: sft\n',
        '  - { name: eval-pretrain, type: eval, model: pretrain, datasets: [eval.jsonl], num_generations: 1, max_new_tokens: 2, template: "Q: {prompt} A:" }\n  - name: sft\n',
      );
      const { runDir } = await runRecipe(load(inserted), quiet);
      expect(Object.keys(readManifest(runDir)!.stages)).toEqual(['pretrain', 'eval-pretrain', 'sft', 'eval']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
