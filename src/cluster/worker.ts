// A worker process (`r1 worker --connect URL --roles rollout,reward`): says hello to the trainer,
// then takes jobs from the work queues of its roles, one at a time per role, and publishes each
// result to the results stream (message id = job id, so a repeat is dropped) before acking the job.
// Generation runs in a worker thread (the in-process RolloutPool with one thread), so heartbeats and
// the job's keep-alive go on while it generates; a killed worker stops both, and the job goes to
// another worker after job_timeout_s.
import { hostname } from 'node:os';
import type { JsMsg } from '@nats-io/jetstream';
import { Rng } from '../engine/rng.ts';
import type { Completion } from '../model/generate.ts';
import type { Tokenizer } from '../model/tokenizer.ts';
import { Transformer } from '../model/transformer.ts';
import { RolloutPool } from '../rollout/pool.ts';
import { TOOL_LANGUAGES, ToolRunner, ToolSession } from '../rollout/tools.ts';
import { closeRewards, loadRewards, type LoadedReward } from '../../rewards/registry.ts';
import type { ToolCall } from '../../rewards/types.ts';
import { type Bus, openBus, publishDurable, retry } from './bus.ts';
import { type ClusterSettings, redactUrl } from './config.ts';
import { DigestMismatch, PolicyCache } from './policy.ts';
import {
  JOBS_STREAM,
  JOB_KINDS,
  PROTOCOL,
  R1KIT_VERSION,
  decode,
  encode,
  subjects,
  type Heartbeat,
  type Hello,
  type HelloReply,
  type Job,
  type JobResult,
  type RewardJob,
  type Role,
  type RolloutJob,
  type Started,
  type ToolJob,
} from './protocol.ts';

export type WorkerOptions = {
  settings: Pick<ClusterSettings, 'url' | 'token' | 'tls'>;
  roles: Role[];
  name?: string;
  backend: string;
  log?: (line: string) => void;
  /** Stop taking jobs when aborted (the command stops on SIGINT/SIGTERM). */
  signal?: AbortSignal;
  /** For tests: the protocol and version this worker claims at hello. */
  claim?: { protocol: number; version: string };
  /** For tests: wait this long inside each job (a job to kill a worker in). */
  jobDelayMs?: number;
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs a worker until aborted; resolves with the exit code (2 when the trainer refused it). */
export async function runWorker(o: WorkerOptions): Promise<number> {
  const log = o.log ?? ((line: string) => process.stderr.write(line + '\n'));
  const id = (o.name ?? `${hostname()}-${process.pid}`).replace(/[^A-Za-z0-9_-]/g, '_');
  const settings: ClusterSettings = {
    maxStaleness: 0,
    jobTimeoutS: 60,
    maxDeliver: 5,
    onNoWorkers: 'wait',
    remoteRewards: [],
    ...o.settings,
  };
  const bus = await openBus(settings, `r1-worker-${id}`);
  log(`worker ${id}: connected to ${redactUrl(o.settings.url)} (roles ${o.roles.join(', ')}, r1kit ${R1KIT_VERSION})`);
  const state = { busy: null as string | null };
  let heartbeat: NodeJS.Timeout | undefined;
  const w = new Worker(bus, id, o, log, state);
  try {
    const hello = await sayHello(bus, id, o, log);
    if (hello.kind === 'refused') {
      log(`worker ${id}: refused by the trainer: ${hello.reason}`);
      return 2;
    }
    log(`worker ${id}: welcomed by trainer session ${hello.session}`);
    const beat = () => {
      const hb: Heartbeat = {
        kind: 'heartbeat',
        worker: id,
        roles: o.roles,
        busy: state.busy,
        version: R1KIT_VERSION,
        protocol: o.claim?.protocol ?? PROTOCOL,
      };
      if (!bus.nc.isClosed()) bus.nc.publish(subjects.heartbeat(id), encode(hb));
    };
    beat();
    heartbeat = setInterval(beat, 1000);
    await Promise.all(o.roles.map((role) => w.serve(role)));
    return 0;
  } finally {
    clearInterval(heartbeat);
    await w.close();
    await bus.nc.drain().catch(() => {});
  }
}

async function sayHello(bus: Bus, id: string, o: WorkerOptions, log: (line: string) => void): Promise<HelloReply> {
  const hello: Hello = {
    kind: 'hello',
    worker: id,
    host: hostname(),
    pid: process.pid,
    roles: o.roles,
    protocol: o.claim?.protocol ?? PROTOCOL,
    version: o.claim?.version ?? R1KIT_VERSION,
  };
  let said = false;
  while (!o.signal?.aborted) {
    try {
      const reply = await bus.nc.request(subjects.hello, encode(hello), { timeout: 2000 });
      const r = decode<HelloReply>(reply.data, ['welcome', 'refused']);
      if (r) return r;
    } catch {
      if (!said)
        log(
          `worker ${id}: no trainer answers on ${redactUrl(o.settings.url)} yet; waiting for one (r1 run with cluster.url or R1_CLUSTER_URL)`,
        );
      said = true;
      await sleep(1000);
    }
  }
  return { kind: 'refused', reason: 'stopped before a trainer answered' };
}

class Worker {
  private cache: PolicyCache;
  private pool: { key: string; pool: RolloutPool; model: Transformer; weights: string } | null = null;
  private rewards = new Map<string, LoadedReward[]>();
  private toolRunners = new Map<string, ToolRunner>();

  constructor(
    private bus: Bus,
    private id: string,
    private o: WorkerOptions,
    private log: (line: string) => void,
    private state: { busy: string | null },
  ) {
    this.cache = new PolicyCache(bus);
  }

  /** Takes jobs of one role until aborted. */
  async serve(role: Role): Promise<void> {
    while (!this.o.signal?.aborted) {
      let msg: JsMsg | null = null;
      try {
        const consumer = await this.bus.js.consumers.get(JOBS_STREAM, role);
        msg = await consumer.next({ expires: 2000 });
      } catch {
        await sleep(500); // the server is away: try again
        continue;
      }
      if (msg) await this.handle(msg);
    }
  }

  private async handle(msg: JsMsg): Promise<void> {
    const job = decode<Job>(msg.data, JOB_KINDS);
    if (!job) {
      this.log(`worker ${this.id}: dropped a message that is not a job`);
      msg.term();
      return;
    }
    const delivery = msg.info.deliveryCount;
    const started: Started = { kind: 'started', id: job.id, worker: this.id, delivery };
    this.bus.nc.publish(subjects.started(job.session), encode(started));
    this.state.busy = job.id;
    const keepAlive = setInterval(() => msg.working(), 1000);
    const t0 = performance.now();
    const base = { id: job.id, worker: this.id, delivery };
    let result: JobResult;
    try {
      if (this.o.jobDelayMs) await sleep(this.o.jobDelayMs);
      if (job.protocol !== PROTOCOL) {
        result = {
          ...base,
          seconds: 0,
          kind: 'refused',
          code: 'protocol',
          message: `job speaks protocol ${job.protocol}, worker ${this.id} ${PROTOCOL}`,
        };
      } else if (job.kind === 'rollout') {
        const completions = await this.rollout(job);
        result = { ...base, seconds: (performance.now() - t0) / 1000, kind: 'completions', completions, policyVersion: job.policy.version };
      } else if (job.kind === 'tool') {
        const { call, timedOut } = await this.tool(job);
        result = { ...base, seconds: (performance.now() - t0) / 1000, kind: 'tool', call, timedOut };
      } else {
        const values = await this.reward(job);
        result = { ...base, seconds: (performance.now() - t0) / 1000, kind: 'rewards', values };
      }
    } catch (err) {
      const seconds = (performance.now() - t0) / 1000;
      if (err instanceof DigestMismatch) {
        this.log(`worker ${this.id}: refused ${err.message}`);
        result = { ...base, seconds, kind: 'refused', code: 'digest_mismatch', message: `worker ${this.id} refused ${err.message}` };
      } else {
        result = { ...base, seconds, kind: 'failed', message: (err as Error).message };
      }
    } finally {
      clearInterval(keepAlive);
    }
    await publishDurable(this.bus, subjects.result(job.session, job.id), encode(result), `result-${job.id}`);
    // The result is stored: the job is done (a lost ack means a redelivery, whose result the
    // stream drops as a repeat and the trainer as already counted).
    await retry(() => msg.ackAck(), `ack ${job.id}`, 10).catch(() => {});
    this.state.busy = null;
  }

  private async rollout(job: RolloutJob): Promise<Completion[]> {
    let tok: Tokenizer, weights: Float32Array;
    try {
      [tok, weights] = [await this.cache.tokenizer(job.policy.tokenizer), await this.cache.policy(job.policy)];
    } catch (err) {
      if (!(err instanceof DigestMismatch)) throw err;
      // A partial read: fetch once more before refusing.
      [tok, weights] = [await this.cache.tokenizer(job.policy.tokenizer), await this.cache.policy(job.policy)];
    }
    const key = `${JSON.stringify(job.policy.config)}|${job.policy.tokenizer.sha256}`;
    if (this.pool?.key !== key) {
      await this.pool?.pool.close();
      this.pool?.model.dispose();
      const model = Transformer.init(job.policy.config, 0);
      this.pool = { key, pool: new RolloutPool(1, job.policy.config, tok, this.o.backend), model, weights: '' };
    }
    if (this.pool.weights !== job.policy.sha256) {
      this.pool.model.loadFlat(weights);
      this.pool.pool.sync(this.pool.model);
      this.pool.weights = job.policy.sha256;
    }
    return this.pool.pool.generate(job.prompts, job.sampling, new Rng(job.seed));
  }

  private async reward(job: RewardJob): Promise<(number | null)[]> {
    const key = JSON.stringify([job.spec, job.recipeDir, job.sandbox ?? null]);
    let loaded = this.rewards.get(key);
    if (!loaded) {
      loaded = await loadRewards([{ ...job.spec }], job.recipeDir, job.sandbox ? { sandbox: job.sandbox } : {});
      this.rewards.set(key, loaded);
    }
    return await loaded[0].fn(job.batch);
  }

  /** A tool call in a sandbox pool of its own per limits (never a reward's): the session is the
   * job's history, run again ahead of the new cell (ToolJob). */
  private async tool(job: ToolJob): Promise<{ call: ToolCall; timedOut: boolean }> {
    const key = JSON.stringify([job.limits, job.sandbox ?? null]);
    let runner = this.toolRunners.get(key);
    if (!runner) {
      const isolation = job.sandbox?.isolation as 'strict' | 'standard' | 'process' | undefined;
      runner = new ToolRunner(job.limits, { isolation });
      this.toolRunners.set(key, runner);
    }
    const session = new ToolSession();
    const language = (TOOL_LANGUAGES as Record<string, keyof typeof TOOL_LANGUAGES | undefined>)[job.tool];
    if (language) for (const cell of job.history) session.remember(language, cell);
    runner.takeMetrics();
    const call = await runner.call(session, job.tool, job.code);
    return { call, timedOut: runner.takeMetrics().timeouts > 0 };
  }

  async close(): Promise<void> {
    for (const r of this.toolRunners.values()) await r.close();
    await this.pool?.pool.close();
    this.pool?.model.dispose();
    for (const r of this.rewards.values()) await closeRewards(r);
  }
}
