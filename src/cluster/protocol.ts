// What trainer and workers say to each other over NATS: subjects, streams and the messages, each a
// tagged union member checked on arrival. Bump PROTOCOL when a message changes shape; a worker
// whose protocol or r1kit version (major.minor) differs is refused at hello.
import { createRequire } from 'node:module';
import type { ModelConfig } from '../model/config.ts';
import type { Completion, SamplingOptions } from '../model/generate.ts';
import type { RewardValue, ToolCall } from '../../rewards/types.ts';

/** 2: tool jobs (a multi-turn rollout's tool calls, served by reward workers). */
export const PROTOCOL = 2;
export const R1KIT_VERSION = (createRequire(import.meta.url)('../../package.json') as { version: string }).version;

export const JOBS_STREAM = 'R1_JOBS';
export const RESULTS_STREAM = 'R1_RESULTS';
export const POLICY_BUCKET = 'r1-policy';
export const STATE_BUCKET = 'r1-state';
export const ROLES = ['rollout', 'reward'] as const;
export type Role = (typeof ROLES)[number];

export const subjects = {
  job: (role: Role) => `r1.jobs.${role}`,
  results: (session: string) => `r1.results.${session}.>`,
  result: (session: string, job: string) => `r1.results.${session}.${job}`,
  started: (session: string) => `r1.started.${session}`,
  heartbeat: (worker: string) => `r1.hb.${worker}`,
  heartbeats: 'r1.hb.>',
  hello: 'r1.hello',
  maxDeliveries: (role: Role) => `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${JOBS_STREAM}.${role}`,
};

/** A policy version in the object store: the worker fetches `object`, checks its sha256, caches it. */
export type PolicyRef = {
  version: number;
  object: string;
  sha256: string;
  bytes: number;
  config: ModelConfig;
  tokenizer: { object: string; sha256: string };
};

export type Sampling = Omit<SamplingOptions, 'rng'>;

export type RolloutJob = {
  kind: 'rollout';
  protocol: number;
  id: string;
  session: string;
  policy: PolicyRef;
  prompts: number[][];
  sampling: Sampling;
  seed: number;
};
export type RewardSpecWire = { name: string; weight?: number; options?: Record<string, unknown> };
export type RewardJob = {
  kind: 'reward';
  protocol: number;
  id: string;
  session: string;
  spec: RewardSpecWire;
  recipeDir: string;
  sandbox?: { isolation: string; reuse?: string };
  batch: {
    prompts: string[];
    completions: string[];
    rows: Record<string, unknown>[];
    completionTokens?: number[];
    maxCompletionTokens?: number;
  };
};
/** One tool call of a multi-turn rollout, for a reward worker's sandbox. Stateless on the worker: the
 * trajectory's session is the cells it ran before without error (`history`, in its language), which
 * the worker runs again ahead of `code` (rollout/tools.ts sessionProgram), so any worker can serve any
 * call of any trajectory. */
export type ToolJob = {
  kind: 'tool';
  protocol: number;
  id: string;
  session: string;
  tool: string;
  history: string[];
  code: string;
  limits: { timeoutS: number; outputChars: number };
  sandbox?: { isolation: string };
};
export type Job = RolloutJob | RewardJob | ToolJob;
export const JOB_KINDS = ['rollout', 'reward', 'tool'] as const satisfies readonly Job['kind'][];
export const RESULT_KINDS = ['completions', 'rewards', 'tool', 'refused', 'failed'] as const satisfies readonly JobResult['kind'][];

type ResultBase = { id: string; worker: string; delivery: number; seconds: number };
export type JobResult =
  | (ResultBase & { kind: 'completions'; completions: Completion[]; policyVersion: number })
  | (ResultBase & { kind: 'rewards'; values: RewardValue[] })
  | (ResultBase & { kind: 'tool'; call: ToolCall; timedOut: boolean })
  | (ResultBase & { kind: 'refused'; code: 'digest_mismatch' | 'protocol' | 'policy_missing'; message: string })
  | (ResultBase & { kind: 'failed'; message: string });

export type Hello = { kind: 'hello'; worker: string; host: string; pid: number; roles: Role[]; protocol: number; version: string };
export type HelloReply = { kind: 'welcome'; session: string } | { kind: 'refused'; reason: string };
export type Heartbeat = { kind: 'heartbeat'; worker: string; roles: Role[]; busy: string | null; version: string; protocol: number };
export type Started = { kind: 'started'; id: string; worker: string; delivery: number };

/** major.minor of a version, the part that must match between trainer and workers. */
export const compatible = (a: string, b: string) => a.split('.').slice(0, 2).join('.') === b.split('.').slice(0, 2).join('.');

/** Why a worker saying hello cannot serve this trainer, or null. */
export function helloProblem(h: Hello, protocol = PROTOCOL, version = R1KIT_VERSION): string | null {
  if (h.protocol !== protocol)
    return `worker ${h.worker} speaks cluster protocol ${h.protocol}, this trainer ${protocol}: run the same r1kit version on both (trainer ${version}, worker ${h.version})`;
  if (!compatible(h.version, version))
    return `worker ${h.worker} runs r1kit ${h.version}, this trainer ${version}: versions must match in major.minor`;
  return null;
}

const te = new TextEncoder(),
  td = new TextDecoder();
export const encode = (x: unknown) => te.encode(JSON.stringify(x));
export function decode<T extends { kind: string }>(data: Uint8Array, kinds: readonly T['kind'][]): T | null {
  try {
    const x = JSON.parse(td.decode(data)) as T;
    return x && typeof x === 'object' && kinds.includes(x.kind) ? x : null;
  } catch {
    return null;
  }
}
