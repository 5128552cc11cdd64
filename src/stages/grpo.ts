// GRPO (DeepSeekMath; DeepSeek-R1): for each prompt sample a group of G completions, score them with
// rule-based rewards, use the group-normalised reward as every token's advantage, and maximise the
// clipped surrogate with a k3 KL penalty to a frozen reference model, mu passes per batch.
import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../errors.ts';
import { applyTemplate } from '../data/chat.ts';
import { activeBackend } from '../engine/backend.ts';
import type { Rng } from '../engine/rng.ts';
import { RolloutPool, defaultWorkers } from '../rollout/pool.ts';
import { generate, type Completion } from '../model/generate.ts';
import { checkpointExists, loadModel, saveModel } from '../model/checkpoint.ts';
import type { Transformer } from '../model/transformer.ts';
import type { Row, StageContext, StageResult } from '../pipeline/context.ts';
import type { GrpoStage } from '../recipe/index.ts';
import { groupAdvantages } from '../rl/index.ts';
import { closeRewards, concatScores, loadRewards, scoreBatch, type ScoreResult } from '../../rewards/registry.ts';
import { trainLoop } from '../train/trainer.ts';
import { batchIndices, documentIds, trainThreads } from './batches.ts';
import { GRPO_LOSS, type GrpoBatch } from './grpo-batch.ts';
import { completionLogprobs, type PromptCompletions } from './logprobs.ts';

/** One step's rollouts, ready for the updates. */
type Rollouts = PromptCompletions & {
  completions: Completion[];
  /** The reference model's log-probs of each completion token (computed once per step). */
  ref: number[][] | null;
  advantages: number[];
  /** 1 where a completion counts in the loss (0: truncated and masked, or a dropped group). */
  keep: number[];
};

/** The frozen reference's log-probs of every completion token, in chunks of `chunk` rows. */
function referenceLogprobs(ref: Transformer, r: Rollouts, temperature: number, chunk: number): number[][] {
  const out: number[][] = [];
  for (let from = 0; from < r.inputs.length; from += chunk) {
    const rows = Array.from({ length: Math.min(chunk, r.inputs.length - from) }, (_, j) => from + j);
    const lp = completionLogprobs(ref, r, rows, temperature);
    const values = lp.arraySync();
    lp.dispose();
    rows.forEach((i, b) => out.push(values[b].slice(0, r.completions[i].tokens.length)));
  }
  return out;
}

export async function runGrpo(ctx: StageContext, s: GrpoStage): Promise<StageResult> {
  const rows = await ctx.readDatasets();
  if (!rows.length) throw new UserError(`stage '${s.name}': the datasets are empty`);
  const tok = ctx.tokenizer;
  const rewards = await loadRewards(s.rewards, ctx.recipe.recipeDir, { sandbox: ctx.recipe.sandbox });
  const G = s.num_generations, B = s.per_device_train_batch_size, P = B / G;
  const policy = ctx.loadModel();
  const ctxLen = policy.config.max_position_embeddings;
  if (s.max_prompt_length + s.max_completion_length > ctxLen) {
    throw new UserError(`stage '${s.name}': max_prompt_length + max_completion_length (${s.max_prompt_length + s.max_completion_length}) exceeds the model's context ${ctxLen}`);
  }
  let ref: Transformer | null = s.beta > 0 ? policy.clone() : null;
  const samplesFile = join(ctx.stageDir, 'samples.jsonl');
  mkdirSync(ctx.stageDir, { recursive: true });
  const refDir = join(ctx.stageDir, 'ref-model');
  if (ref && s.sync_ref_model && checkpointExists(refDir)) {
    // Resuming after a reference refresh: the saved reference, not the starting weights.
    ref.dispose();
    ref = loadModel(refDir);
  }
  const workers = defaultWorkers(s.rollout_workers);
  const pool = workers > 0 ? new RolloutPool(workers, policy.config, tok, activeBackend()) : null;
  let rollouts: Rollouts | null = null;
  const accum = s.gradient_accumulation_steps;

  const prepare = async (step: number, rng: Rng) => {
    const t0 = performance.now();
    if (ref && s.sync_ref_model && step > 0 && step % s.ref_model_sync_steps === 0) {
      ref.assignFrom(policy);
      saveModel(refDir, ref, {}, { dtype: 'F32' }); // exact: a resumed run must see the same reference
    }
    const picked = batchIndices(step, P, rows.length, ctx.recipe.seed).map((i) => rows[i]);
    const promptTexts: string[] = [], promptIds: number[][] = [], groupRows: Row[] = [];
    for (const row of picked) {
      const p = row[s.prompt_field];
      if (typeof p !== 'string') throw new UserError(`stage '${s.name}': a row has no string field '${s.prompt_field}'`);
      const text = applyTemplate(s.template, p, tok.chatTemplate);
      const ids = documentIds(tok, text).slice(-s.max_prompt_length);
      for (let g = 0; g < G; g++) {
        promptTexts.push(text);
        promptIds.push(ids);
        groupRows.push(row);
      }
    }
    const sampling = { maxNewTokens: s.max_completion_length, temperature: s.temperature, topP: s.top_p, topK: s.top_k, stopTokens: [...tok.eosIds], stopStrings: s.stop };
    // Each worker's completions are scored as they arrive (code rewards run in the sandbox's own
    // threads), so scoring overlaps the generation still under way; time/score_s is what is left after.
    const parts: Promise<ScoreResult>[] = [];
    const score = (offset: number, cs: Completion[]) => {
      const at = <T>(xs: T[]) => xs.slice(offset, offset + cs.length);
      const part = scoreBatch(rewards, { prompts: at(promptTexts), completions: cs.map((c) => c.text), rows: at(groupRows) }, { onError: s.reward_error });
      part.catch(() => {}); // awaited below; until then a failure must not count as unhandled
      parts[offset] = part;
    };
    let completions: Completion[];
    if (pool) {
      pool.sync(policy);
      completions = await pool.generate(promptIds, sampling, rng, G, score);
    } else {
      completions = generate(policy, tok, promptIds, { ...sampling, rng });
      score(0, completions);
    }
    const t1 = performance.now();
    const texts = completions.map((c) => c.text);
    const scored = concatScores(await Promise.all(parts.filter(Boolean)));
    const t2 = performance.now();
    const advantages = groupAdvantages(scored.total, G, { scale: s.scale_rewards });
    const keep = completions.map((c, i) => {
      if (s.mask_truncated_completions && c.finishReason === 'length') return 0;
      if (s.drop_equal_reward_groups) {
        const g0 = Math.floor(i / G) * G;
        const group = scored.total.slice(g0, g0 + G);
        if (group.every((x) => x === group[0])) return 0;
      }
      return c.tokens.length > 0 ? 1 : 0;
    });
    rollouts = { inputs: promptIds.map((p, i) => [...p, ...completions[i].tokens]), promptLengths: promptIds.map((p) => p.length), completions, advantages, keep, ref: null };
    if (ref) rollouts.ref = referenceLogprobs(ref, rollouts, s.temperature, Math.ceil(B / accum));
    for (let i = 0; i < texts.length; i++) {
      appendFileSync(samplesFile, JSON.stringify({
        step: step + 1, prompt: promptTexts[i], completion: texts[i], reward: scored.total[i], advantage: advantages[i],
        rewards: Object.fromEntries(Object.entries(scored.byFunction).map(([k, v]) => [k, v[i]])), finish_reason: completions[i].finishReason,
      }) + '\n');
    }
    const lengths = completions.map((c) => c.tokens.length);
    const tokens = lengths.reduce((a, b) => a + b, 0);
    const metrics: Record<string, number> = {
      reward: mean(scored.total), reward_std: std(scored.total),
      'completions/mean_length': tokens / lengths.length, 'completions/min_length': Math.min(...lengths), 'completions/max_length': Math.max(...lengths),
      'completions/clipped_ratio': completions.filter((c) => c.finishReason === 'length').length / completions.length,
      // Monte-Carlo estimate of the policy's per-token entropy: the mean surprise of its own samples.
      entropy: -completions.reduce((a, c) => a + c.logprobs.reduce((x, y) => x + y, 0), 0) / Math.max(1, tokens),
      'time/generate_s': (t1 - t0) / 1000, 'time/score_s': (t2 - t1) / 1000,
      reward_errors: scored.errors.length,
    };
    for (const [k, v] of Object.entries(scored.stats)) {
      metrics[`rewards/${k}/mean`] = v.mean;
      metrics[`rewards/${k}/std`] = v.std;
    }
    return metrics;
  };

  const microBatch = (_step: number, micro: number) => {
    const r = rollouts!;
    const m = micro % accum;
    const per = Math.ceil(B / accum);
    const rowsOf = Array.from({ length: Math.min(per, B - m * per) }, (_, j) => m * per + j);
    const batch: GrpoBatch = {
      inputs: rowsOf.map((i) => r.inputs[i]), promptLengths: rowsOf.map((i) => r.promptLengths[i]),
      old: rowsOf.map((i) => r.completions[i].logprobs), ref: r.ref ? rowsOf.map((i) => r.ref![i]) : null,
      advantages: rowsOf.map((i) => r.advantages[i]), keep: rowsOf.map((i) => r.keep[i]),
      width: Math.max(1, ...rowsOf.map((i) => r.completions[i].tokens.length)), temperature: s.temperature,
      opts: { epsilon: s.epsilon, epsilonHigh: s.epsilon_high, beta: s.beta, lossType: s.loss_type },
    };
    const tokens = rowsOf.reduce((a, i) => a + r.completions[i].tokens.length * r.keep[i], 0);
    return { tokens, job: { module: GRPO_LOSS, data: batch, rows: rowsOf.length } };
  };

  const result = await trainLoop(
    { stage: s.name, stageDir: ctx.stageDir, model: policy, config: s, totalSteps: s.max_steps, seed: ctx.recipe.seed, hash: ctx.hash,
      special: { bos: tok.bosId, eos: tok.eosId, pad: tok.padId }, onCheckpoint: (dir) => tok.save(dir), progressStream: ctx.progressStream,
      threads: trainThreads(s.train_workers), backend: activeBackend() },
    {
      prepare, microBatch, updatesPerStep: s.num_iterations,
    },
  );
  await pool?.close();
  await closeRewards(rewards);
  policy.dispose();
  ref?.dispose();
  return { checkpoint: `${ctx.stageDir}/checkpoint`, summary: { final_loss: +result.finalLoss.toFixed(4), steps: result.steps } };
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const std = (xs: number[]) => {
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / Math.max(1, xs.length - 1));
};
