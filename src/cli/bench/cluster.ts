// `r1 bench cluster`: what going through NATS JetStream costs. Round-trip overhead per rollout job and
// per reward job (wall time minus the worker's own time), policy publish + fetch for the reference
// model and a ~50 M-parameter one, and GRPO seconds per step with 0 (in-process), 1 and 2 remote
// workers. The workers run on this machine, on the same cores as the trainer: the numbers measure
// the overhead of the cluster path, not a speed-up from more machines.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchOptions } from '../commands/bench.ts';
import { initBackend } from '../../engine/backend.ts';
import { Rng } from '../../engine/rng.ts';
import { TINY } from '../../model/config.ts';
import { Tokenizer } from '../../model/tokenizer.ts';
import { Transformer } from '../../model/transformer.ts';
import { openBus } from '../../cluster/bus.ts';
import { resolveCluster } from '../../cluster/config.ts';
import { ClusterPool } from '../../cluster/pool.ts';
import { PolicyCache, publishPolicy, publishTokenizer } from '../../cluster/policy.ts';
import { startNatsServer } from '../../cluster/server.ts';
import { runGrpoBench, writeSumRows } from './grpo.ts';

const BIN = resolve(fileURLToPath(import.meta.url), '../../../../bin/r1.js');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ms = (s: number) => +(s * 1000).toFixed(2);

function startWorkers(url: string, n: number, backend: string): ChildProcess[] {
  return Array.from({ length: n }, (_, i) =>
    spawn(process.execPath, [BIN, 'worker', '--connect', url, '--name', `bench-${i + 1}`, '--backend', backend], { stdio: 'ignore' }),
  );
}

async function stopWorkers(ws: ChildProcess[]): Promise<void> {
  await Promise.all(ws.map((w) => new Promise((r) => (w.exitCode !== null ? r(null) : (w.once('exit', r), w.kill('SIGTERM'))))));
}

export async function run(opts: BenchOptions): Promise<Record<string, unknown>[]> {
  const dir = mkdtempSync(join(tmpdir(), 'r1-bench-cluster-'));
  const server = process.env.R1_CLUSTER_URL ? null : await startNatsServer(join(dir, 'nats'));
  const url = process.env.R1_CLUSTER_URL ?? server!.url;
  const settings = resolveCluster({ url, job_timeout_s: 120 }, dir)!;
  const backend = await initBackend(opts.backend);
  const out: Record<string, unknown>[] = [];
  const note = 'workers on this machine share its cores with the trainer: this measures the overhead of the cluster path';
  try {
    // Round trips: one small job at a time through one worker.
    const tok = Tokenizer.train(['the cat sat on the mat', 'a dog ran'], { vocabSize: 280 });
    const model = Transformer.init({ ...TINY, vocab_size: tok.vocabSize }, 0);
    const pool = await ClusterPool.open(settings, { tok, stageDir: join(dir, 'jobs'), log: () => {} });
    const workers = startWorkers(url, 1, backend);
    pool.sync(model);
    const n = opts.quick ? 5 : 20;
    const rollout: number[] = [],
      reward: number[] = [];
    const fmt = pool.remoteReward({ name: 'format' }, 'format', dir);
    for (let i = 0; i < n + 1; i++) {
      pool.takeMetrics();
      let t = performance.now();
      await pool.generate([[1, 2, 3]], { maxNewTokens: 1, temperature: 1 }, new Rng(i), 1);
      const wall = (performance.now() - t) / 1000;
      const job = pool.takeMetrics()['cluster/job_s'];
      t = performance.now();
      await fmt.fn({ prompts: ['p'], completions: ['<think>a</think><answer>b</answer>'], rows: [{}] });
      const rwall = (performance.now() - t) / 1000;
      const rjob = pool.takeMetrics()['cluster/job_s'];
      if (i === 0) continue; // the first pays the worker's start-up
      rollout.push(wall - job);
      reward.push(rwall - rjob);
    }
    out.push({
      bench: 'cluster',
      what: 'rollout_job_round_trip',
      overhead_ms_median: ms(median(rollout)),
      jobs: n,
      note: "wall time of one 1-token job minus the worker's time in it",
    });
    out.push({ bench: 'cluster', what: 'reward_job_round_trip', overhead_ms_median: ms(median(reward)), jobs: n });
    await pool.close();
    await stopWorkers(workers);
    model.dispose();

    // Policy publish + fetch (digest checked) through the object store.
    const bus = await openBus(settings, 'r1-bench', true);
    const tref = await publishTokenizer(bus, tok);
    for (const [name, params] of [
      ['tiny', Transformer.init({ ...TINY, vocab_size: 512 }, 0)],
      ['50M', null],
    ] as const) {
      const size = params ? Object.values(params.params).reduce((a, p) => a + p.size, 0) : 50_000_000;
      const weights = new Float32Array(size);
      const rng = new Rng(1);
      for (let i = 0; i < size; i += 97) weights[i] = rng.normal();
      const t0 = performance.now();
      const ref = await publishPolicy(bus, 'bench', name === 'tiny' ? 1 : 2, { ...TINY, vocab_size: 512 }, weights, tref);
      const t1 = performance.now();
      await new PolicyCache(bus).policy(ref);
      const t2 = performance.now();
      await bus.os.delete(ref.object);
      out.push({
        bench: 'cluster',
        what: 'policy',
        model: name,
        parameters: size,
        mib: +((size * 4) / 2 ** 20).toFixed(1),
        publish_s: +((t1 - t0) / 1000).toFixed(3),
        fetch_s: +((t2 - t1) / 1000).toFixed(3),
      });
      params?.dispose();
    }
    await bus.nc.drain();

    // GRPO seconds per step: in-process, then through 1 and 2 workers.
    writeSumRows(dir);
    const steps = opts.quick ? 2 : 4;
    for (const remote of [0, 1, 2]) {
      const ws = remote ? startWorkers(url, remote, backend) : [];
      const avg = await runGrpoBench(dir, {
        name: `bench-cluster-${remote}`,
        backend,
        config: TINY,
        steps,
        rolloutWorkers: 0,
        extra: remote ? `cluster: { url: ${JSON.stringify(url)}, job_timeout_s: 120, remote_rewards: [] }` : '',
      });
      out.push({
        bench: 'cluster',
        what: 'grpo_step',
        remote_workers: remote,
        s_per_step: +avg('step_time_s').toFixed(3),
        generate_s: +avg('time/generate_s').toFixed(3),
        prompts: 8,
        group: 8,
        new_tokens_max: 96,
        note,
      });
      await stopWorkers(ws);
    }
  } finally {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}
