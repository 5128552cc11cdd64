// Bounded staleness: batches n+1..n+k generated while step n trains, each batch's staleness logged,
// stale batches corrected by truncated importance sampling; and a run with max_staleness 1 through
// two workers still learns.
import { rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ahead, batchSeed, correctStale } from '../src/cluster/staleness.ts';
import { readMetrics } from '../src/metrics/logger.ts';
import { runRecipe } from '../src/pipeline/run.ts';
import { loadRecipe } from '../src/recipe/index.ts';
import { HAVE_NATS, quiet, startCluster, startWorker, type Cluster } from './cluster-helpers.ts';

describe('staleness pieces', () => {
  it('Ahead launches the next k batches with the policy of the step that takes the current one', async () => {
    const launchedAt: [number, number][] = [];
    let step = 0;
    const ahead = new Ahead(2, async (b) => (launchedAt.push([b, step]), b * 10), 5);
    const got: [number, number][] = [];
    for (step = 0; step < 5; step++) {
      const { value, staleness } = await ahead.take(step, step);
      got.push([value, staleness]);
    }
    expect(got).toEqual([
      [0, 0],
      [10, 1],
      [20, 2],
      [30, 2],
      [40, 2],
    ]);
    expect(launchedAt).toEqual([
      [0, 0],
      [1, 0],
      [2, 0],
      [3, 1],
      [4, 2],
    ]); // never past the last batch
  });

  it('correctStale: old <- current, per-token weights min(pi_current / pi_sampler, cap)', () => {
    const e: { old: number[][]; isWeights?: number[][] | null } = { old: [[-1, -1], [-2], []] };
    const current = [[-0.5, -1.5, 99], [0], []];
    const r = correctStale(e, current, 2);
    expect(e.old).toEqual([[-0.5, -1.5], [0], []]);
    expect(e.isWeights![0][0]).toBeCloseTo(Math.exp(0.5), 12);
    expect(e.isWeights![0][1]).toBeCloseTo(Math.exp(-0.5), 12);
    expect(e.isWeights![1]).toEqual([2]); // exp(2) capped at 2
    expect(e.isWeights![2]).toEqual([]);
    expect(r.capped).toBeCloseTo(1 / 3, 12);
    expect(r.mean_weight).toBeCloseTo((Math.exp(0.5) + Math.exp(-0.5) + 2) / 3, 12);
  });

  it('batch seeds differ by batch and are stable', () => {
    expect(batchSeed(3, 0)).toBe(batchSeed(3, 0));
    expect(new Set([0, 1, 2, 3].map((b) => batchSeed(3, b))).size).toBe(4);
  });
});

describe.skipIf(!HAVE_NATS)('GRPO with max_staleness 1 through two workers', () => {
  let c: Cluster;
  beforeAll(async () => {
    c = await startCluster();
    startWorker(c, 'w1', 'rollout');
    startWorker(c, 'w2', 'rollout');
  });
  afterAll(async () => c?.close());

  it('learns, logs each batch staleness, corrects the stale ones', async () => {
    const RECIPE = resolve('tests/fixtures/rl/rl.yaml');
    const set = [
      `output_dir=${join(c.dir, 'runs')}`,
      'stages.grpo.max_steps=12',
      `cluster.url=${c.server.url}`,
      'cluster.max_staleness=1',
      'cluster.job_timeout_s=20',
    ];
    await runRecipe(loadRecipe(RECIPE, { set }), { ...quiet, only: 'pretrain' });
    const { runDir } = await runRecipe(loadRecipe(RECIPE, { set }), { ...quiet, only: 'grpo' });
    const m = readMetrics(join(runDir, 'grpo', 'metrics.jsonl'));
    expect(m.map((r) => r.staleness)).toEqual([0, ...new Array(11).fill(1)]);
    expect(m[0]).not.toHaveProperty('staleness/is_weight_mean');
    for (const r of m.slice(1)) expect(r['staleness/is_weight_mean'] as number).toBeGreaterThan(0.5);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const rewards = m.map((r) => r.reward as number);
    expect(mean(rewards.slice(-3))).toBeGreaterThan(mean(rewards.slice(0, 3)) + 0.2);
    rmSync(runDir, { recursive: true, force: true });
  }, 120_000);
});
