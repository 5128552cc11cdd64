// Rejection sampling (DeepSeek-R1, stage 3): sample k completions per prompt, keep those that pass
// the reward threshold and the readability filters, dedupe, mix in other data (R1's non-reasoning
// rows), and write an SFT dataset for the next stage.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../errors.ts';
import { writeJsonl } from '../data/io.ts';
import { Rng } from '../engine/rng.ts';
import { MetricsLogger } from '../metrics/logger.ts';
import type { Row, StageContext, StageResult } from './context.ts';
import type { RejectionSamplingStage } from '../recipe/index.ts';
import { closeRewards, loadRewards, scoreBatch } from '../../rewards/registry.ts';
import { encodePrompts } from './prompts.ts';
import { promptTools, rewardTurns, sampleCompletions, trajectoryFields } from './sample.ts';

/** Share of word 4-grams that repeat an earlier 4-gram of the same text (0 = none). */
export function repeatedNgramShare(text: string, n = 4): number {
  const words = text.split(/\s+/).filter(Boolean);
  if (words.length < n + 1) return 0;
  const seen = new Set<string>();
  let repeats = 0,
    total = 0;
  for (let i = 0; i + n <= words.length; i++) {
    const g = words.slice(i, i + n).join(' ');
    if (seen.has(g)) repeats++;
    seen.add(g);
    total++;
  }
  return repeats / total;
}

export async function runRejectionSampling(ctx: StageContext, s: RejectionSamplingStage): Promise<StageResult> {
  const rows = await ctx.readDatasets();
  if (!rows.length) throw new UserError(`stage '${s.name}': the datasets are empty`);
  const tok = ctx.tokenizer;
  const specs = [...s.rewards];
  // The language filter uses the language-consistency reward on the chain of thought.
  if (s.filters.language) specs.push({ name: 'language', weight: 0, options: { language: s.filters.language } });
  const rewards = await loadRewards(specs, ctx.recipe.recipeDir, { sandbox: ctx.recipe.sandbox });
  const model = ctx.loadModel();
  const k = s.num_generations;
  const encoded = encodePrompts(
    rows,
    s,
    tok,
    { context: model.config.max_position_embeddings, newTokens: s.max_new_tokens, newTokensField: 'max_new_tokens' },
    promptTools(s.tools),
  );
  const prompts: string[] = [],
    ids: number[][] = [],
    srcRows: Row[] = [];
  for (const e of encoded) {
    for (let j = 0; j < k; j++) {
      prompts.push(e.text);
      ids.push(e.ids);
      srcRows.push(e.row);
    }
  }
  // With tools, each sample is a multi-turn trajectory (GRPO's loop): the kept completion is the whole
  // trajectory, tool output included, with its turns (an SFT on it masks the output: stages/sft.ts).
  const completions = await sampleCompletions(
    model,
    tok,
    ids,
    {
      maxNewTokens: s.max_new_tokens,
      temperature: s.temperature,
      topP: s.top_p,
      topK: s.top_k,
      stopTokens: [...tok.eosIds],
      stopStrings: s.stop,
    },
    ctx.recipe.seed,
    s.tools,
    ctx.recipe,
  ).catch(async (e: unknown) => {
    model.dispose();
    await closeRewards(rewards);
    throw e;
  });
  model.dispose();
  const texts = completions.map((c) => c.text);
  const scored = await scoreBatch(
    rewards,
    { prompts, completions: texts, rows: srcRows, ...rewardTurns(completions, s.tools) },
    { onError: s.reward_error },
  );
  await closeRewards(rewards);
  const kept: Row[] = [];
  const perPrompt: { prompt: string; accepted: number; k: number }[] = [];
  const rejectedBy: Record<string, number> = { reward: 0, language: 0, repetition: 0, length: 0, duplicate: 0 };
  for (let r = 0; r < rows.length; r++) {
    const seen = new Set<string>();
    let accepted = 0;
    for (let j = 0; j < k; j++) {
      const i = r * k + j;
      const len = completions[i].tokens.length;
      const reason =
        scored.total[i] < s.reward_threshold
          ? 'reward'
          : s.filters.language && (scored.byFunction.language?.[i] ?? 0) < 0.95
            ? 'language'
            : s.filters.max_repetition < 1 && repeatedNgramShare(texts[i]) > s.filters.max_repetition
              ? 'repetition'
              : len < s.filters.min_length || (s.filters.max_length !== null && len > s.filters.max_length)
                ? 'length'
                : s.dedupe && seen.has(texts[i].trim().replace(/\s+/g, ' '))
                  ? 'duplicate'
                  : null;
      if (reason) {
        rejectedBy[reason]++;
        continue;
      }
      seen.add(texts[i].trim().replace(/\s+/g, ' '));
      accepted++;
      const { [s.prompt_field]: prompt, ...rest } = rows[r];
      kept.push({
        ...rest,
        prompt,
        completion: texts[i],
        reward: scored.total[i],
        source: s.name,
        ...trajectoryFields(completions[i]),
        // The tools the prompt offered (a chat template renders them into it): an SFT on the row
        // rebuilds the same prompt from them (stages/sft.ts).
        ...(s.tools && { tools: s.tools.names }),
      });
    }
    perPrompt.push({ prompt: String(rows[r][s.prompt_field]), accepted, k });
  }
  const mixRows = await ctx.readDatasets('mix');
  const f = s.mix.fraction;
  const nMix = f > 0 && mixRows.length ? Math.min(mixRows.length, Math.round((f / (1 - f || 1)) * Math.max(1, kept.length))) : 0;
  const mixed = new Rng(ctx.recipe.seed)
    .shuffle([...mixRows])
    .slice(0, nMix)
    .map((row) => ({ ...row, source: 'mix' }));
  const out = new Rng(ctx.recipe.seed + 1).shuffle([...kept, ...mixed]);
  mkdirSync(ctx.stageDir, { recursive: true });
  const dataset = join(ctx.stageDir, 'dataset.jsonl');
  writeJsonl(dataset, out);
  writeJsonl(
    join(ctx.stageDir, 'acceptance.jsonl'),
    perPrompt.map((p) => ({ ...p, rate: p.accepted / p.k })),
  );
  writeJsonl(
    join(ctx.stageDir, 'samples.jsonl'),
    texts
      .slice(0, 200)
      .map((c, i) => ({ prompt: prompts[i], completion: c, reward: scored.total[i], ...trajectoryFields(completions[i]) })),
  );
  const summary = {
    prompts: rows.length,
    samples: texts.length,
    kept: kept.length,
    mixed: mixed.length,
    rows_written: out.length,
    acceptance_rate: kept.length / texts.length,
    prompt_coverage: perPrompt.filter((p) => p.accepted > 0).length / rows.length, // share of prompts with a sample kept
    ...Object.fromEntries(Object.entries(rejectedBy).map(([key, v]) => [`rejected/${key}`, v])),
  };
  const logger = new MetricsLogger(join(ctx.stageDir, 'metrics.jsonl'));
  logger.log({ step: 1, ...summary });
  logger.close();
  return { dataset, summary };
}
