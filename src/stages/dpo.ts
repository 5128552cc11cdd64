// DPO (Rafailov et al.): preference pairs (prompt, chosen, rejected) against a frozen reference.
// Logs TRL's names: rewards/chosen, rewards/rejected, rewards/margins, rewards/accuracies.
import * as tf from '@tensorflow/tfjs-core';
import { UserError } from '../errors.ts';
import { applyTemplate, renderReply } from '../data/chat.ts';
import type { StageContext, StageResult } from './context.ts';
import type { DpoStage } from '../recipe/index.ts';
import { dpoLoss } from '../rl/index.ts';
import { sequenceLogprobs } from '../rl/dpo-loss.ts';
import { type MicroBatch, trainLoop } from '../train/trainer.ts';
import { batchIndices, documentIds, totalSteps, stageTrainOptions } from './batches.ts';
import { completionLogprobs, completionMask, type PromptCompletions } from './logprobs.ts';

export async function runDpo(ctx: StageContext, s: DpoStage): Promise<StageResult> {
  const rows = await ctx.readDatasets();
  if (!rows.length) throw new UserError(`stage '${s.name}': the datasets are empty`);
  const tok = ctx.tokenizer;
  const policy = ctx.loadModel();
  const ref = policy.reference();
  const maxLen = Math.min(s.max_length ?? Infinity, policy.config.max_position_embeddings + 1);
  const limits = { maxPromptLength: s.max_prompt_length, maxLength: maxLen, documentStart: tok.documentStart };
  // Pair i is rows 2i (chosen) and 2i + 1 (rejected) of one prompt-completions batch.
  const pairs: PromptCompletions = { inputs: [], promptLengths: [] };
  let cutPrompts = 0,
    cutCompletions = 0;
  rows.forEach((row, i) => {
    const { prompt, chosen, rejected } = row as Record<string, unknown>;
    if (typeof prompt !== 'string' || typeof chosen !== 'string' || typeof rejected !== 'string') {
      throw new UserError(`stage '${s.name}', row ${i + 1}: needs string fields prompt, chosen and rejected`);
    }
    // Through the chat template, a reply ends with the template's end of turn, as in SFT; otherwise with EOS.
    const replies =
      s.template === 'chat'
        ? [chosen, rejected].map((answer) =>
            renderReply([{ role: 'user', content: prompt }], { role: 'assistant', content: answer }, tok.chatTemplate),
          )
        : [chosen, rejected].map((answer) => ({ prompt: applyTemplate(s.template, prompt), reply: answer }));
    const [c, r] = replies.map(({ reply }) => [...tok.encode(reply), ...(s.template === 'chat' ? [] : [tok.eosId])]);
    const pair = dpoPair(documentIds(tok, replies[0].prompt), c, r, limits, `stage '${s.name}', row ${i + 1}`);
    cutPrompts += +pair.promptCut;
    cutCompletions += +pair.completionCut;
    for (const reply of [pair.chosen, pair.rejected]) {
      pairs.inputs.push([...pair.prompt, ...reply]);
      pairs.promptLengths.push(pair.prompt.length);
    }
  });
  if (cutPrompts || cutCompletions) {
    (ctx.progressStream ?? process.stderr).write(
      `[${s.name}] of ${rows.length} rows, ${cutPrompts} had the prompt cut from the left and ${cutCompletions} a completion cut at the end ` +
        `to fit max_prompt_length ${s.max_prompt_length ?? 'null'} and max_length ${maxLen} (summary: truncated_prompts, truncated_completions)\n`,
    );
  }
  const n = rows.length,
    B = s.per_device_train_batch_size,
    accum = s.gradient_accumulation_steps;
  const steps = totalSteps(s.max_steps, s.num_train_epochs, n, B * s.gradient_accumulation_steps);
  const stats = { chosen: 0, rejected: 0, accuracy: 0, count: 0 };
  /** Log-probability of each sequence's completion: [2B] in (chosen, rejected) order; summed over
   * its tokens (sigmoid) or their mean (ipo: TRL's length normalisation, see sequenceLogprobs). */
  const sums = (model: typeof policy, seqRows: number[]) =>
    tf.tidy(() => {
      const lp = completionLogprobs(model, pairs, seqRows);
      return sequenceLogprobs(lp, completionMask(pairs, seqRows, lp.shape[1]), s.loss_type);
    });
  const result = await trainLoop(stageTrainOptions(ctx, s, policy, steps), {
    prepare: () => {
      Object.assign(stats, { chosen: 0, rejected: 0, accuracy: 0, count: 0 });
      return { data: undefined, metrics: {} };
    },
    // Every micro-batch holds B pairs: the mean over the step's B x accumulation pairs is the sum of
    // the micro-batches' means divided by the accumulation steps.
    microBatches: (step) =>
      Array.from({ length: accum }, (_, micro): MicroBatch => {
        const idx = batchIndices(step * accum + micro, B, n, ctx.recipe.seed);
        const seqRows = idx.flatMap((i) => [2 * i, 2 * i + 1]);
        const tokens = seqRows.reduce((a, i) => a + pairs.inputs[i].length, 0);
        return {
          kind: 'local',
          tokens,
          loss: () => {
            const even = tf.tensor1d(
                idx.map((_, b) => 2 * b),
                'int32',
              ),
              odd = tf.tensor1d(
                idx.map((_, b) => 2 * b + 1),
                'int32',
              );
            const pol = sums(policy, seqRows),
              rf = sums(ref, seqRows);
            const out = dpoLoss(
              {
                policyChosen: tf.gather(pol, even) as tf.Tensor1D,
                policyRejected: tf.gather(pol, odd) as tf.Tensor1D,
                refChosen: tf.gather(rf, even) as tf.Tensor1D,
                refRejected: tf.gather(rf, odd) as tf.Tensor1D,
              },
              { beta: s.beta, lossType: s.loss_type },
            );
            stats.chosen += tf.mean(out.chosenRewards).dataSync()[0];
            stats.rejected += tf.mean(out.rejectedRewards).dataSync()[0];
            stats.accuracy += out.accuracy.dataSync()[0];
            stats.count++;
            return tf.div(out.loss, accum) as tf.Scalar;
          },
        };
      }),
    after: () => {
      const k = Math.max(1, stats.count);
      return {
        'rewards/chosen': stats.chosen / k,
        'rewards/rejected': stats.rejected / k,
        'rewards/margins': (stats.chosen - stats.rejected) / k,
        'rewards/accuracies': stats.accuracy / k,
      };
    },
  });
  policy.dispose();
  ref.dispose();
  return {
    checkpoint: `${ctx.stageDir}/checkpoint`,
    summary: {
      final_loss: +result.finalLoss.toFixed(4),
      steps: result.steps,
      pairs: n,
      truncated_prompts: cutPrompts,
      truncated_completions: cutCompletions,
    },
  };
}

export type DpoLimits = { maxPromptLength: number | null; maxLength: number; documentStart: readonly number[] };

/** The token ids DPO trains on for one row, truncated as TRL's DPOTrainer does: the prompt to its
 * last `maxPromptLength` tokens (cut from the left; unlike TRL, the tokenizer's document start stays
 * in front, so the model still sees a sequence begin as it always does), then prompt + completion to
 * `maxLength` by cutting each completion's end (TRL's truncation_mode keep_start). Where the prompt
 * alone would leave no completion token, it is cut from the left further, to maxLength - 1 tokens, so
 * each of chosen and rejected keeps at least one token and the pair always trains something. Chosen
 * and rejected share the same prompt ids. A row that cannot fit (maxLength < 2, an empty prompt or
 * completion) is an error naming `where` and the lengths. */
export function dpoPair(
  prompt: number[],
  chosen: number[],
  rejected: number[],
  o: DpoLimits,
  where: string,
): { prompt: number[]; chosen: number[]; rejected: number[]; promptCut: boolean; completionCut: boolean } {
  const lengths = `prompt ${prompt.length} tokens, chosen ${chosen.length}, rejected ${rejected.length}`;
  if (!prompt.length || !chosen.length || !rejected.length)
    throw new UserError(`${where}: an empty prompt or completion cannot be trained (${lengths})`);
  if (o.maxLength < 2)
    throw new UserError(
      `${where}: max_length ${o.maxLength} leaves no room for a prompt token and a completion token (${lengths}); set max_length >= 2`,
    );
  const keep = Math.min(o.maxPromptLength ?? Infinity, o.maxLength - 1);
  let p = prompt;
  if (p.length > keep) {
    const start = o.documentStart.length && o.documentStart.every((id, i) => p[i] === id) ? o.documentStart.length : 0;
    p = start && keep > start ? [...p.slice(0, start), ...p.slice(p.length - (keep - start))] : p.slice(p.length - keep);
  }
  const room = o.maxLength - p.length;
  return {
    prompt: p,
    chosen: chosen.slice(0, room),
    rejected: rejected.slice(0, room),
    promptCut: p.length < prompt.length,
    completionCut: chosen.length > room || rejected.length > room,
  };
}
