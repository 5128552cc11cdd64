// Pretraining: next-token loss over text packed into fixed-length sequences.
import { UserError } from '../errors.ts';
import type { StageContext, StageResult } from './context.ts';
import type { PretrainStage } from '../recipe/index.ts';
import { LM_LOSS, windowBatch } from '../train/lm-loss.ts';
import { type MicroBatch, trainLoop } from '../train/trainer.ts';
import { batchIndices, totalSteps, stageTrainOptions } from './batches.ts';
import { packText } from '../data/packing.ts';
import { heldOutLoss } from '../train/held-out.ts';

export async function runPretrain(ctx: StageContext, s: PretrainStage): Promise<StageResult> {
  const tok = ctx.tokenizer;
  /** Windows of seq_length + 1 tokens: inputs are the first seq_length, targets the last. */
  const windowsOf = async (field: 'datasets' | 'eval_datasets'): Promise<number[][]> => {
    const windows = packText(
      await ctx.readDatasets(field),
      s.text_field,
      tok,
      s.seq_length + 1,
      (i) =>
        new UserError(
          `stage '${s.name}': ${field === 'datasets' ? '' : 'eval_datasets '}row ${i + 1} has no string field '${s.text_field}'`,
        ),
    );
    if (windows.length === 0) throw new UserError(`stage '${s.name}': the ${field} hold fewer than ${s.seq_length + 1} tokens`);
    return windows;
  };
  const windows = await windowsOf('datasets');
  const evalWindows = s.eval_datasets.length ? await windowsOf('eval_datasets') : null;
  const model = ctx.loadModel();
  if (s.seq_length > model.config.max_position_embeddings) {
    throw new UserError(
      `stage '${s.name}': seq_length ${s.seq_length} exceeds the model's max_position_embeddings ${model.config.max_position_embeddings}`,
    );
  }
  const B = s.per_device_train_batch_size,
    T = s.seq_length,
    accum = s.gradient_accumulation_steps;
  const steps = totalSteps(s.max_steps, s.num_train_epochs, windows.length, B * s.gradient_accumulation_steps);
  const evalEvery = s.eval_steps ?? s.save_steps;
  const evalDue = (done: number) => done % evalEvery === 0 || done === steps;
  const last: { evalLoss: number | null } = { evalLoss: null }; // the latest held-out loss, for the summary
  const result = await trainLoop(stageTrainOptions(ctx, s, model, steps, s.train_workers), {
    // Every position is trained: each micro-batch's sum is divided by the step's B x T x accumulation.
    microBatches: (step) =>
      Array.from({ length: accum }, (_, micro): MicroBatch => {
        const idx = batchIndices(step * accum + micro, B, windows.length, ctx.recipe.seed);
        const lm = windowBatch(
          idx.map((i) => windows[i]),
          T,
          B * T * accum,
        );
        return { kind: 'sharded', tokens: B * T, job: { module: LM_LOSS, data: lm, rows: B } };
      }),
    // The held-out loss after the step's update, every eval_steps and at the last step, each in a logged row.
    after: (step): Record<string, number> => {
      if (!evalWindows || !evalDue(step + 1)) return {};
      last.evalLoss = heldOutLoss(model, evalWindows, B, T);
      return { 'eval/loss': last.evalLoss };
    },
    logged: (done) => evalWindows !== null && evalDue(done),
  });
  model.dispose();
  return {
    checkpoint: `${ctx.stageDir}/checkpoint`,
    summary: {
      final_loss: +result.finalLoss.toFixed(4),
      ...(last.evalLoss !== null && { eval_loss: +last.evalLoss.toFixed(4) }),
      steps: result.steps,
      sequences: windows.length,
    },
  };
}
