// Evaluation: n samples per prompt (num_generations), scored by the recipe's rewards. Reports pass@1
// averaged over the n samples (accuracy), maj@n (is the most common answer right, answers that verify
// as equal being one vote), pass@k for k > 1 (the unbiased estimator of Chen et al. 2021), the format
// rate, language consistency of the chain of thought, the mean completion length, and pass@1 per task
// and per language. Rows without a reference answer are left out of pass@1, maj@n and pass@k (and
// counted as no_reference); the format rate, language consistency and length cover every row.
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../errors.ts';
import { writeJsonl } from '../data/io.ts';
import type { Completion } from '../model/generate.ts';
import type { ToolsConfig } from '../rollout/multi-turn.ts';
import type { Transformer } from '../model/transformer.ts';
import type { Tokenizer } from '../model/tokenizer.ts';
import { MetricsLogger } from '../metrics/logger.ts';
import type { Row, StageContext, StageResult } from './context.ts';
import type { EvalStage } from '../recipe/index.ts';
import { encodePrompts, type PromptSource } from './prompts.ts';
import { promptTools, rewardTurns, sampleCompletions, trajectoryFields } from './sample.ts';
import { toolMetrics } from './grpo.ts';
import { accuracy as accuracyReward, extractAnswer, answersMatch } from '../../rewards/accuracy.ts';
import { answersEqual, parseAnswer } from '../../rewards/answer.ts';
import { rowLanguage, thoughtLanguageShare } from '../../rewards/language.ts';
import { closeRewards, loadRewards, scoreBatch } from '../../rewards/registry.ts';

// Eval reads the row's language the way the language reward does.
export { rowLanguage };

export type EvalOptions = {
  k: number;
  maxNewTokens: number;
  temperature: number;
  topP: number;
  topK: number;
  stop: string[];
  template: string;
  promptField: string;
  rewards: { name: string; weight: number; options: Record<string, unknown> }[];
  seed: number;
  baseDir: string;
  /** pass@k values to report besides pass@1 (each 2 <= k <= this.k); default [k] when k >= 2. */
  passK?: number[];
  /** The recipe's sandbox section (code rewards). */
  sandbox?: { isolation: 'strict' | 'standard' | 'process'; reuse?: string };
  /** Name used in error messages. */
  stage: string;
  /** Where the rows come from and which flags set the prompt field, when a command (not a stage) evaluates. */
  source?: PromptSource;
  /** The stage's tools: each sample is a multi-turn trajectory (rollout/multi-turn.ts, as GRPO's), its
   * answer read from the whole trajectory; null or unset: single-turn. */
  tools?: ToolsConfig | null;
};

type PassAt1 = { prompts: number; 'pass@1': number };

/** pass@1, maj@k (keyed `maj@<k>`, k = samples per prompt), pass@k for the asked k > 1 (keyed `pass@<k>`),
 * no_reference, format_rate, language_consistency, mean_length, per-reward means, and pass@1 per task and
 * per language. pass@1, maj@k and pass@k are over the rows with a reference (prompts - no_reference);
 * null when no row has one. */
export type EvalReport = {
  /** Rows evaluated, with or without a reference. */
  prompts: number;
  /** Samples per prompt (num_generations). */
  k: number;
  /** Rows left out of pass@1, maj@k and pass@k: the accuracy reward found no reference answer for them. */
  no_reference: number;
  'pass@1': number | null;
  [passAtK: `pass@${number}`]: number | null;
  [majAtK: `maj@${number}`]: number | null;
  format_rate: number;
  /** Mean share of the chain of thought in the row's language, over completions where it is defined; null if none is. */
  language_consistency: number | null;
  mean_length: number;
  rewards: Record<string, number>;
  by_task: Record<string, PassAt1>;
  by_language: Record<string, PassAt1>;
  /** With tools: what the trajectories did (GRPO's tools/ metrics: calls_per_trajectory, used_share, ...). */
  tools?: Record<string, number>;
};

/** What the summary needs per completion, k consecutive completions per row. */
export type EvalSamples = {
  rows: Row[];
  k: number;
  /** The prompt text each completion continued (after the template). */
  prompts: string[];
  completions: string[];
  /** Completion lengths in tokens. */
  lengths: number[];
  /** Per-reward scores per completion (null: does not apply). Correctness is `accuracy`; without it, the
   * built-in accuracy reward with its default options scores the completions here. */
  byFunction: Record<string, (number | null)[]>;
  /** Mean of each reward over the completions. */
  rewardMeans: Record<string, number>;
  /** pass@k values to report besides pass@1; default [k] when k >= 2. */
  passK?: number[];
};

/** Mean language share over the completions where it is defined (completion i answers rows[i]); null if none. */
export function languageConsistency(prompts: string[], completions: string[], rows: Row[]): number | null {
  let sum = 0,
    n = 0;
  for (let i = 0; i < completions.length; i++) {
    const share = thoughtLanguageShare(prompts[i], completions[i], rowLanguage(rows[i]));
    if (share !== null) {
      sum += share;
      n++;
    }
  }
  return n === 0 ? null : sum / n;
}

/** Whether two extracted answers verify as equal, the way the accuracy reward compares an answer with a
 * reference (rewards/answer.ts: 0.5, 1/2 and \frac{1}{2} are equal), in either direction. */
export function sameAnswer(a: string, b: string): boolean {
  if (a === b) return true;
  try {
    const pa = parseAnswer(a),
      pb = parseAnswer(b);
    return answersEqual(pa, pb) || answersEqual(pb, pa);
  } catch {
    return false; // a parser bug on hostile text must not stop the eval: the two stay apart
  }
}

/** One vote of maj@k: the answer (its first spelling), the samples that gave it, and whether the
 * accuracy reward scored one of them 1 (null when it scored none of them). */
export type Vote = { answer: string; samples: number[]; right: boolean | null };

/** maj@k's vote among the k answers of one prompt (null: no answer). Answers are grouped by value:
 * identical strings are one group; then each group joins the first earlier one whose first answer
 * verifies as equal to its own (sameAnswer) and that the accuracy reward judged alike (both with a
 * sample scored 1, or both without; a Countdown expression that makes the target with the wrong numbers
 * stays apart from a right one of the same value). The biggest group wins; a tie goes to the group
 * whose first answer came first among the samples. Null when no sample has an answer. */
export function majorityVote(answers: (string | null)[], accuracy: (number | null)[] | null = null): Vote | null {
  const scored = accuracy !== null && accuracy.some((v) => v !== null && v !== undefined);
  const bySpelling = new Map<string, Vote>();
  answers.forEach((a, i) => {
    if (a === null) return;
    const v = bySpelling.get(a) ?? { answer: a, samples: [], right: scored ? false : null };
    v.samples.push(i);
    if (scored && accuracy[i] === 1) v.right = true;
    bySpelling.set(a, v);
  });
  const groups: Vote[] = [];
  for (const v of bySpelling.values()) {
    const g = groups.find((x) => x.right === v.right && sameAnswer(x.answer, v.answer));
    if (g) g.samples.push(...v.samples);
    else groups.push({ ...v, samples: [...v.samples] });
  }
  // Groups are in the order of their first sample; a stable sort keeps that order among ties.
  return groups.sort((a, b) => b.samples.length - a.samples.length)[0] ?? null;
}

/** maj@k for one prompt: is the majority answer (majorityVote over the completions' final answers) right?
 * When the accuracy reward scored the samples, right means a sample with that answer got accuracy 1
 * (the reward knows the row's reference field and tasks like Countdown with many right answers); when
 * it did not, the majority answer is compared with the reference. */
export function majorityCorrect(completions: string[], accuracy: (number | null)[] | null, reference: unknown): boolean {
  const vote = majorityVote(
    completions.map((c) => extractAnswer(c)),
    accuracy,
  );
  if (vote === null) return false;
  if (vote.right !== null) return vote.right;
  return reference !== undefined && reference !== null && answersMatch(vote.answer, String(reference));
}

/** The unbiased pass@k estimator of Chen et al. 2021 (the Codex paper) for one prompt with n samples of
 * which c are right: 1 - C(n-c, k) / C(n, k), the chance that k of the n samples drawn without
 * replacement include a right one; computed as 1 - prod_{i=n-c+1}^{n} (1 - k/i), which does not
 * overflow. k = 1 gives c/n. Throws a RangeError when k > n (no k distinct samples to draw). */
export function passAtK(n: number, c: number, k: number): number {
  if (!Number.isInteger(n) || !Number.isInteger(c) || !Number.isInteger(k) || k < 1 || c < 0 || c > n) {
    throw new RangeError(`pass@k needs integers 0 <= c <= n and k >= 1; got n ${n}, c ${c}, k ${k}`);
  }
  if (k > n) throw new RangeError(`pass@${k} needs at least ${k} samples per prompt, got ${n}`);
  if (n - c < k) return 1;
  let allWrong = 1;
  for (let i = n - c + 1; i <= n; i++) allWrong *= 1 - k / i;
  return 1 - allWrong;
}

/** The pass@k values to report: the asked k > 1 (default [n] when n >= 2), each at most n. */
function passKs(n: number, asked: number[] | undefined): number[] {
  const ks = [...new Set(asked ?? (n >= 2 ? [n] : []))].filter((k) => k !== 1).sort((a, b) => a - b);
  for (const k of ks) {
    if (!Number.isInteger(k) || k < 1) throw new UserError(`pass@${k}: k must be a positive integer`);
    if (k > n)
      throw new UserError(
        `pass@${k} needs at least ${k} samples per prompt, but num_generations is ${n}: raise num_generations or drop ${k} from pass_at_k`,
      );
  }
  return ks;
}

/** Scores of the built-in accuracy reward (default options) per completion, for an eval without one. */
function defaultAccuracy(s: EvalSamples): (number | null)[] {
  const rows = s.completions.map((_, i) => s.rows[Math.floor(i / s.k)]);
  const scores = accuracyReward.make(accuracyReward.defaults)({ prompts: s.prompts, completions: s.completions, rows });
  if (!Array.isArray(scores)) throw new Error('the built-in accuracy reward is synchronous');
  return scores;
}

/** The eval report from scored samples. Pure: no generation, no I/O. A row has no reference when the
 * accuracy reward scored none of its samples (null: it found no reference answer, e.g. a chat row). */
export function summarizeEval(s: EvalSamples): EvalReport {
  const { rows, k } = s;
  const ks = passKs(k, s.passK);
  const acc = s.byFunction.accuracy ?? defaultAccuracy(s);
  const fmt = s.byFunction.format ?? null;
  let pass = 0,
    maj = 0,
    format = 0,
    length = 0,
    noReference = 0;
  const passK = ks.map(() => 0);
  const byTask: Record<string, { prompts: number; correct: number }> = {};
  const byLanguage: Record<string, { prompts: number; correct: number }> = {};
  const perCompletionRows: Row[] = [];
  for (let r = 0; r < rows.length; r++) {
    const group = Array.from({ length: k }, (_, j) => r * k + j);
    for (const i of group) {
      format += fmt ? Number(fmt[i] ?? 0) : 0;
      length += s.lengths[i];
      perCompletionRows.push(rows[r]);
    }
    const scores = group.map((i) => acc[i] ?? null);
    if (scores.every((v) => v === null)) {
      noReference++;
      continue;
    }
    const correct = scores.reduce<number>((a, v) => a + Number(v ?? 0), 0) / k;
    pass += correct;
    if (
      majorityCorrect(
        group.map((i) => s.completions[i]),
        scores,
        rows[r].answer ?? rows[r].solution,
      )
    )
      maj++;
    const c = scores.filter((v) => v === 1).length;
    ks.forEach((kk, j) => (passK[j] += passAtK(k, c, kk)));
    const task = typeof rows[r].task === 'string' ? (rows[r].task as string) : 'all';
    for (const [table, key] of [
      [byTask, task],
      [byLanguage, rowLanguage(rows[r])],
    ] as const) {
      table[key] ??= { prompts: 0, correct: 0 };
      table[key].prompts++;
      table[key].correct += correct;
    }
  }
  const n = rows.length,
    total = n * k,
    scoredRows = n - noReference;
  const rate = (x: number) => (scoredRows === 0 ? null : x / scoredRows);
  const passAt1 = (t: Record<string, { prompts: number; correct: number }>) =>
    Object.fromEntries(Object.entries(t).map(([key, v]) => [key, { prompts: v.prompts, 'pass@1': v.correct / v.prompts }]));
  const majAtK: Record<`maj@${number}`, number | null> = { [`maj@${k}`]: rate(maj) };
  const passAtKs: Record<`pass@${number}`, number | null> = Object.fromEntries(ks.map((kk, j) => [`pass@${kk}`, rate(passK[j])]));
  return {
    prompts: n,
    k,
    no_reference: noReference,
    'pass@1': rate(pass),
    ...majAtK,
    ...passAtKs,
    format_rate: format / total,
    language_consistency: languageConsistency(s.prompts, s.completions, perCompletionRows),
    mean_length: length / total,
    rewards: s.rewardMeans,
    by_task: passAt1(byTask),
    by_language: passAt1(byLanguage),
  };
}

/** Samples k completions per row and scores them (pass@k values are checked before any generation). Returns the report and one sample row per completion. */
export async function evaluate(
  model: Transformer,
  tok: Tokenizer,
  rows: Row[],
  o: EvalOptions,
): Promise<{ report: EvalReport; samples: Row[]; counts: Record<string, number> }> {
  passKs(o.k, o.passK); // a k above the samples per prompt fails here, before any work
  const rewards = await loadRewards(o.rewards, o.baseDir, { sandbox: o.sandbox });
  const encoded = encodePrompts(
    rows,
    { name: o.stage, template: o.template, prompt_field: o.promptField, source: o.source },
    tok,
    { context: model.config.max_position_embeddings, newTokens: o.maxNewTokens, newTokensField: 'max_new_tokens' },
    promptTools(o.tools),
  );
  const prompts: string[] = [],
    ids: number[][] = [],
    srcRows: Row[] = [];
  for (const e of encoded) {
    for (let j = 0; j < o.k; j++) {
      prompts.push(e.text);
      ids.push(e.ids);
      srcRows.push(e.row);
    }
  }
  let completions: Completion[];
  try {
    completions = await sampleCompletions(
      model,
      tok,
      ids,
      {
        maxNewTokens: o.maxNewTokens,
        temperature: o.temperature,
        topP: o.topP,
        topK: o.topK,
        stopTokens: [...tok.eosIds],
        stopStrings: o.stop,
      },
      o.seed,
      o.tools,
      { sandbox: { isolation: o.sandbox?.isolation ?? 'standard' }, recipeDir: o.baseDir },
    );
  } catch (e) {
    await closeRewards(rewards);
    throw e;
  }
  const texts = completions.map((c) => c.text);
  // Rewards see the turns as GRPO's do (the RewardBatch's `turns`); the answer is the trajectory's last.
  const scored = await scoreBatch(
    rewards,
    { prompts, completions: texts, rows: srcRows, ...rewardTurns(completions, o.tools) },
    { onError: 'zero' },
  );
  await closeRewards(rewards);
  const summary = summarizeEval({
    rows,
    k: o.k,
    prompts,
    completions: texts,
    lengths: completions.map((c) => c.tokens.length),
    byFunction: scored.byFunction,
    rewardMeans: Object.fromEntries(Object.entries(scored.stats).map(([k, v]) => [k, v.mean])),
    passK: o.passK,
  });
  const report: EvalReport = o.tools ? { ...summary, tools: toolMetrics(completions) } : summary;
  // step: the eval's one logged step (its metrics.jsonl row); question: the row's prompt before the
  // template, which the samples browser shows first.
  const samples = texts.map((completion, i) => ({
    step: 1,
    prompt: prompts[i],
    question: srcRows[i][o.promptField],
    completion,
    answer: srcRows[i].answer ?? null,
    reward: scored.total[i],
    rewards: Object.fromEntries(Object.entries(scored.byFunction).map(([k, v]) => [k, v[i]])),
    finish_reason: completions[i].finishReason,
    ...trajectoryFields(completions[i]),
  }));
  // What the rewards counted while scoring (accuracy/timeout, accuracy/gold_unparsable, ...).
  return { report, samples, counts: scored.counts ?? {} };
}

export async function runEval(ctx: StageContext, s: EvalStage): Promise<StageResult> {
  // Opened first, so the row it logs at the end says how long the whole eval took (elapsed_s).
  const logger = new MetricsLogger(join(ctx.stageDir, 'metrics.jsonl'));
  try {
    const rows = await ctx.readDatasets();
    if (!rows.length) throw new UserError(`stage '${s.name}': the datasets are empty`);
    const model = ctx.loadModel();
    const { report, samples, counts } = await evaluate(model, ctx.tokenizer, rows, {
      k: s.num_generations,
      maxNewTokens: s.max_new_tokens,
      temperature: s.temperature,
      topP: s.top_p,
      topK: s.top_k,
      stop: s.stop,
      template: s.template,
      promptField: s.prompt_field,
      rewards: s.rewards,
      seed: ctx.recipe.seed,
      baseDir: ctx.recipe.recipeDir,
      stage: s.name,
      sandbox: ctx.recipe.sandbox,
      passK: s.pass_at_k,
      tools: s.tools,
    });
    model.dispose();
    mkdirSync(ctx.stageDir, { recursive: true });
    // The label names this eval's row in the README results table (`r1 report --results`).
    writeFileSync(
      join(ctx.stageDir, 'eval.json'),
      JSON.stringify({ label: s.label, ...report, ...(Object.keys(counts).length ? { reward_counts: counts } : {}) }, null, 2) + '\n',
    );
    writeJsonl(join(ctx.stageDir, 'samples.jsonl'), samples);
    const flat: Record<string, number> = {};
    for (const [k, v] of Object.entries(report)) if (typeof v === 'number') flat[k] = v;
    for (const [k, v] of Object.entries(report.rewards)) flat[`rewards/${k}/mean`] = v;
    for (const [k, v] of Object.entries(report.tools ?? {})) flat[k] = v; // already named tools/..., completions/...
    for (const [k, n] of Object.entries(counts)) flat[`rewards/${k}`] = n;
    logger.log({ step: 1, ...flat });
    return { summary: flat };
  } finally {
    logger.close();
  }
}
