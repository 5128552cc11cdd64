// Evaluation: k samples per prompt, scored by the recipe's rewards. Reports pass@1 averaged over
// the k samples (accuracy), maj@k (is the most common extracted answer right), the format rate,
// and the mean completion length.
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
import { closeRewards, loadRewards, scoreBatch } from '../../rewards/registry.ts';

export type EvalOptions = {
  k: number; maxNewTokens: number; temperature: number; topP: number; topK: number; stop: string[];
  template: string; promptField: string; rewards: { name: string; weight: number; options: Record<string, unknown> }[];
  seed: number; baseDir: string;
  /** Name used in error messages. */
  stage: string;
};

/** pass@1, maj@k (keyed `maj@<k>`), format_rate, mean_length, per-reward means and per-task pass@1. */
export type EvalReport = Record<string, number | Record<string, unknown>> & {
  prompts: number;
  k: number;
  rewards: Record<string, number>;
  by_task: Record<string, { prompts: number; 'pass@1': number }>;
};

/** Samples k completions per row and scores them. Returns the report and one sample row per completion. */
export async function evaluate(model: Transformer, tok: Tokenizer, rows: Row[], o: EvalOptions): Promise<{ report: EvalReport; samples: Row[] }> {
  const rewards = await loadRewards(o.rewards, o.baseDir);
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
    stopTokens: [tok.eosId], stopStrings: o.stop, rng: new Rng(o.seed),
  });
  const texts = completions.map((c) => c.text);
  const scored = await scoreBatch(rewards, { prompts, completions: texts, rows: srcRows }, { onError: 'zero' });
  await closeRewards(rewards);
  const acc = scored.byFunction.accuracy ?? null;
  const fmt = scored.byFunction.format ?? null;
  let pass = 0, maj = 0, format = 0, length = 0;
  const byTask: Record<string, { prompts: number; correct: number }> = {};
  for (let r = 0; r < rows.length; r++) {
    const group = Array.from({ length: o.k }, (_, j) => r * o.k + j);
    const correct = group.reduce((a, i) => a + (acc ? Number(acc[i] ?? 0) : 0), 0) / o.k;
    pass += correct;
    // maj@k: the most frequent extracted answer, checked against the reference.
    const counts = new Map<string, number>();
    for (const i of group) {
      const a = extractAnswer(texts[i]);
      if (a !== null) counts.set(a, (counts.get(a) ?? 0) + 1);
    }
    const top = [...counts.entries()].sort((a, b) => b[1] - a[1])[0]?.[0];
    const ref = rows[r].answer ?? rows[r].solution;
    if (top !== undefined && ref !== undefined && answersMatch(top, String(ref))) maj++;
    const task = typeof rows[r].task === 'string' ? (rows[r].task as string) : 'all';
    byTask[task] ??= { prompts: 0, correct: 0 };
    byTask[task].prompts++;
    byTask[task].correct += correct;
    for (const i of group) {
      format += fmt ? Number(fmt[i] ?? 0) : 0;
      length += completions[i].tokens.length;
    }
  }
  const n = rows.length, total = n * o.k;
  const report: EvalReport = {
    prompts: n, k: o.k, 'pass@1': pass / n, [`maj@${o.k}`]: maj / n, format_rate: format / total, mean_length: length / total,
    rewards: Object.fromEntries(Object.entries(scored.stats).map(([k, v]) => [k, v.mean])),
    by_task: Object.fromEntries(Object.entries(byTask).map(([t, v]) => [t, { prompts: v.prompts, 'pass@1': v.correct / v.prompts }])),
  };
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
  });
  model.dispose();
  mkdirSync(ctx.stageDir, { recursive: true });
  writeFileSync(join(ctx.stageDir, 'eval.json'), JSON.stringify(report, null, 2) + '\n');
  writeJsonl(join(ctx.stageDir, 'samples.jsonl'), samples);
  const logger = new MetricsLogger(join(ctx.stageDir, 'metrics.jsonl'));
  const flat: Record<string, number> = {};
  for (const [k, v] of Object.entries(report)) if (typeof v === 'number') flat[k] = v;
  for (const [k, v] of Object.entries(report.rewards)) flat[`rewards/${k}/mean`] = v;
  logger.log({ step: 1, ...flat });
  logger.close();
  return { summary: flat };
}
