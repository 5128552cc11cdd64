// GRPO through rollout and reward workers on a NATS JetStream server: the micro RL recipe's GRPO
// stage learns through two worker processes as it does in one process, and the metrics and the job
// log say which worker served each job.
import { readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readMetrics } from '../src/metrics/logger.ts';
import { runRecipe } from '../src/pipeline/run.ts';
import { loadRecipe } from '../src/recipe/index.ts';
import { HAVE_NATS, quiet, startCluster, startWorker, type Cluster } from './cluster-helpers.ts';

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const RECIPE = resolve('tests/fixtures/rl/rl.yaml');

describe.skipIf(!HAVE_NATS)('GRPO through two rollout/reward workers over NATS JetStream', () => {
  let c: Cluster;
  beforeAll(async () => {
    c = await startCluster();
  });
  afterAll(async () => c?.close());

  it('learns as the in-process run does; metrics say which worker served each job', async () => {
    const out = join(c.dir, 'runs');
    // The pretrain stage in this process, then GRPO through the workers.
    const base = ['output_dir=' + out, 'stages.grpo.max_steps=12'];
    await runRecipe(loadRecipe(RECIPE, { set: base }), { ...quiet, only: 'pretrain' });
    startWorker(c, 'w1');
    startWorker(c, 'w2');
    const set = [...base, `cluster.url=${c.server.url}`, 'cluster.job_timeout_s=20', 'cluster.remote_rewards=[brevity]'];
    const { runDir } = await runRecipe(loadRecipe(RECIPE, { set }), { ...quiet, only: 'grpo' });
    const m = readMetrics(join(runDir, 'grpo', 'metrics.jsonl'));
    expect(m).toHaveLength(12);
    const rewards = m.map((r) => r.reward as number);
    expect(mean(rewards.slice(-3))).toBeGreaterThan(mean(rewards.slice(0, 3)) + 0.2);
    // 4 prompt groups per step = 4 rollout jobs, and 4 reward jobs for the remote reward.
    expect(m[0]['cluster/jobs']).toBe(8);
    const served = (w: string) => m.reduce((a, r) => a + Number(r[`cluster/served/${w}`] ?? 0), 0);
    expect(served('w1') + served('w2')).toBe(12 * 8);
    expect(served('w1')).toBeGreaterThan(0);
    expect(served('w2')).toBeGreaterThan(0);
    const jobs = readFileSync(join(runDir, 'grpo', 'cluster-jobs.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(jobs).toHaveLength(12 * 8);
    expect(new Set(jobs.map((j) => j.worker))).toEqual(new Set(['w1', 'w2']));
    expect(jobs.filter((j) => j.kind === 'rollout').every((j) => j.staleness === 0)).toBe(true);
    rmSync(runDir, { recursive: true, force: true });
  }, 120_000);
});
