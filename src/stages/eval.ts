// Evaluation: k samples per prompt, scored by the recipe's rewards. Reports pass@1 averaged over
// the k samples (accuracy), maj@k (is the most common extracted answer right), the format rate,
// language consistency of the chain of thought, the mean completion length, and pass@1 per task
// and per language.
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../errors.ts';
import { writeJsonl } from '../data/io.ts';
import { Rng } from '../engine/rng.ts';
import { generate } from '../model/generate.ts';
import type { Transformer } from '../model/transformer.ts';
import type { Tokenizer } from '../model/tokenizer.ts';
import { MetricsLogger } from '../metrics/logger.ts';
import type { Row, StageContext, StageResult } from '../pipeline/context.ts';
import type { EvalStage } from '../recipe/index.ts';
import { encodePrompts } from './prompts.ts';
import { extractAnswer, answersMatch } from '../../rewards/accuracy.ts';
import { rowLanguage, thoughtLanguageShare } from '../../rewards/language.ts';
import { closeRewards, loadRewards, scoreBatch } from '../../rewards/registry.ts';

// Eval reads the row's language the way the language reward does.
export { rowLanguage };

export type EvalOptions = {
  k: number; maxNewTokens: number; temperature: number; topP: number; topK: number; stop: string[];
  template: string; promptField: string; rewards: { name: string; weight: number; options: Record<string, unknown> }[];
  seed: number; baseDir: string;
  /** The recipe's sandbox section (code rewards). */
  sandbox?: { isolation: string };
  /** Name used in error messages. */
  stage: string;
};

type PassAt1 = { prompts: number; 'pass@1': number };

/** pass@1, maj@k (keyed `maj@<k>`), format_rate, language_consistency, mean_length, per-reward means,
 * and pass@1 per task and per language. */
export type EvalReport = {
  prompts: number;
  k: number;
  'pass@1': number;
  [majAtK: `maj@${number}`]: number;
  format_rate: number;
  /** Mean share of the chain of thought in the row's language, over completions where it is defined; null if none is. */
  language_consistency: number | null;
  mean_length: number;
  rewards: Record<string, number>;
  by_task: Record<string, PassAt1>;
  by_language: Record<string, PassAt1>;
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
  /** Per-reward scores per completion (null: does not apply). */
  byFunction: Record<string, (number | null)[]>;
  /** Mean of each reward over the completions. */
  rewardMeans: Record<string, number>;
};

/** Mean language share over the completions where it is defined (completion i answers rows[i]); null if none. */
export function languageConsistency(prompts: string[], completions: string[], rows: Row[]): number | null {
  let sum = 0, n = 0;
  for (let i = 0; i < completions.length; i++) {
    const share = thoughtLanguageShare(prompts[i], completions[i], rowLanguage(rows[i]));
    if (share !== null) {
      sum += share;
      n++;
    }
  }
  return n === 0 ? null : sum / n;
}

/** maj@k for one prompt: is the most frequent extracted answer right? Right when some sample with that
 * answer got accuracy 1, since tasks like Countdown have many right answers that the reference cannot
 * list; only when no sample has an accuracy score is the answer compared with the reference. */
export function majorityCorrect(completions: string[], accuracy: (number | null)[] | null, reference: unknown): boolean {
  const counts = new Map<string, number>();
  const answers = completions.map((c) => extractAnswer(c));
  for (const a of answers) if (a !== null) counts.set(a, (counts.get(a) ?? 0) + 1);
  // Ties go to the answer seen first (Map keeps insertion order, the sort is stable).
  const top = [...counts.entries()].sort((a, b) => b[1] - a[1])[0]?.[0];
  if (top === undefined) return false;
  if (accuracy && accuracy.some((v) => v !== null && v !== undefined)) return answers.some((a, i) => a === top && accuracy[i] === 1);
  return reference !== undefined && reference !== null && answersMatch(top, String(reference));
}

/** The eval report from scored samples. Pure: no generation, no I/O. */
export function summarizeEval(s: EvalSamples): EvalReport {
  const { rows, k } = s;
  const acc = s.byFunction.accuracy ?? null;
  const fmt = s.byFunction.format ?? null;
  let pass = 0, maj = 0, format = 0, length = 0;
  const byTask: Record<string, { prompts: number; correct: number }> = {};
  const byLanguage: Record<string, { prompts: number; correct: number }> = {};
  const perCompletionRows: Row[] = [];
  for (let r = 0; r < rows.length; r++) {
    const group = Array.from({ length: k }, (_, j) => r * k + j);
    const correct = group.reduce((a, i) => a + (acc ? Number(acc[i] ?? 0) : 0), 0) / k;
    pass += correct;
    if (majorityCorrect(group.map((i) => s.completions[i]), acc && group.map((i) => acc[i]), rows[r].answer ?? rows[r].solution)) maj++;
    const task = typeof rows[r].task === 'string' ? (rows[r].task as string) : 'all';
    for (const [table, key] of [[byTask, task], [byLanguage, rowLanguage(rows[r])]] as const) {
      table[key] ??= { prompts: 0, correct: 0 };
      table[key].prompts++;
      table[key].correct += correct;
    }
    for (const i of group) {
      format += fmt ? Number(fmt[i] ?? 0) : 0;
      length += s.lengths[i];
      perCompletionRows.push(rows[r]);
    }
  }
  const n = rows.length, total = n * k;
  const passAt1 = (t: Record<string, { prompts: number; correct: number }>) =>
    Object.fromEntries(Object.entries(t).map(([key, v]) => [key, { prompts: v.prompts, 'pass@1': v.correct / v.prompts }]));
  const majAtK: Record<`maj@${number}`, number> = { [`maj@${k}`]: maj / n };
  return {
    prompts: n, k, 'pass@1': pass / n, ...majAtK, format_rate: format / total,
    language_consistency: languageConsistency(s.prompts, s.completions, perCompletionRows),
    mean_length: length / total,
    rewards: s.rewardMeans,
    by_task: passAt1(byTask),
    by_language: passAt1(byLanguage),
  };
}

/** Samples k completions per row and scores them. Returns the report and one sample row per completion. */
export async function evaluate(model: Transformer, tok: Tokenizer, rows: Row[], o: EvalOptions): Promise<{ report: EvalReport; samples: Row[] }> {
  const rewards = await loadRewards(o.rewards, o.baseDir, { sandbox: o.sandbox });
  const encoded = encodePrompts(rows, { name: o.stage, template: o.template, prompt_field: o.promptField }, tok,
    { context: model.config.max_position_embeddings, newTokens: o.maxNewTokens, newTokensField: 'max_new_tokens' });
  const prompts: string[] = [], ids: number[][] = [], srcRows: Row[] = [];
  for (const e of encoded) {
    for (let j = 0; j < o.k; j++) {
      prompts.push(e.text);
      ids.push(e.ids);
      srcRows.push(e.row);
    }
  }
  const completions = generate(model, tok, ids, {
    maxNewTokens: o.maxNewTokens, temperature: o.temperature, topP: o.topP, topK: o.topK,
    stopTokens: [...tok.eosIds], stopStrings: o.stop, rng: new Rng(o.seed),
  });
  const texts = completions.map((c) => c.text);
  const scored = await scoreBatch(rewards, { prompts, completions: texts, rows: srcRows }, { onError: 'zero' });
  await closeRewards(rewards);
  const report = summarizeEval({
    rows, k: o.k, prompts, completions: texts, lengths: completions.map((c) => c.tokens.length),
    byFunction: scored.byFunction, rewardMeans: Object.fromEntries(Object.entries(scored.stats).map(([k, v]) => [k, v.mean])),
  });
  const samples = texts.map((completion, i) => ({
    prompt: prompts[i], completion, answer: srcRows[i].answer ?? null, reward: scored.total[i],
    rewards: Object.fromEntries(Object.entries(scored.byFunction).map(([k, v]) => [k, v[i]])),
  }));
  return { report, samples };
}

export async function runEval(ctx: StageContext, s: EvalStage): Promise<StageResult> {
  const rows = await ctx.readDatasets();
  if (!rows.length) throw new UserError(`stage '${s.name}': the datasets are empty`);
  const model = ctx.loadModel();
  const { report, samples } = await evaluate(model, ctx.tokenizer, rows, {
    k: s.num_generations, maxNewTokens: s.max_new_tokens, temperature: s.temperature, topP: s.top_p, topK: s.top_k, stop: s.stop,
    template: s.template, promptField: s.prompt_field, rewards: s.rewards, seed: ctx.recipe.seed, baseDir: ctx.recipe.recipeDir, stage: s.name,
    sandbox: ctx.recipe.sandbox,
  });
  model.dispose();
  mkdirSync(ctx.stageDir, { recursive: true });
  // The label names this eval's row in the README results table (`r1 report --results`).
  writeFileSync(join(ctx.stageDir, 'eval.json'), JSON.stringify({ label: s.label, ...report }, null, 2) + '\n');
  writeJsonl(join(ctx.stageDir, 'samples.jsonl'), samples);
  const logger = new MetricsLogger(join(ctx.stageDir, 'metrics.jsonl'));
  const flat: Record<string, number> = {};
  for (const [k, v] of Object.entries(report)) if (typeof v === 'number') flat[k] = v;
  for (const [k, v] of Object.entries(report.rewards)) flat[`rewards/${k}/mean`] = v;
  logger.log({ step: 1, ...flat });
  logger.close();
  return { summary: flat };
}
