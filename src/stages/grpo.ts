// GRPO (DeepSeekMath; DeepSeek-R1) and its relatives (DAPO, Dr. GRPO, GSPO, CISPO, RLOO,
// REINFORCE++): for each prompt sample a group of G completions, score them with rule-based
// rewards, turn the rewards into advantages, and maximise a clipped surrogate with a KL penalty to a
// frozen reference model, num_iterations updates per batch.
//
// One step, as named functions with typed hand-offs (prepareStep runs 1-5, the trainer 6):
//   1 refreshReference -> 2 sampleGroups (promptGroups -> generateAndScore, more batches with
//   dynamic sampling) -> 3 createEpisodes, THE hand-off from rollouts to training (Episodes) ->
//   4 correctStaleness -> 5 writeSamples, rolloutMetrics -> 6 episodeMicroBatches (the updates)
import * as tf from '@tensorflow/tfjs-core';
import { appendFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../errors.ts';
import { applyTemplate } from '../data/chat.ts';
import { activeBackend } from '../engine/backend.ts';
import { Rng } from '../engine/rng.ts';
import { openRollouts } from '../cluster/index.ts';
import type { Rollouts } from '../rollout/rollouts.ts';
import { toolSchemas } from '../rollout/multi-turn.ts';
import { Ahead, batchSeed, correctStale } from '../cluster/staleness.ts';
import type { Completion } from '../model/generate.ts';
import { loadModel, saveModel } from '../model/checkpoint.ts';
import type { Tokenizer } from '../model/tokenizer.ts';
import type { Transformer } from '../model/transformer.ts';
import type { ProgressField } from '../metrics/progress.ts';
import type { Row, StageContext, StageResult } from './context.ts';
import type { GrpoStage } from '../recipe/index.ts';
import { advantages, klEstimate, lossRowWeights, mean, modelTokenCount, std, truncatedIsWeights } from '../rl/index.ts';
import { closeRewards, concatScores, scoreBatch, type LoadedReward, type ScoreResult } from '../../rewards/registry.ts';
import { type MicroBatch, trainLoop } from '../train/trainer.ts';
import { batchIndices, documentIds, stageTrainOptions } from './batches.ts';
import { GRPO_LOSS, type GrpoBatch } from './grpo-batch.ts';
import { completionLogprobs } from './logprobs.ts';

/** A step's prompts, each repeated G times: one group of G consecutive rows per prompt. */
export type PromptGroups = { texts: string[]; ids: number[][]; rows: Row[] };

/** The groups' completions and their rewards. */
export type ScoredGroups = PromptGroups & { completions: Completion[]; scores: ScoreResult };

/** Training episodes: everything the updates need (the hand-off from rollouts to training). Row i
 * is prompt ids + completion ids; `old` are the sampling policy's log-probs of the completion
 * tokens, `ref` the reference's (null without one), `keep` 1 where the completion counts in the loss. */
export type Episodes = {
  inputs: number[][];
  promptLengths: number[];
  old: number[][];
  ref: number[][] | null;
  rewards: number[];
  advantages: number[];
  keep: number[];
  /** Each completion's summed KL estimate to the reference (kl_in_reward), else null. */
  rewardKl: number[] | null;
  /** rollout.engine llama.cpp: per-token truncated IS weights min(pi_train / pi_rollout, is_cap) of
   * the engine mismatch (`old` are then the trainer's recomputed log-probs), and their statistics. */
  isWeights?: number[][] | null;
  rolloutCorrection?: Record<string, number> | null;
  /** Multi-turn rollouts (tools): per completion token 1 where the model sampled it, 0 where a tool
   * wrote it; such tokens are context only (rl/tool-mask.ts). Null: single-turn. */
  modelTokens?: number[][] | null;
};

/** What dynamic sampling did in a step. */
export type Sampling = { batches: number; sampledGroups: number; keptGroups: number };

/** The rollout side of a step, handed from prepare to the updates and the logs. */
export type Step = {
  sampled: ScoredGroups;
  kept: ScoredGroups;
  episodes: Episodes;
  sampling: Sampling;
  seconds: { generate: number; score: number };
};

/** The prompt rows of prompt batch `index`, templated and tokenised, each repeated G times. */
export function promptGroups(rows: Row[], index: number, s: GrpoStage, tok: Tokenizer, seed: number): PromptGroups {
  const G = s.num_generations,
    P = s.per_device_train_batch_size / G;
  const out: PromptGroups = { texts: [], ids: [], rows: [] };
  for (const row of batchIndices(index, P, rows.length, seed).map((i) => rows[i])) {
    const p = row[s.prompt_field];
    if (typeof p !== 'string') throw new UserError(`stage '${s.name}': a row has no string field '${s.prompt_field}'`);
    const text = applyTemplate(s.template, p, tok.chatTemplate, s.tools?.format === 'chat' ? toolSchemas(s.tools.names) : undefined);
    const ids = documentIds(tok, text).slice(-s.max_prompt_length);
    for (let g = 0; g < G; g++) {
      out.texts.push(text);
      out.ids.push(ids);
      out.rows.push(row);
    }
  }
  return out;
}

/** Where completions come from (rollout/rollouts.ts), and the policy they sample. */
type Generator = { policy: Transformer; rollouts: Rollouts; tok: Tokenizer };

/** Samples G completions per prompt and scores them. Each worker's completions are scored as they
 * arrive (code rewards run in the sandbox's own processes), so scoring overlaps the generation still
 * under way; the score time is what is left after. */
export async function generateAndScore(
  groups: PromptGroups,
  gen: Generator,
  rewards: LoadedReward[],
  s: GrpoStage,
  rng: Rng,
): Promise<ScoredGroups & { seconds: { generate: number; score: number } }> {
  const t0 = performance.now();
  const sampling = {
    maxNewTokens: s.max_completion_length,
    temperature: s.temperature,
    topP: s.top_p,
    topK: s.top_k,
    stopTokens: [...gen.tok.eosIds],
    stopStrings: s.stop,
  };
  const parts: Promise<ScoreResult>[] = [];
  const score = (offset: number, cs: Completion[]) => {
    const at = <T>(xs: T[]) => xs.slice(offset, offset + cs.length);
    const part = scoreBatch(
      rewards,
      {
        prompts: at(groups.texts),
        completions: cs.map((c) => c.text),
        rows: at(groups.rows),
        completionTokens: cs.map((c) => c.tokens.length),
        maxCompletionTokens: s.max_completion_length,
        ...(s.tools ? { turns: cs.map((c) => c.trajectory?.turns ?? [{ text: c.text, call: null }]) } : {}),
      },
      { onError: s.reward_error },
    );
    part.catch(() => {}); // awaited below; until then a failure must not count as unhandled
    parts[offset] = part;
  };
  gen.rollouts.sync(gen.policy);
  const completions = await gen.rollouts.generate(groups.ids, sampling, rng, s.num_generations, score);
  const t1 = performance.now();
  const scores = concatScores(await Promise.all(parts.filter(Boolean)));
  return { ...groups, completions, scores, seconds: { generate: (t1 - t0) / 1000, score: (performance.now() - t1) / 1000 } };
}

/** Indices of the groups whose rewards are not all equal (the ones with a learning signal). */
export function differingGroups(total: readonly number[], G: number): number[] {
  const out: number[] = [];
  for (let g = 0; g * G < total.length; g++) {
    const group = total.slice(g * G, (g + 1) * G);
    if (group.some((x) => x !== group[0])) out.push(g);
  }
  return out;
}

/** Groups `which` of a scored batch, in order (whole groups of G rows). */
export function selectGroups(x: ScoredGroups, which: readonly number[], G: number): ScoredGroups {
  const rows = which.flatMap((g) => Array.from({ length: G }, (_, j) => g * G + j));
  const pick = <T>(xs: readonly T[]) => rows.map((i) => xs[i]);
  const byFunction = Object.fromEntries(Object.entries(x.scores.byFunction).map(([k, v]) => [k, pick(v)]));
  return {
    texts: pick(x.texts),
    ids: pick(x.ids),
    rows: pick(x.rows),
    completions: pick(x.completions),
    scores: { ...concatScores([{ total: pick(x.scores.total), byFunction, stats: {}, errors: [] }]), errors: x.scores.errors },
  };
}

/** Concatenates scored batches. */
function joinGroups(parts: ScoredGroups[]): ScoredGroups {
  return {
    texts: parts.flatMap((p) => p.texts),
    ids: parts.flatMap((p) => p.ids),
    rows: parts.flatMap((p) => p.rows),
    completions: parts.flatMap((p) => p.completions),
    scores: concatScores(parts.map((p) => p.scores)),
  };
}

/** The frozen reference's log-probs of every completion token, in chunks of `chunk` rows. */
function referenceLogprobs(
  ref: Transformer,
  e: Pick<Episodes, 'inputs' | 'promptLengths'>,
  lengths: number[],
  temperature: number,
  chunk: number,
): number[][] {
  const out: number[][] = [];
  for (let from = 0; from < e.inputs.length; from += chunk) {
    const rows = Array.from({ length: Math.min(chunk, e.inputs.length - from) }, (_, j) => from + j);
    const lp = completionLogprobs(ref, e, rows, temperature);
    const values = lp.arraySync();
    lp.dispose();
    rows.forEach((i, b) => out.push(values[b].slice(0, lengths[i])));
  }
  return out;
}

/** Each completion's KL estimate to the reference, summed over its tokens (from the sampling
 * policy's log-probs: the policy the reward judges). */
export function sequenceKl(
  old: number[][],
  ref: number[][],
  kind: GrpoStage['kl_estimator'],
  modelTokens: number[][] | null = null,
): number[] {
  return old.map((o, i) => {
    if (!o.length) return 0;
    // Tool-output tokens (multi-turn) are no action of the policy: no KL there.
    const m = modelTokens?.[i];
    return tf.tidy(() => {
      const kl = klEstimate(tf.sub(tf.tensor1d(o), tf.tensor1d(ref[i])), kind);
      return tf.sum(m ? tf.mul(kl, tf.tensor1d(m)) : kl).dataSync()[0];
    });
  });
}

/** Training episodes from scored groups: reference log-probs, rewards (minus the KL penalty with
 * kl_in_reward), advantages, and which completions count. `policy`: given when llama.cpp sampled
 * (rollout.engine), for the trainer's log-probs and the truncated IS weights. */
export function createEpisodes(
  x: ScoredGroups,
  ref: Transformer | null,
  s: GrpoStage,
  chunk: number,
  policy: Transformer | null = null,
): Episodes {
  const G = s.num_generations;
  const modelTokens = x.completions.some((c) => c.trajectory)
    ? x.completions.map((c) => c.trajectory?.modelTokens ?? c.tokens.map(() => 1))
    : null;
  const lengths = x.completions.map((c) => c.tokens.length);
  // What the loss counts: the model's own tokens (tool output is context only).
  const lossLengths = x.completions.map((c, i) => modelTokenCount(c.tokens.length, modelTokens?.[i]));
  const base = { inputs: x.ids.map((p, i) => [...p, ...x.completions[i].tokens]), promptLengths: x.ids.map((p) => p.length) };
  let old = x.completions.map((c) => c.logprobs);
  // Another engine sampled (llama.cpp): the ratio's pi_old is the trainer's own forward at sampling
  // time, and each token's policy loss is weighted by min(pi_train / pi_rollout, is_cap) (TRL's vLLM
  // importance-sampling correction).
  let correction: ReturnType<typeof truncatedIsWeights> | null = null;
  if (s.rollout.engine === 'llama.cpp' && policy) {
    const train = referenceLogprobs(policy, base, lengths, s.temperature, chunk);
    correction = truncatedIsWeights(train, old, s.rollout.is_cap);
    old = train;
  }
  const rolloutCorrection = correction && {
    'rollout_correction/kl': correction.kl,
    'rollout_correction/truncated_frac': correction.truncatedFrac,
    'rollout_correction/is_weight_mean': correction.meanWeight,
    'rollout_correction/logp_diff_max': correction.maxLogpDiff,
  };
  const refLp = ref ? referenceLogprobs(ref, base, lengths, s.temperature, chunk) : null;
  const rewardKl = s.kl_in_reward && refLp ? sequenceKl(old, refLp, s.kl_estimator, modelTokens) : null;
  const rewards = rewardKl ? x.scores.total.map((r, i) => r - s.beta * rewardKl[i]) : x.scores.total;
  const differing = new Set(differingGroups(x.scores.total, G));
  const keep = x.completions.map((c, i) => {
    if (s.mask_truncated_completions && c.finishReason === 'length') return 0;
    if (s.drop_equal_reward_groups && !differing.has(Math.floor(i / G))) return 0;
    return lossLengths[i] > 0 ? 1 : 0;
  });
  return {
    ...base,
    old,
    ref: refLp,
    rewards,
    advantages: advantages(rewards, G, {
      estimator: s.advantage_estimator,
      scale: s.scale_rewards,
      whiten: s.reinforce_pp_whitening,
      lengths: lossLengths,
    }),
    keep,
    rewardKl,
    ...(correction ? { isWeights: correction.weights, rolloutCorrection } : {}),
    ...(modelTokens ? { modelTokens } : {}),
  };
}

/** Appends one line per completion to the stage's samples.jsonl; `question` is the row's prompt before
 * the template (the samples browser shows it first). */
function writeSamples(file: string, step: number, x: ScoredGroups, e: Episodes, promptField: string): void {
  const lines = x.completions.map(
    (c, i) =>
      JSON.stringify({
        step: step + 1,
        prompt: x.texts[i],
        question: x.rows[i][promptField],
        completion: c.text,
        reward: x.scores.total[i],
        advantage: e.advantages[i],
        rewards: Object.fromEntries(Object.entries(x.scores.byFunction).map(([k, v]) => [k, v[i]])),
        finish_reason: c.finishReason,
        ...(c.trajectory
          ? {
              turns: c.trajectory.turns,
              model_tokens: modelTokenCount(c.tokens.length, c.trajectory.modelTokens),
              tool_tokens: c.tokens.length - modelTokenCount(c.tokens.length, c.trajectory.modelTokens),
            }
          : {}),
      }) + '\n',
  );
  appendFileSync(file, lines.join(''));
}

/** Mean, min and max of a list of lengths under TRL's names (`prefix` + mean_length, ...); none when empty. */
function lengthStats(xs: number[], mean_: string, min: string, max: string): Record<string, number> {
  return xs.length ? { [mean_]: mean(xs), [min]: Math.min(...xs), [max]: Math.max(...xs) } : {};
}

/** What TRL logs of a step's rollouts, under TRL's names: rewards and lengths of everything sampled
 * (what the policy does; with dynamic sampling also the groups it dropped). */
export function rolloutMetrics(st: Step, G: number): Record<string, number> {
  const { sampled: x, episodes: e } = st;
  const n = x.completions.length;
  const lengths = x.completions.map((c) => c.tokens.length);
  const terminated = x.completions.filter((c) => c.finishReason === 'stop').map((c) => c.tokens.length);
  const groups = n / G;
  const metrics: Record<string, number> = {
    reward: mean(x.scores.total),
    reward_std: std(x.scores.total),
    frac_reward_zero_std: groups ? (groups - differingGroups(x.scores.total, G).length) / groups : 0,
    ...lengthStats(lengths, 'completions/mean_length', 'completions/min_length', 'completions/max_length'),
    ...lengthStats(
      terminated,
      'completions/mean_terminated_length',
      'completions/min_terminated_length',
      'completions/max_terminated_length',
    ),
    'completions/clipped_ratio': n ? (n - terminated.length) / n : 0,
    'time/generate_s': st.seconds.generate,
    'time/score_s': st.seconds.score,
    reward_errors: st.sampled.scores.errors.length,
    ...e.rolloutCorrection,
  };
  Object.assign(metrics, toolMetrics(x.completions));
  for (const [k, v] of Object.entries(x.scores.stats)) {
    metrics[`rewards/${k}/mean`] = v.mean;
    metrics[`rewards/${k}/std`] = v.std;
  }
  // What the rewards counted while scoring (e.g. rewards/accuracy/timeout, rewards/accuracy/gold_unparsable).
  for (const [k, n] of Object.entries(x.scores.counts ?? {})) metrics[`rewards/${k}`] = n;
  // With the KL in the reward the loss has none: log the reward's (mean per token of the trained batch).
  if (e.rewardKl)
    metrics.kl =
      e.rewardKl.reduce((a, b) => a + b, 0) /
      Math.max(
        1,
        e.inputs.reduce((a, seq, i) => a + modelTokenCount(seq.length - e.promptLengths[i], e.modelTokens?.[i]), 0),
      );
  if (st.sampling.batches > 1 || st.sampling.sampledGroups !== st.sampling.keptGroups) {
    metrics['dynamic_sampling/batches'] = st.sampling.batches;
    metrics['dynamic_sampling/sampled_groups'] = st.sampling.sampledGroups;
    metrics['dynamic_sampling/kept_groups'] = st.sampling.keptGroups;
  }
  return metrics;
}

/** What the step's multi-turn rollouts did (none for single-turn): tool calls and errors per
 * trajectory, turns, the share of trajectories that called a tool, and the lengths in model tokens
 * and tool tokens apart (completions/mean_length counts both). */
export function toolMetrics(completions: readonly Completion[]): Record<string, number> {
  const trajectories = completions.filter((c) => c.trajectory).map((c) => c.trajectory!);
  if (!trajectories.length) return {};
  const calls = trajectories.map((t) => t.turns.filter((u) => u.call).length);
  const errors = trajectories.map((t) => t.turns.filter((u) => u.call?.error).length);
  const model = trajectories.map((t) => t.modelTokens.reduce((a, b) => a + b, 0));
  const tool = trajectories.map((t, i) => t.modelTokens.length - model[i]);
  return {
    'tools/calls_per_trajectory': mean(calls),
    'tools/errors': errors.reduce((a, b) => a + b, 0),
    'tools/errors_per_trajectory': mean(errors),
    'tools/turns': mean(trajectories.map((t) => t.turns.length)),
    'tools/used_share': calls.filter((n) => n > 0).length / calls.length,
    'completions/mean_model_tokens': mean(model),
    'completions/mean_tool_tokens': mean(tool),
  };
}

/** Sizes of `parts` nearly equal parts of n rows (the first ones one larger), none empty. */
export function splitRows(n: number, parts: number): number[] {
  const m = Math.min(parts, n);
  return Array.from({ length: m }, (_, k) => Math.floor(n / m) + (k < n % m ? 1 : 0));
}

/** The micro-batches of one update: the episodes split into gradient_accumulation_steps parts of
 * nearly equal rows, each row weighted by the loss type's normaliser over the WHOLE step (so the
 * update is the same however the rows are split, and a shard of unequal size weighs what it holds). */
export function episodeMicroBatches(e: Episodes, s: GrpoStage): MicroBatch[] {
  const sizes = splitRows(e.inputs.length, s.gradient_accumulation_steps);
  const micro = sizes.flatMap((n, k) => new Array<number>(n).fill(k));
  const lengths = e.inputs.map((seq, i) => seq.length - e.promptLengths[i]);
  // The normalisers count the model's tokens only (tool output is context, rl/tool-mask.ts).
  const kept = lengths.map((n, i) => modelTokenCount(n, e.modelTokens?.[i]) * e.keep[i]);
  const rowWeights = lossRowWeights(s.loss_type, { tokens: kept, microBatch: micro, maxCompletionLength: s.max_completion_length });
  const metricWeight =
    1 /
    Math.max(
      1,
      kept.reduce((a, b) => a + b, 0),
    );
  let from = 0;
  return sizes.map((n) => {
    const rows = Array.from({ length: n }, (_, j) => from + j);
    from += n;
    const pick = <T>(xs: readonly T[]) => rows.map((i) => xs[i]);
    const batch: GrpoBatch = {
      inputs: pick(e.inputs),
      promptLengths: pick(e.promptLengths),
      old: pick(e.old),
      ref: e.ref ? pick(e.ref) : null,
      advantages: pick(e.advantages),
      keep: pick(e.keep),
      rowWeights: pick(rowWeights),
      metricWeight,
      width: Math.max(1, ...pick(lengths)),
      temperature: s.temperature,
      ...(e.isWeights ? { isWeights: pick(e.isWeights) } : {}),
      ...(e.modelTokens ? { modelTokens: pick(e.modelTokens) } : {}),
      opts: {
        epsilon: s.epsilon,
        epsilonHigh: s.epsilon_high,
        beta: s.kl_in_reward ? 0 : s.beta,
        lossType: s.loss_type,
        delta: s.delta,
        klEstimator: s.kl_estimator,
        importanceSamplingLevel: s.importance_sampling_level,
        topEntropyQuantile: s.top_entropy_quantile,
        maxCompletionLength: s.max_completion_length,
      },
    };
    // The high-entropy threshold is a quantile over the whole micro-batch: its rows stay on one thread.
    return {
      kind: 'sharded',
      tokens: pick(kept).reduce((a, b) => a + b, 0),
      job: { module: GRPO_LOSS, data: batch, rows: n, split: s.top_entropy_quantile >= 1 },
    };
  });
}

/** ref <- alpha * policy + (1 - alpha) * ref (TR-DPO's soft update; alpha 1 is a hard copy). */
export function mixReference(ref: Transformer, policy: Transformer, alpha: number): void {
  if (alpha === 1) return ref.assignFrom(policy);
  for (const [name, p] of Object.entries(ref.params)) {
    tf.tidy(() => p.assign(tf.add(tf.mul(policy.params[name], alpha), tf.mul(p, 1 - alpha))));
  }
}

/** The metrics on a GRPO stage's progress line: reward, accuracy (when an accuracy reward runs), KL, length. */
function progressFields(s: GrpoStage): ProgressField[] {
  return [
    { key: 'reward', label: 'reward', digits: 3 },
    ...(s.rewards.some((r) => r.name === 'accuracy') ? [{ key: 'rewards/accuracy/mean', label: 'accuracy', digits: 3 }] : []),
    ...(s.beta > 0 ? [{ key: 'kl', label: 'kl', digits: 4 }] : []),
    { key: 'completions/mean_length', label: 'length', digits: 0 },
  ];
}

const REF_DIR = 'ref-model';

/** What a GRPO stage holds across its steps: the policy, the frozen reference, where completions
 * come from and what scores them, and how far through the prompts it is. */
type GrpoRun = {
  s: GrpoStage;
  rows: Row[];
  seed: number;
  gen: Generator;
  ref: Transformer | null;
  rewards: LoadedReward[];
  samplesFile: string;
  /** Rows per chunk of the reference's and the policy's log-prob passes (one micro-batch). */
  chunk: number;
  /** cluster.max_staleness k > 0: batches n+1..n+k generate while step n trains; else null. */
  ahead: Ahead<Rollout> | null;
  /** Prompt batches consumed so far (dynamic sampling takes more than one per step). */
  promptBatches: number;
  /** Optimiser steps between the policy that sampled the last batch taken and the one training on it. */
  staleness: number;
};

type Rollout = Awaited<ReturnType<typeof generateAndScore>>;

/** Prompt batch `batch`, sampled and scored. */
function rolloutOf(run: GrpoRun, batch: number, rng: Rng): Promise<Rollout> {
  return generateAndScore(promptGroups(run.rows, batch, run.s, run.gen.tok, run.seed), run.gen, run.rewards, run.s, rng);
}

/** Opens what the stage's steps share: policy and reference, the rollout source and its rewards
 * (the cluster's workers when a server is named, else rollout.engine here), and the look-ahead. */
async function openRun(ctx: StageContext, s: GrpoStage): Promise<GrpoRun> {
  const rows = await ctx.readDatasets();
  if (!rows.length) throw new UserError(`stage '${s.name}': the datasets are empty`);
  const tok = ctx.tokenizer;
  const policy = ctx.loadModel();
  const ctxLen = policy.config.max_position_embeddings;
  if (s.max_prompt_length + s.max_completion_length > ctxLen) {
    throw new UserError(
      `stage '${s.name}': max_prompt_length + max_completion_length (${s.max_prompt_length + s.max_completion_length}) exceeds the model's context ${ctxLen}`,
    );
  }
  const ref = s.beta > 0 ? policy.reference() : null;
  mkdirSync(ctx.stageDir, { recursive: true });
  const { rollouts, rewards } = await openRollouts(s, {
    recipe: ctx.recipe,
    stageDir: ctx.stageDir,
    tokenizer: tok,
    config: policy.config,
    backend: activeBackend(),
  });
  const run: GrpoRun = {
    s,
    rows,
    seed: ctx.recipe.seed,
    gen: { policy, tok, rollouts },
    ref,
    rewards,
    samplesFile: join(ctx.stageDir, 'samples.jsonl'),
    chunk: Math.ceil(s.per_device_train_batch_size / s.gradient_accumulation_steps),
    ahead: null,
    promptBatches: 0,
    staleness: 0,
  };
  // Each batch generated ahead has its own seed; a stale batch is corrected by truncated importance
  // sampling (correctStaleness). Dynamic sampling needs each batch's groups before the next: none.
  if (rollouts.staleness && rollouts.staleness.max > 0 && !s.dynamic_sampling) {
    run.ahead = new Ahead(rollouts.staleness.max, (b) => rolloutOf(run, b, new Rng(batchSeed(run.seed, b))), s.max_steps);
  }
  return run;
}

/** Step 1: TR-DPO's reference refresh, every ref_model_sync_steps. */
function refreshReference(run: GrpoRun, step: number): void {
  const { s, ref } = run;
  if (ref && s.sync_ref_model && step > 0 && step % s.ref_model_sync_steps === 0)
    mixReference(ref, run.gen.policy, s.ref_model_mixup_alpha);
}

/** Step 2: the step's scored groups: one prompt batch, or with dynamic sampling more batches until
 * P groups whose rewards differ are kept (at most max_batches). `sampled` is everything generated,
 * `kept` what trains. */
async function sampleGroups(run: GrpoRun, step: number, rng: Rng): Promise<Omit<Step, 'episodes'>> {
  const { s } = run,
    G = s.num_generations,
    P = s.per_device_train_batch_size / G;
  if (!s.dynamic_sampling) run.promptBatches = step; // one prompt batch per step: batch i is step i's
  const maxBatches = s.dynamic_sampling?.max_batches ?? 1;
  const parts: ScoredGroups[] = [];
  const seconds = { generate: 0, score: 0 };
  let keptGroups = 0,
    batches = 0;
  while (batches < maxBatches && keptGroups < P) {
    let r: Rollout;
    if (run.ahead) ({ value: r, staleness: run.staleness } = await run.ahead.take(run.promptBatches++, step));
    else r = await rolloutOf(run, run.promptBatches++, rng);
    batches++;
    seconds.generate += r.seconds.generate;
    seconds.score += r.seconds.score;
    parts.push(r);
    if (s.dynamic_sampling) keptGroups += differingGroups(r.scores.total, G).length;
    else keptGroups = P;
  }
  const sampled = joinGroups(parts);
  const kept = s.dynamic_sampling ? selectGroups(sampled, differingGroups(sampled.scores.total, G).slice(0, P), G) : sampled;
  return {
    sampled,
    kept,
    sampling: { batches, sampledGroups: sampled.completions.length / G, keptGroups: kept.completions.length / G },
    seconds,
  };
}

/** Step 4: episodes sampled by an older policy (cluster look-ahead) take the current policy's
 * log-probs as pi_old and truncated IS weights; their statistics, for the logs. */
function correctStaleness(run: GrpoRun, e: Episodes): Record<string, number> {
  if (!run.gen.rollouts.staleness) return {};
  const { policy } = run.gen;
  const stale =
    run.staleness > 0
      ? correctStale(
          e,
          referenceLogprobs(
            policy,
            e,
            e.old.map((o) => o.length),
            run.s.temperature,
            run.chunk,
          ),
          run.s.rollout.is_cap,
        )
      : null;
  return {
    staleness: run.staleness,
    ...(stale
      ? { 'staleness/is_weight_mean': stale.mean_weight, 'staleness/is_truncated_frac': stale.capped, 'staleness/kl': stale.kl }
      : {}),
  };
}

/** The rollout side of GRPO step `step`, handed to the trainer's updates:
 *   1 refreshReference -> 2 sampleGroups -> 3 createEpisodes (the hand-off: Episodes hold all the
 *   updates need) -> 4 correctStaleness -> 5 writeSamples and the step's metrics.
 * The updates (6) are the trainer's: episodeMicroBatches, num_iterations times. */
async function prepareStep(run: GrpoRun, step: number, rng: Rng): Promise<{ data: Step; metrics: Record<string, number> }> {
  const { s, gen } = run;
  refreshReference(run, step);
  const groups = await sampleGroups(run, step, rng);
  const episodes = createEpisodes(groups.kept, run.ref, s, run.chunk, gen.rollouts.samplesElsewhere ? gen.policy : null);
  const staleMetrics = correctStaleness(run, episodes);
  const st: Step = { ...groups, episodes };
  writeSamples(run.samplesFile, step, groups.kept, episodes, s.prompt_field);
  return { data: st, metrics: { ...rolloutMetrics(st, s.num_generations), ...gen.rollouts.takeMetrics(), ...staleMetrics } };
}

export async function runGrpo(ctx: StageContext, s: GrpoStage): Promise<StageResult> {
  const run = await openRun(ctx, s);
  const { policy, rollouts } = run.gen;
  const result = await trainLoop<Step>(
    { ...stageTrainOptions(ctx, s, policy, s.max_steps, s.train_workers), progressFields: progressFields(s) },
    {
      prepare: (step, rng) => prepareStep(run, step, rng),
      microBatches: (_step, _update, st) => (st.episodes.inputs.length ? episodeMicroBatches(st.episodes, s) : []),
      updatesPerStep: s.num_iterations,
      saveState: () => ({ promptBatches: run.promptBatches }),
      loadState: (state) => {
        const saved = (state as { promptBatches?: number } | undefined)?.promptBatches;
        if (typeof saved === 'number') run.promptBatches = saved;
      },
      // A refreshed reference is part of the run's state: a resumed run must see the one of its step.
      saveFiles: (dir) => {
        if (run.ref && s.sync_ref_model) saveModel(join(dir, REF_DIR), run.ref, {}, { dtype: 'F32' });
      },
      loadFiles: (dir) => {
        if (run.ref && s.sync_ref_model && existsSync(join(dir, REF_DIR))) {
          run.ref.dispose();
          run.ref = loadModel(join(dir, REF_DIR));
        }
      },
    },
  ).finally(() => rollouts.close());
  await closeRewards(run.rewards);
  policy.dispose();
  run.ref?.dispose();
  return { checkpoint: `${ctx.stageDir}/checkpoint`, summary: { final_loss: +result.finalLoss.toFixed(4), steps: result.steps } };
}
