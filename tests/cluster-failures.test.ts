// The cluster's failure cases, each against a real NATS server and real worker processes: a worker
// killed mid-job (the job is redelivered, its completions counted once), no worker alive (said
// within job_timeout_s; wait or fail), a corrupt policy blob (refused and reported), a worker of
// another version (refused at hello).
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runRecipe } from '../src/pipeline/run.ts';
import { loadRecipe } from '../src/recipe/index.ts';
import { connect } from '@nats-io/transport-node';
import { Objm } from '@nats-io/obj';
import { initBackend } from '../src/engine/backend.ts';
import { Rng } from '../src/engine/rng.ts';
import { generate } from '../src/model/generate.ts';
import { Tokenizer } from '../src/model/tokenizer.ts';
import { Transformer } from '../src/model/transformer.ts';
import { resolveCluster } from '../src/cluster/config.ts';
import { ClusterPool } from '../src/cluster/pool.ts';
import { POLICY_BUCKET, encode, subjects } from '../src/cluster/protocol.ts';
import { HAVE_NATS, quiet, startCluster, startWorker, until, type Cluster } from './cluster-helpers.ts';

const sampling = { maxNewTokens: 6, temperature: 1 };

describe.skipIf(!HAVE_NATS)('cluster failure cases', () => {
  let c: Cluster;
  let tok: Tokenizer;
  let model: Transformer;
  const pools: ClusterPool[] = [];
  const lines: string[] = [];

  async function openPool(extra: Record<string, unknown> = {}): Promise<ClusterPool> {
    const settings = resolveCluster({ url: c.server.url, job_timeout_s: 2, max_deliver: 3, ...extra }, process.cwd())!;
    const pool = await ClusterPool.open(settings, { tok, stageDir: `${c.dir}/stage`, log: (l) => lines.push(l) });
    pools.push(pool);
    pool.sync(model);
    await pool.published();
    return pool;
  }

  beforeAll(async () => {
    await initBackend('wasm');
    c = await startCluster();
    tok = Tokenizer.train(['the cat sat on the mat', 'a dog ran'], { vocabSize: 280 });
    model = Transformer.init(
      {
        vocab_size: tok.vocabSize,
        hidden_size: 16,
        num_hidden_layers: 1,
        num_attention_heads: 2,
        num_key_value_heads: 1,
        intermediate_size: 32,
        max_position_embeddings: 32,
        rope_theta: 10000,
        rms_norm_eps: 1e-6,
        tie_word_embeddings: true,
      },
      11,
    );
  });
  afterAll(async () => {
    for (const p of pools) await p.close();
    model?.dispose();
    await c?.close();
  });

  it('a worker killed mid-job: the job goes to another worker after job_timeout_s, its completions counted once, the same as in one process', async () => {
    const pool = await openPool();
    const slow = startWorker(c, 'slow', 'rollout', { R1_WORKER_JOB_DELAY_MS: '60000' });
    const nc = await connect({ servers: c.server.url });
    let started = 0;
    nc.subscribe(subjects.started(pool.session), { callback: () => void started++ });
    const prompts = [
      [1, 2, 3],
      [1, 2, 3],
    ];
    const t0 = Date.now();
    const result = pool.generate(prompts, sampling, new Rng(5), 2);
    await until(() => started === 1, 30_000, 'the slow worker to take the job');
    slow.child.kill('SIGKILL');
    startWorker(c, 'fast', 'rollout');
    const completions = await result;
    expect(Date.now() - t0).toBeGreaterThan(1500); // redelivered after ack_wait = job_timeout_s
    expect(completions).toHaveLength(2);
    // Deterministic per (seed, job): what one thread generates from the job's seed.
    const expected = generate(model, tok, prompts, { ...sampling, rng: new Rng(new Rng(new Rng(5).seed()).seed()) });
    expect(completions.map((x) => x.tokens)).toEqual(expected.map((x) => x.tokens));
    // A repeated result (a redelivery that finished twice) is dropped by job id.
    const m = pool.takeMetrics();
    expect(m['cluster/jobs']).toBe(1);
    expect(m['cluster/redelivered']).toBe(1);
    expect(m['cluster/served/fast']).toBe(1);
    await nc.close();
  }, 60_000);

  it('no worker alive: the trainer says so within job_timeout_s and, with on_no_workers fail, the job fails naming the role', async () => {
    for (const w of c.workers) w.child.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 3000)); // their heartbeats go stale
    const pool = await openPool({ on_no_workers: 'fail' });
    const t0 = Date.now();
    await expect(pool.generate([[1, 2]], sampling, new Rng(0), 1)).rejects.toThrow(/no rollout worker alive .*npx r1 worker --connect/);
    expect(Date.now() - t0).toBeLessThan(2000 + 1500);
  }, 30_000);

  it('no worker alive with on_no_workers wait: says so visibly, then carries on when one starts', async () => {
    const pool = await openPool({ on_no_workers: 'wait' });
    lines.length = 0;
    const result = pool.generate([[1, 2]], sampling, new Rng(0), 1);
    await until(() => lines.some((l) => /no rollout worker alive.*waiting/.test(l)), 5000, 'the waiting message');
    startWorker(c, 'late', 'rollout');
    expect(await result).toHaveLength(1);
    expect(lines.some((l) => /carrying on/.test(l))).toBe(true);
  }, 60_000);

  it('a corrupt policy blob is refused by the worker and reported by the trainer', async () => {
    const pool = await openPool();
    // New weights (a digest no worker has cached), then the blob overwritten with junk.
    const other = Transformer.init(model.config, 99);
    pool.sync(other);
    other.dispose();
    const ref = (await pool.published())!;
    const nc = await connect({ servers: c.server.url });
    const os = await new Objm(nc).open(POLICY_BUCKET);
    const bad = new Uint8Array(ref.bytes).fill(7);
    await os.putBlob({ name: ref.object }, bad);
    await expect(pool.generate([[1, 2]], sampling, new Rng(0), 1)).rejects.toThrow(
      /refused .*sha256 .* does not match .*corrupt or partial/,
    );
    await nc.close();
  }, 60_000);

  it('a worker of another version is refused at hello and exits 2', async () => {
    await openPool();
    lines.length = 0;
    const old = startWorker(c, 'old', 'rollout', { R1_WORKER_CLAIM_PROTOCOL: '0', R1_WORKER_CLAIM_VERSION: '0.0.1' });
    expect(await old.exited).toBe(2);
    expect(old.output()).toMatch(/refused by the trainer: .*protocol 0/);
    expect(lines.some((l) => /refused worker old/.test(l))).toBe(true);
  }, 60_000);

  it('a result that arrives twice is counted once', async () => {
    const pool = await openPool();
    const nc = await connect({ servers: c.server.url });
    const js = (await import('@nats-io/jetstream')).jetstream(nc);
    const result = pool.generate([[3, 4]], sampling, new Rng(1), 1);
    const got = await result;
    // Publish the same job's result again, under another message id (as a redelivered job would).
    const id = `${pool.session}-0`;
    await js.publish(
      subjects.result(pool.session, id),
      encode({ kind: 'completions', id, worker: 'ghost', delivery: 2, seconds: 0, completions: got, policyVersion: 1 }),
      { msgID: 'again' },
    );
    await new Promise((r) => setTimeout(r, 500));
    const m = pool.takeMetrics();
    expect(m['cluster/jobs']).toBe(1);
    expect(m['cluster/duplicates']).toBe(1);
    expect(m['cluster/served/ghost']).toBeUndefined();
    await nc.close();
  }, 60_000);

  it('r1 run --on-no-workers fail with no worker alive exits 1 within job_timeout_s, saying how to start one', async () => {
    for (const w of c.workers) w.child.kill('SIGKILL');
    const RECIPE = resolve('tests/fixtures/rl/rl.yaml');
    const set = [`output_dir=${join(c.dir, 'cli')}`, `cluster.url=${c.server.url}`, 'cluster.job_timeout_s=2'];
    await runRecipe(loadRecipe(RECIPE, { set }), { ...quiet, only: 'pretrain' });
    await new Promise((r) => setTimeout(r, 3000)); // the killed workers' heartbeats go stale
    const child = spawn(
      process.execPath,
      [resolve('bin/r1.js'), 'run', RECIPE, '--only', 'grpo', '--on-no-workers', 'fail', ...set.flatMap((x) => ['--set', x])],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    expect(code, err).toBe(1);
    expect(err).toMatch(/no rollout worker alive on nats:\/\/127\.0\.0\.1:\d+ for \d+ s .*npx r1 worker --connect/);
  }, 60_000);

  it('a job delivered max_deliver times without a result fails the run naming the job', async () => {
    for (const w of c.workers) w.child.kill('SIGKILL');
    const pool = await openPool({ max_deliver: 1 });
    const slow = startWorker(c, 'slow2', 'rollout', { R1_WORKER_JOB_DELAY_MS: '60000' });
    const nc = await connect({ servers: c.server.url });
    let started = 0;
    nc.subscribe(subjects.started(pool.session), { callback: () => void started++ });
    const result = pool.generate([[1, 2]], sampling, new Rng(0), 1);
    result.catch(() => {});
    await until(() => started === 1, 30_000, 'the slow worker to take the job');
    slow.child.kill('SIGKILL');
    startWorker(c, 'puller', 'rollout'); // a pull for the server to try the redelivery on
    await expect(result).rejects.toThrow(/rollout job \S+ was delivered 1 times \(max_deliver\)/);
    await nc.close();
  }, 60_000);

  it('the code reward runs on a reward worker (its sandbox), not on the trainer', async () => {
    const pool = await openPool({ job_timeout_s: 30 });
    startWorker(c, 'rewarder', 'reward');
    const code = pool.remoteReward({ name: 'code', options: { isolation: 'process' } }, 'code', process.cwd());
    const program = "```js\nconst n = +require('fs').readFileSync(0, 'utf8'); console.log(n * 2);\n```";
    const values = await code.fn({
      prompts: ['p', 'p'],
      completions: [program, 'no code'],
      rows: [
        {
          tests: [
            { input: '2', output: '4' },
            { input: '3', output: '7' },
          ],
        },
        { tests: [{ input: '1', output: '2' }] },
      ],
    });
    expect(values).toEqual([0.5, 0]);
    expect(pool.takeMetrics()['cluster/served/rewarder']).toBe(1);
  }, 90_000);
});
