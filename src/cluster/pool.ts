// The trainer's side of the cluster: a rollout source with the in-process RolloutPool's interface
// (sync, generate, close), whose jobs go to `r1 worker` processes over NATS JetStream. Each group of
// `align` prompts is one job with its own seed drawn from the step's RNG, so a run is reproducible
// whatever the number of workers and whoever serves each job. Remote rewards (reward workers) are
// LoadedRewards whose function is a reward job.
import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Subscription } from '@nats-io/transport-node';
import { UserError } from '../errors.ts';
import type { Rng } from '../engine/rng.ts';
import type { ModelConfig } from '../model/config.ts';
import type { Completion } from '../model/generate.ts';
import type { Tokenizer } from '../model/tokenizer.ts';
import type { Transformer } from '../model/transformer.ts';
import type { Rollouts } from '../rollout/rollouts.ts';
import type { LoadedReward, RewardBatch, RewardValue } from '../../rewards/registry.ts';
import type { ToolCall } from '../../rewards/types.ts';
import { type Bus, openBus, publishDurable, sha256 } from './bus.ts';
import { type ClusterSettings, redactUrl } from './config.ts';
import { deletePolicies, flatWeights, publishPolicy, publishTokenizer } from './policy.ts';
import {
  JOBS_STREAM,
  PROTOCOL,
  RESULTS_STREAM,
  RESULT_KINDS,
  decode,
  encode,
  helloProblem,
  subjects,
  type Heartbeat,
  type Hello,
  type HelloReply,
  type Job,
  type JobResult,
  type PolicyRef,
  type RewardSpecWire,
  type Role,
  type Sampling,
  type Started,
  type ToolJob,
} from './protocol.ts';

type Pending = { job: Job; role: Role; resolve: (r: JobResult) => void; reject: (e: Error) => void; seq?: number };
type WorkerSeen = { last: number; roles: Role[]; busy: string | null };

const HEARTBEAT_WINDOW_MS = 2500;

export type ClusterPoolOptions = { tok: Tokenizer; stageDir: string; log: (line: string) => void };

export class ClusterPool implements Rollouts {
  /** The workers sample with the trainer's own tfjs forward pass. */
  readonly samplesElsewhere = false;
  readonly session = randomBytes(4).toString('hex');
  private pending = new Map<string, Pending>();
  private done = new Set<string>();
  private workers = new Map<string, WorkerSeen>();
  private bySeq = new Map<number, string>();
  private subs: Subscription[] = [];
  private timers: NodeJS.Timeout[] = [];
  private nextJob = 0;
  private policy: { ref: PolicyRef | null; sha: string; version: number; ready: Promise<PolicyRef | null>; objects: string[] } = {
    ref: null,
    sha: '',
    version: 0,
    ready: Promise.resolve(null),
    objects: [],
  };
  private tokenizerRef: Promise<PolicyRef['tokenizer']>;
  private stats = { jobs: 0, redelivered: 0, duplicates: 0, seconds: 0, staleness: 0, served: new Map<string, number>() };
  private noWorkers = new Map<Role, { since: number; said: number }>();
  private closed = false;
  private readonly jobsLog: string;

  private constructor(
    private bus: Bus,
    private opts: ClusterPoolOptions,
  ) {
    this.jobsLog = `${opts.stageDir}/cluster-jobs.jsonl`;
    this.tokenizerRef = publishTokenizer(bus, opts.tok);
    this.tokenizerRef.catch(() => {});
  }

  get settings(): ClusterSettings {
    return this.bus.settings;
  }

  /** Rollouts may run ahead of training by cluster.max_staleness steps. */
  get staleness(): { max: number } {
    return { max: this.bus.settings.maxStaleness };
  }

  /** Connects, drops what a previous trainer left (its pending jobs and policies), starts listening. */
  static async open(settings: ClusterSettings, opts: ClusterPoolOptions): Promise<ClusterPool> {
    const bus = await openBus(settings, 'r1-trainer', true);
    await bus.jsm.streams.purge(JOBS_STREAM);
    const old: string[] = [];
    for (const info of await bus.os.list()) old.push(info.name);
    await deletePolicies(
      bus,
      old.filter((n) => n.startsWith('policy-')),
    );
    const pool = new ClusterPool(bus, opts);
    await pool.listen();
    opts.log(
      `cluster: trainer session ${pool.session} on ${redactUrl(settings.url)} (job_timeout_s ${settings.jobTimeoutS}, max_deliver ${settings.maxDeliver}, on no workers: ${settings.onNoWorkers})`,
    );
    return pool;
  }

  private async listen(): Promise<void> {
    const nc = this.bus.nc;
    this.subs.push(
      nc.subscribe(subjects.hello, {
        callback: (_e, m) => {
          const h = decode<Hello>(m.data, ['hello']);
          if (!h) return;
          const problem = helloProblem(h);
          const reply: HelloReply = problem ? { kind: 'refused', reason: problem } : { kind: 'welcome', session: this.session };
          if (problem) this.opts.log(`cluster: refused ${problem}`);
          else this.opts.log(`cluster: worker ${h.worker} joined (${h.roles.join(', ')}; ${h.host} pid ${h.pid})`);
          m.respond(encode(reply));
        },
      }),
    );
    this.subs.push(
      nc.subscribe(subjects.heartbeats, {
        callback: (_e, m) => {
          const hb = decode<Heartbeat>(m.data, ['heartbeat']);
          if (hb && hb.protocol === PROTOCOL) this.workers.set(hb.worker, { last: Date.now(), roles: hb.roles, busy: hb.busy });
        },
      }),
    );
    this.subs.push(
      nc.subscribe(subjects.started(this.session), {
        callback: (_e, m) => {
          const s = decode<Started>(m.data, ['started']);
          const w = s && this.workers.get(s.worker);
          if (w) w.last = Date.now();
        },
      }),
    );
    for (const role of ['rollout', 'reward'] as const) {
      this.subs.push(
        nc.subscribe(subjects.maxDeliveries(role), {
          callback: (_e, m) => {
            const adv = JSON.parse(new TextDecoder().decode(m.data)) as { stream_seq?: number; deliveries?: number };
            const id = adv.stream_seq !== undefined ? this.bySeq.get(adv.stream_seq) : undefined;
            const p = id ? this.pending.get(id) : undefined;
            if (!p || !id) return;
            this.pending.delete(id);
            p.reject(
              new UserError(
                `cluster: ${role} job ${id} was delivered ${adv.deliveries ?? this.settings.maxDeliver} times (max_deliver) without a result: the workers that took it died or ran past job_timeout_s (${this.settings.jobTimeoutS} s)`,
                1,
              ),
            );
          },
        }),
      );
    }
    const consumer = await this.bus.js.consumers.get(RESULTS_STREAM, { filter_subjects: subjects.results(this.session) });
    // Short pulls: after a server restart a lost pull is noticed within seconds (heartbeats of expires / 2).
    const messages = await consumer.consume({ expires: 5000 });
    void (async () => {
      for await (const m of messages) {
        const r = decode<JobResult>(m.data, RESULT_KINDS);
        if (r) this.onResult(r);
      }
    })();
    this.timers.push(setInterval(() => this.watch(), 250));
  }

  private onResult(r: JobResult): void {
    const p = this.pending.get(r.id);
    if (!p) {
      if (this.done.has(r.id)) this.stats.duplicates++;
      return;
    }
    this.pending.delete(r.id);
    this.done.add(r.id);
    const w = this.workers.get(r.worker);
    if (w) w.last = Date.now();
    if (r.kind === 'refused' || r.kind === 'failed') {
      const what =
        r.kind === 'refused' && r.code === 'digest_mismatch'
          ? `${r.message} (the policy blob in the object store is corrupt or partial)`
          : r.message;
      p.reject(new UserError(`cluster: ${p.role} job ${r.id} ${r.kind} by worker ${r.worker}: ${what}`, 1));
      return;
    }
    const staleness = r.kind === 'completions' ? this.policy.version - r.policyVersion : 0;
    this.stats.jobs++;
    if (r.delivery > 1) this.stats.redelivered++;
    this.stats.seconds += r.seconds;
    this.stats.staleness = Math.max(this.stats.staleness, staleness);
    this.stats.served.set(r.worker, (this.stats.served.get(r.worker) ?? 0) + 1);
    mkdirSync(dirname(this.jobsLog), { recursive: true });
    appendFileSync(
      this.jobsLog,
      JSON.stringify({
        job: r.id,
        kind: p.job.kind,
        worker: r.worker,
        delivery: r.delivery,
        seconds: +r.seconds.toFixed(4),
        ...(r.kind === 'completions' ? { policy_version: r.policyVersion, staleness } : {}),
      }) + '\n',
    );
    p.resolve(r);
  }

  /** Says (or fails) when jobs of a role wait and no worker of that role is alive. */
  private watch(): void {
    const now = Date.now();
    const grace = Math.min(2000, this.settings.jobTimeoutS * 500);
    for (const role of ['rollout', 'reward'] as const) {
      const waiting = [...this.pending.values()].filter((p) => p.role === role);
      const alive = [...this.workers.entries()].filter(([, w]) => w.roles.includes(role) && now - w.last < HEARTBEAT_WINDOW_MS);
      const state = this.noWorkers.get(role);
      if (!waiting.length || alive.length) {
        if (state && state.said && alive.length)
          this.opts.log(`cluster: ${role} worker ${alive.map(([id]) => id).join(', ')} alive; carrying on`);
        this.noWorkers.delete(role);
        continue;
      }
      if (!state) {
        this.noWorkers.set(role, { since: now, said: 0 });
        continue;
      }
      if (now - state.since < grace || now - state.said < this.settings.jobTimeoutS * 1000) continue;
      const msg = `no ${role} worker alive on ${redactUrl(this.settings.url)} for ${((now - state.since) / 1000).toFixed(0)} s (${waiting.length} job(s) waiting); start one: npx r1 worker --connect ${redactUrl(this.settings.url)} --roles ${role}`;
      if (this.settings.onNoWorkers === 'fail') {
        for (const [id, p] of this.pending) {
          if (p.role !== role) continue;
          this.pending.delete(id);
          p.reject(new UserError(`cluster: ${msg} (--on-no-workers fail)`, 1));
        }
        this.noWorkers.delete(role);
      } else {
        this.opts.log(`cluster: ${msg}; waiting (--on-no-workers wait)`);
        state.said = now;
      }
    }
  }

  private async submit(role: Role, job: Job): Promise<JobResult> {
    if (this.closed) throw new Error('cluster pool is closed');
    const result = new Promise<JobResult>((resolve, reject) => this.pending.set(job.id, { job, role, resolve, reject }));
    const ack = await this.bus.js.publish(subjects.job(role), encode(job), { msgID: job.id, timeout: 5000 }).catch(async () => {
      await publishDurable(this.bus, subjects.job(role), encode(job), job.id);
      return null;
    });
    if (ack) this.bySeq.set(ack.seq, job.id);
    return result;
  }

  /** Publishes the weights if they changed (a new version); generate() waits for the upload. */
  sync(model: Transformer): void {
    const weights = flatWeights(model);
    const sha = sha256(new Uint8Array(weights.buffer, weights.byteOffset, weights.byteLength));
    if (sha === this.policy.sha) return;
    const version = ++this.policy.version;
    const config: ModelConfig = model.config;
    const previous = this.policy.ready;
    this.policy.sha = sha;
    this.policy.ready = (async () => {
      await previous;
      const ref = await publishPolicy(this.bus, this.session, version, config, weights, await this.tokenizerRef);
      this.policy.ref = ref;
      this.policy.objects.push(ref.object);
      // Keep the versions stale rollouts may still need; drop older ones.
      const keep = this.settings.maxStaleness + 2;
      if (this.policy.objects.length > keep)
        await deletePolicies(this.bus, this.policy.objects.splice(0, this.policy.objects.length - keep));
      return ref;
    })();
    this.policy.ready.catch(() => {});
  }

  /** The policy version generate() will name, once its upload is done (null before any sync). */
  published(): Promise<PolicyRef | null> {
    return this.policy.ready;
  }

  async generate(
    prompts: number[][],
    sampling: Sampling,
    rng: Rng,
    align = 1,
    onPart?: (offset: number, part: Completion[]) => void,
  ): Promise<Completion[]> {
    const policy = await this.policy.ready;
    if (!policy) throw new Error('cluster pool: generate() before sync()');
    const jobs: Promise<Completion[]>[] = [];
    for (let offset = 0; offset < prompts.length; offset += align) {
      const id = `${this.session}-${this.nextJob++}`;
      const job: Job = {
        kind: 'rollout',
        protocol: PROTOCOL,
        id,
        session: this.session,
        policy,
        prompts: prompts.slice(offset, offset + align),
        sampling,
        seed: rng.seed(),
      };
      jobs.push(
        this.submit('rollout', job).then((r) => {
          if (r.kind !== 'completions') throw new Error(`job ${id}: expected completions, got ${r.kind}`);
          onPart?.(offset, r.completions);
          return r.completions;
        }),
      );
    }
    return (await Promise.all(jobs)).flat();
  }

  /** A reward computed by reward workers: same name and weight, its function a reward job. */
  remoteReward(spec: RewardSpecWire, name: string, recipeDir: string, sandbox?: { isolation: string; reuse?: string }): LoadedReward {
    return {
      name,
      weight: spec.weight ?? 1,
      fn: async (batch: RewardBatch): Promise<RewardValue[]> => {
        const id = `${this.session}-${this.nextJob++}`;
        const r = await this.submit('reward', {
          kind: 'reward',
          protocol: PROTOCOL,
          id,
          session: this.session,
          spec,
          recipeDir,
          ...(sandbox ? { sandbox } : {}),
          batch,
        });
        if (r.kind !== 'rewards') throw new Error(`job ${id}: expected rewards, got ${r.kind}`);
        return r.values;
      },
    };
  }

  /** Runs one tool call on a reward worker (a tool job: see ToolJob); resolves with the call and
   * whether it timed out, rejects when no worker could run it. */
  async runTool(call: Omit<ToolJob, 'kind' | 'protocol' | 'id' | 'session'>): Promise<{ call: ToolCall; timedOut: boolean }> {
    const id = `${this.session}-${this.nextJob++}`;
    const r = await this.submit('reward', { kind: 'tool', protocol: PROTOCOL, id, session: this.session, ...call });
    if (r.kind !== 'tool') throw new Error(`job ${id}: expected a tool call's result, got ${r.kind}`);
    return { call: r.call, timedOut: r.timedOut };
  }

  /** The step's cluster metrics (jobs, which worker served how many, redeliveries, staleness); resets them. */
  takeMetrics(): Record<string, number> {
    const s = this.stats;
    const out: Record<string, number> = {
      'cluster/jobs': s.jobs,
      'cluster/redelivered': s.redelivered,
      'cluster/duplicates': s.duplicates,
      'cluster/workers': s.served.size,
      'cluster/job_s': s.jobs ? s.seconds / s.jobs : 0,
      'cluster/staleness': s.staleness,
      'cluster/policy_version': this.policy.version,
    };
    for (const [w, n] of s.served) out[`cluster/served/${w}`] = n;
    this.stats = { jobs: 0, redelivered: 0, duplicates: 0, seconds: 0, staleness: 0, served: new Map() };
    return out;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    for (const p of this.pending.values()) p.reject(new Error('cluster pool closed'));
    this.pending.clear();
    await this.policy.ready.catch(() => null);
    await deletePolicies(this.bus, this.policy.objects);
    for (const s of this.subs) s.unsubscribe();
    await this.bus.nc.drain().catch(() => {});
  }
}
