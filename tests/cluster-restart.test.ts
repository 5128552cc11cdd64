// Interruptions of a run through workers: the NATS server restarted mid-run (file storage) and the
// trainer killed with SIGKILL and rerun, workers connected throughout. Each ends with the same
// metrics as the run that was not interrupted: jobs carry their own seeds, so who serves them and
// when does not change what they return.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readMetrics } from '../src/metrics/logger.ts';
import { runRecipe } from '../src/pipeline/run.ts';
import { loadRecipe } from '../src/recipe/index.ts';
import { HAVE_NATS, quiet, startCluster, startWorker, until, type Cluster } from './cluster-helpers.ts';

const RECIPE = resolve('tests/fixtures/rl/rl.yaml');
const STEPS = 10;

describe.skipIf(!HAVE_NATS)('a run through workers survives interruptions with the same result', () => {
  let c: Cluster;
  let straight: Record<string, unknown>[];
  const set = (out: string) => [
    `output_dir=${out}`,
    `stages.grpo.max_steps=${STEPS}`,
    'stages.grpo.save_steps=3',
    `cluster.url=${c.server.url}`,
    'cluster.job_timeout_s=5',
  ];
  const lines = (f: string) => (existsSync(f) ? readFileSync(f, 'utf8').trim().split('\n').filter(Boolean).length : 0);
  const same = (a: Record<string, unknown>[], b: Record<string, unknown>[]) => {
    expect(a.map((r) => r.reward)).toEqual(b.map((r) => r.reward));
    expect(a.map((r) => r.loss)).toEqual(b.map((r) => r.loss));
  };

  beforeAll(async () => {
    c = await startCluster();
    startWorker(c, 'w1');
    startWorker(c, 'w2');
    const out = join(c.dir, 'straight');
    const { runDir } = await runRecipe(loadRecipe(RECIPE, { set: set(out) }), { ...quiet, only: 'pretrain' });
    await runRecipe(loadRecipe(RECIPE, { set: set(out) }), { ...quiet, only: 'grpo' });
    straight = readMetrics(join(runDir, 'grpo', 'metrics.jsonl'));
  }, 120_000);
  afterAll(async () => c?.close());

  it('the NATS server restarted mid-run: the run carries on to the same result', async () => {
    const out = join(c.dir, 'restart');
    const { runDir } = await runRecipe(loadRecipe(RECIPE, { set: set(out) }), { ...quiet, only: 'pretrain' });
    const metrics = join(runDir, 'grpo', 'metrics.jsonl');
    const run = runRecipe(loadRecipe(RECIPE, { set: set(out) }), { ...quiet, only: 'grpo' });
    await until(() => lines(metrics) >= 3, 60_000, 'three GRPO steps');
    await c.server.restart();
    await run;
    same(readMetrics(metrics), straight);
  }, 120_000);

  it('the trainer killed (SIGKILL) and rerun resumes with workers still connected, to the same result', async () => {
    const out = join(c.dir, 'kill');
    const { runDir } = await runRecipe(loadRecipe(RECIPE, { set: set(out) }), { ...quiet, only: 'pretrain' });
    const metrics = join(runDir, 'grpo', 'metrics.jsonl');
    const args = [resolve('bin/r1.js'), 'run', RECIPE, '--only', 'grpo', ...set(out).flatMap((s) => ['--set', s])];
    const first = spawn(process.execPath, args, { stdio: 'ignore' });
    await until(() => lines(metrics) >= 5, 60_000, 'five GRPO steps (a checkpoint at step 3)');
    first.kill('SIGKILL');
    await new Promise((r) => first.once('exit', r));
    const second = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    second.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((r) => second.once('exit', r));
    expect(code, err).toBe(0);
    // The resumed run rewrote steps 4.. from the checkpoint at step 3: the last record of each step counts.
    const byStep = new Map(readMetrics(metrics).map((r) => [r.step, r]));
    same([...byStep.values()], straight);
  }, 120_000);
});
