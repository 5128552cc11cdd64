// Pretraining: next-token loss over text packed into fixed-length sequences.
import { UserError } from '../errors.ts';
import type { StageContext, StageResult } from '../pipeline/context.ts';
import type { PretrainStage } from '../recipe/index.ts';
import { LM_LOSS, type LmBatch } from '../train/lm-loss.ts';
import { activeBackend } from '../engine/backend.ts';
import { type MicroBatch, trainLoop } from '../train/trainer.ts';
import { batchIndices, totalSteps, trainThreads } from './batches.ts';
import { packSequences } from '../data/packing.ts';

export async function runPretrain(ctx: StageContext, s: PretrainStage): Promise<StageResult> {
  const rows = await ctx.readDatasets();
  const tok = ctx.tokenizer;
  const docs: number[][] = [];
  rows.forEach((row, i) => {
    const text = row[s.text_field];
    if (typeof text !== 'string') throw new UserError(`stage '${s.name}': row ${i + 1} has no string field '${s.text_field}'`);
    docs.push(tok.encode(text));
  });
  // Windows of seq_length + 1 tokens: inputs are the first seq_length, targets the last.
  const windows = packSequences(docs, s.seq_length + 1, tok.eosId);
  if (windows.length === 0) throw new UserError(`stage '${s.name}': the datasets hold fewer than ${s.seq_length + 1} tokens`);
  const model = ctx.loadModel();
  if (s.seq_length > model.config.max_position_embeddings) {
    throw new UserError(`stage '${s.name}': seq_length ${s.seq_length} exceeds the model's max_position_embeddings ${model.config.max_position_embeddings}`);
  }
  const B = s.per_device_train_batch_size, T = s.seq_length, accum = s.gradient_accumulation_steps;
  const steps = totalSteps(s.max_steps, s.num_train_epochs, windows.length, B * s.gradient_accumulation_steps);
  const result = await trainLoop(
    { stage: s.name, stageDir: ctx.stageDir, model, config: s, totalSteps: steps, seed: ctx.recipe.seed, hash: ctx.hash,
      special: { bos: tok.bosId, eos: tok.eosId, pad: tok.padId }, onCheckpoint: (dir) => tok.save(dir), progressStream: ctx.progressStream,
      threads: trainThreads(s.train_workers), backend: activeBackend() },
    {
      // Every position is trained: each micro-batch's sum is divided by the step's B x T x accumulation.
      microBatches: (step) =>
        Array.from({ length: accum }, (_, micro): MicroBatch => {
          const idx = batchIndices(step * accum + micro, B, windows.length, ctx.recipe.seed);
          const lm: LmBatch = {
            inputs: Int32Array.from(idx.flatMap((i) => windows[i].slice(0, T))), targets: Int32Array.from(idx.flatMap((i) => windows[i].slice(1))),
            weights: null, B, T, normaliser: B * T * accum,
          };
          return { kind: 'sharded', tokens: B * T, job: { module: LM_LOSS, data: lm, rows: B } };
        }),
    },
  );
  model.dispose();
  return { checkpoint: `${ctx.stageDir}/checkpoint`, summary: { final_loss: +result.finalLoss.toFixed(4), steps: result.steps, sequences: windows.length } };
}
