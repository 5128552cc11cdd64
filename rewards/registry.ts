// Reward registry: built-ins by name, user modules by path ('./my-rewards.ts#brevity', TypeScript
// loaded without a build step), and scoreBatch, which runs them all, validates what they return and
// sums them with their weights.
import { existsSync } from 'node:fs';
import { basename, extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { closest } from 'fastest-levenshtein';
import { UserError } from '../src/errors.ts';
import { mean, std } from '../src/rl/index.ts';
import { accuracy } from './accuracy.ts';
import { code } from './code.ts';
import { format, formatSoft, tagCountReward } from './format.ts';
import { language } from './language.ts';
import { cosineLength } from './length.ts';
import { softOverlongReward } from './overlong.ts';
import { repetition } from './repetition.ts';
import type { NotingRewardFn } from './notes.ts';
import type { BuiltinReward, RewardBatch, RewardFn, RewardValue } from './types.ts';

export type { RewardBatch, RewardFn, RewardValue } from './types.ts';

const BUILTINS: Record<string, BuiltinReward> = {
  accuracy,
  format,
  format_soft: formatSoft,
  tag_count: tagCountReward,
  language,
  repetition,
  cosine_length: cosineLength,
  length: cosineLength,
  soft_overlong: softOverlongReward,
  code,
};

export const BUILTIN_REWARDS: readonly string[] = Object.keys(BUILTINS);

export type RewardSpec = { name: string; weight?: number; options?: Record<string, unknown> };
export type LoadedReward = { name: string; weight: number; fn: RewardFn; close?: () => Promise<void> };
/** A user module's export is called with the batch and the spec's options. */
export type UserRewardFn = (batch: RewardBatch, options: Record<string, unknown>) => RewardValue[] | Promise<RewardValue[]>;

/** A reward name that is a module path rather than a built-in. */
export function isModulePath(name: string): boolean {
  return /^\.{1,2}[\\/]|^[\\/]|^[A-Za-z]:[\\/]/.test(name) || /\.(?:[cm]?[jt]s)(?:#|$)/.test(name);
}

/** What is wrong with a reward spec's name or a built-in's options, or null. Recipe validation calls
 * it too, so a misspelt reward fails before any stage runs (user modules are checked when loaded). */
export function rewardSpecProblem(spec: RewardSpec): { field: 'name' | 'options'; message: string } | null {
  if (isModulePath(spec.name)) return null;
  const b = Object.hasOwn(BUILTINS, spec.name) ? BUILTINS[spec.name] : undefined;
  if (!b) {
    const near = closest(spec.name, [...BUILTIN_REWARDS]);
    const hint = near ? ` (did you mean '${near}'?)` : '';
    return {
      field: 'name',
      message: `unknown reward '${spec.name}'${hint}; built-ins: ${BUILTIN_REWARDS.join(', ')}; or a module path like ./my-rewards.ts#name`,
    };
  }
  const unknown = Object.keys(spec.options ?? {}).filter((k) => !(k in b.defaults));
  if (!unknown.length) return null;
  const valid = Object.keys(b.defaults);
  return {
    field: 'options',
    message: `reward '${spec.name}': unknown option '${unknown[0]}'; valid: ${valid.length ? valid.join(', ') : '(none)'}`,
  };
}

function builtin(spec: RewardSpec, defaults: RewardDefaults): LoadedReward['fn'] & { close?: () => Promise<void> } {
  const b = BUILTINS[spec.name];
  const options = { ...spec.options };
  // The recipe's sandbox section is the default of the code reward's isolation and reuse.
  if (spec.name === 'code' && defaults.sandbox) {
    if (options.isolation == null) options.isolation = defaults.sandbox.isolation;
    if (options.reuse == null && defaults.sandbox.reuse !== undefined) options.reuse = defaults.sandbox.reuse;
  }
  const problem = rewardSpecProblem(spec);
  if (problem) throw new UserError(problem.message);
  try {
    return b.make({ ...b.defaults, ...options });
  } catch (err) {
    throw new UserError(`reward '${spec.name}': ${(err as Error).message}`);
  }
}

async function userModule(spec: RewardSpec, baseDir: string): Promise<{ name: string; fn: RewardFn }> {
  const hash = spec.name.lastIndexOf('#');
  const [file, exportName] = hash === -1 ? [spec.name, 'default'] : [spec.name.slice(0, hash), spec.name.slice(hash + 1) || 'default'];
  const path = resolve(baseDir, file);
  if (!existsSync(path)) throw new UserError(`reward '${spec.name}': module not found: ${path}`);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  } catch (err) {
    throw new UserError(`reward '${spec.name}': cannot load ${path}: ${(err as Error).message}`);
  }
  const value = mod[exportName];
  if (typeof value !== 'function') {
    const fns = Object.keys(mod).filter((k) => typeof mod[k] === 'function');
    const what = value === undefined ? `has no export '${exportName}'` : `export '${exportName}' is a ${typeof value}, not a function`;
    throw new UserError(`reward '${spec.name}': ${path} ${what}; its function exports: ${fns.length ? fns.join(', ') : '(none)'}`);
  }
  const options = spec.options ?? {};
  const userFn = value as UserRewardFn;
  return { name: exportName === 'default' ? basename(file, extname(file)) : exportName, fn: (batch) => userFn(batch, options) };
}

/** Built-ins and user modules (paths relative to baseDir, the recipe's folder), ready to score. */
/** Settings of the recipe that built-in rewards read when their own options leave them unset. */
export type RewardDefaults = { sandbox?: { isolation: string; reuse?: string } };

export async function loadRewards(specs: RewardSpec[], baseDir: string, defaults: RewardDefaults = {}): Promise<LoadedReward[]> {
  const out: LoadedReward[] = [];
  for (const spec of specs) {
    const weight = spec.weight ?? 1;
    if (typeof weight !== 'number' || !Number.isFinite(weight))
      throw new UserError(`reward '${spec.name}': weight must be a finite number, got ${String(weight)}`);
    let name: string, fn: RewardFn, close: (() => Promise<void>) | undefined;
    if (isModulePath(spec.name)) {
      ({ name, fn } = await userModule(spec, baseDir));
    } else {
      const made = builtin(spec, defaults);
      [name, fn, close] = [spec.name, made, made.close];
    }
    // Two rewards with one name would share a column in the logs.
    let unique = name;
    for (let k = 2; out.some((r) => r.name === unique); k++) unique = `${name}_${k}`;
    out.push({ name: unique, weight, fn, ...(close ? { close } : {}) });
  }
  return out;
}

/** Releases what the rewards hold (the code reward's sandbox workers). */
export async function closeRewards(rewards: LoadedReward[]): Promise<void> {
  await Promise.all(rewards.map((r) => r.close?.()));
}

export type ScoreResult = {
  total: number[];
  byFunction: Record<string, RewardValue[]>;
  stats: Record<string, { mean: number; std: number }>;
  errors: string[];
  /** What rewards counted while scoring (notes.ts), keyed 'reward/what' (accuracy/timeout): set when any did. */
  counts?: Record<string, number>;
};

/** A reward function that broke its contract; the message names the function, the row and the value. */
export class RewardError extends UserError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 1);
    this.name = 'RewardError';
    if (options?.cause !== undefined) this.cause = options.cause;
  }
}

function describe(v: unknown): string {
  if (typeof v === 'number') return String(v);
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '...' : v)}`;
  if (v === undefined) return 'undefined';
  if (Array.isArray(v)) return `an array of ${v.length}`;
  return `${typeof v} ${JSON.stringify(v)?.slice(0, 60) ?? ''}`.trim();
}

const slice = (b: RewardBatch, i: number): RewardBatch => ({
  prompts: [b.prompts[i]],
  completions: [b.completions[i]],
  rows: [b.rows[i]],
  ...(b.completionTokens ? { completionTokens: [b.completionTokens[i]] } : {}),
  ...(b.maxCompletionTokens !== undefined ? { maxCompletionTokens: b.maxCompletionTokens } : {}),
});

/** Runs one reward and checks its output; returns the values or the message of what went wrong. */
async function runOne(r: LoadedReward, batch: RewardBatch): Promise<{ values: RewardValue[] } | { error: string; cause?: unknown }> {
  const n = batch.completions.length;
  let out: unknown;
  try {
    out = await r.fn(batch);
  } catch (err) {
    // The batch call does not say which row broke it: find the first row that throws on its own.
    for (let i = 0; i < n; i++) {
      try {
        await r.fn(slice(batch, i));
      } catch (rowErr) {
        return { error: `reward '${r.name}', row ${i}: threw ${(rowErr as Error)?.message ?? String(rowErr)}`, cause: rowErr };
      }
    }
    return {
      error: `reward '${r.name}': threw ${(err as Error)?.message ?? String(err)} on the batch of ${n} (no single row throws)`,
      cause: err,
    };
  }
  if (!Array.isArray(out)) return { error: `reward '${r.name}': returned ${describe(out)}, expected an array of ${n} numbers or nulls` };
  if (out.length !== n) return { error: `reward '${r.name}': returned ${out.length} values for ${n} completions` };
  for (let i = 0; i < n; i++) {
    const v: unknown = out[i];
    if (v === null) continue;
    if (typeof v !== 'number') return { error: `reward '${r.name}', row ${i}: returned ${describe(v)}, expected a number or null` };
    if (!Number.isFinite(v)) return { error: `reward '${r.name}', row ${i}: returned ${v}` };
  }
  return { values: out as RewardValue[] };
}

/** Mean and (population) standard deviation of the values that apply (null skipped); 0 when none. */
export function meanStd(values: RewardValue[]): { mean: number; std: number } {
  const xs = values.filter((v): v is number => v !== null);
  return { mean: mean(xs), std: std(xs, 0) };
}

/** The scores of consecutive parts of one batch (each scored as it arrived), as one result. */
export function concatScores(parts: ScoreResult[]): ScoreResult {
  const byFunction: Record<string, RewardValue[]> = {};
  for (const p of parts) for (const [k, v] of Object.entries(p.byFunction)) (byFunction[k] ??= []).push(...v);
  return {
    total: parts.flatMap((p) => p.total),
    byFunction,
    stats: Object.fromEntries(Object.entries(byFunction).map(([k, v]) => [k, meanStd(v)])),
    errors: parts.flatMap((p) => p.errors),
    ...mergedCounts(parts),
  };
}

function mergedCounts(parts: ScoreResult[]): { counts?: Record<string, number> } {
  const counts: Record<string, number> = {};
  for (const p of parts) for (const [k, v] of Object.entries(p.counts ?? {})) counts[k] = (counts[k] ?? 0) + v;
  return Object.keys(counts).length ? { counts } : {};
}

/** Scores a batch with every reward: the weighted total (null counts 0), each function's values and
 * their mean/std. A reward that breaks its contract fails the call (onError 'fail', the default) or
 * scores 0 for the whole batch with its message in `errors` (onError 'zero'). */
export async function scoreBatch(
  rewards: LoadedReward[],
  batch: RewardBatch,
  opts: { onError?: 'fail' | 'zero' } = {},
): Promise<ScoreResult> {
  const n = batch.completions.length;
  if (batch.prompts.length !== n || batch.rows.length !== n) {
    throw new Error(`scoreBatch: ${n} completions but ${batch.prompts.length} prompts and ${batch.rows.length} rows`);
  }
  if (batch.completionTokens !== undefined && batch.completionTokens.length !== n) {
    throw new Error(`scoreBatch: ${n} completions but ${batch.completionTokens.length} completionTokens`);
  }
  const outcomes = await Promise.all(rewards.map((r) => runOne(r, batch)));
  const total = new Array<number>(n).fill(0);
  const byFunction: Record<string, RewardValue[]> = {};
  const stats: ScoreResult['stats'] = {};
  const errors: string[] = [];
  const counts: Record<string, number> = {};
  rewards.forEach((r, k) => {
    // Things the reward counted (a comparison over its time budget, a reference that does not parse):
    // counted in the result and said as warnings, which r1 score prints and GRPO counts as reward_errors.
    for (const [what, n] of Object.entries((r.fn as NotingRewardFn).notes?.(batch) ?? {})) {
      counts[`${r.name}/${what}`] = n.count;
      errors.push(`reward '${r.name}': ${n.count} x ${what} (e.g. ${n.example})`);
    }
    const o = outcomes[k];
    let values: RewardValue[];
    if ('error' in o) {
      if (opts.onError !== 'zero') throw new RewardError(o.error, { cause: o.cause });
      errors.push(`${o.error}; scored 0 for this batch`);
      values = new Array<RewardValue>(n).fill(0);
    } else values = o.values;
    byFunction[r.name] = values;
    stats[r.name] = meanStd(values);
    for (let i = 0; i < n; i++) total[i] += r.weight * (values[i] ?? 0);
  });
  return { total, byFunction, stats, errors, ...(Object.keys(counts).length ? { counts } : {}) };
}
