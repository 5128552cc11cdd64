// DPO (Rafailov et al.): preference pairs (prompt, chosen, rejected) against a frozen reference.
// Logs TRL's names: rewards/chosen, rewards/rejected, rewards/margins, rewards/accuracies.
import * as tf from '@tensorflow/tfjs-core';
import { UserError } from '../errors.ts';
import { applyTemplate, renderReply } from '../data/chat.ts';
import type { StageContext, StageResult } from '../pipeline/context.ts';
import type { DpoStage } from '../recipe/index.ts';
import { dpoLoss } from '../rl/index.ts';
import { sequenceLogprobs } from '../rl/dpo-loss.ts';
import { type MicroBatch, trainLoop } from '../train/trainer.ts';
import { batchIndices, documentIds, totalSteps } from './batches.ts';
import { completionLogprobs, completionMask, type PromptCompletions } from './logprobs.ts';

export async function runDpo(ctx: StageContext, s: DpoStage): Promise<StageResult> {
  const rows = await ctx.readDatasets();
  if (!rows.length) throw new UserError(`stage '${s.name}': the datasets are empty`);
  const tok = ctx.tokenizer;
  const policy = ctx.loadModel();
  const ref = policy.clone();
  const maxLen = Math.min(s.max_length ?? Infinity, policy.config.max_position_embeddings + 1);
  // Pair i is rows 2i (chosen) and 2i + 1 (rejected) of one prompt-completions batch.
  const pairs: PromptCompletions = { inputs: [], promptLengths: [] };
  rows.forEach((row, i) => {
    const { prompt, chosen, rejected } = row as Record<string, unknown>;
    if (typeof prompt !== 'string' || typeof chosen !== 'string' || typeof rejected !== 'string') {
      throw new UserError(`stage '${s.name}', row ${i + 1}: needs string fields prompt, chosen and rejected`);
    }
    // Through the chat template, a reply ends with the template's end of turn, as in SFT; otherwise with EOS.
    const replies = s.template === 'chat'
      ? [chosen, rejected].map((answer) => renderReply([{ role: 'user', content: prompt }], { role: 'assistant', content: answer }, tok.chatTemplate))
      : [chosen, rejected].map((answer) => ({ prompt: applyTemplate(s.template, prompt), reply: answer }));
    const p = documentIds(tok, replies[0].prompt);
    for (const { reply } of replies) {
      pairs.inputs.push([...p, ...tok.encode(reply), ...(s.template === 'chat' ? [] : [tok.eosId])].slice(0, maxLen));
      pairs.promptLengths.push(Math.min(p.length, maxLen - 1));
    }
  });
  const n = rows.length, B = s.per_device_train_batch_size, accum = s.gradient_accumulation_steps;
  const steps = totalSteps(s.max_steps, s.num_train_epochs, n, B * s.gradient_accumulation_steps);
  const stats = { chosen: 0, rejected: 0, accuracy: 0, count: 0 };
  /** Log-probability of each sequence's completion: [2B] in (chosen, rejected) order; summed over
   * its tokens (sigmoid) or their mean (ipo: TRL's length normalisation, see sequenceLogprobs). */
  const sums = (model: typeof policy, seqRows: number[]) =>
    tf.tidy(() => {
      const lp = completionLogprobs(model, pairs, seqRows);
      return sequenceLogprobs(lp, completionMask(pairs, seqRows, lp.shape[1]), s.loss_type);
    });
  const result = await trainLoop(
    { stage: s.name, stageDir: ctx.stageDir, model: policy, config: s, totalSteps: steps, seed: ctx.recipe.seed, hash: ctx.hash,
      special: { bos: tok.bosId, eos: tok.eosId, pad: tok.padId }, onCheckpoint: (dir) => tok.save(dir), progressStream: ctx.progressStream },
    {
      prepare: () => {
        Object.assign(stats, { chosen: 0, rejected: 0, accuracy: 0, count: 0 });
        return { data: undefined, metrics: {} };
      },
      // Every micro-batch holds B pairs: the mean over the step's B x accumulation pairs is the sum of
      // the micro-batches' means divided by the accumulation steps.
      microBatches: (step) => Array.from({ length: accum }, (_, micro): MicroBatch => {
        const idx = batchIndices(step * accum + micro, B, n, ctx.recipe.seed);
        const seqRows = idx.flatMap((i) => [2 * i, 2 * i + 1]);
        const tokens = seqRows.reduce((a, i) => a + pairs.inputs[i].length, 0);
        return {
          kind: 'local',
          tokens,
          loss: () => {
            const even = tf.tensor1d(idx.map((_, b) => 2 * b), 'int32'), odd = tf.tensor1d(idx.map((_, b) => 2 * b + 1), 'int32');
            const pol = sums(policy, seqRows), rf = sums(ref, seqRows);
            const out = dpoLoss(
              { policyChosen: tf.gather(pol, even) as tf.Tensor1D, policyRejected: tf.gather(pol, odd) as tf.Tensor1D, refChosen: tf.gather(rf, even) as tf.Tensor1D, refRejected: tf.gather(rf, odd) as tf.Tensor1D },
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
        return { 'rewards/chosen': stats.chosen / k, 'rewards/rejected': stats.rejected / k, 'rewards/margins': (stats.chosen - stats.rejected) / k, 'rewards/accuracies': stats.accuracy / k };
      },
    },
  );
  policy.dispose();
  ref.dispose();
  return { checkpoint: `${ctx.stageDir}/checkpoint`, summary: { final_loss: +result.finalLoss.toFixed(4), steps: result.steps, pairs: n } };
}
