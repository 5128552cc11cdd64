// The GRPO loss of a batch of rollouts as a shardable loss module (see src/train/sharded.ts), so
// gradient workers can compute it on their share of the completions.
import * as tf from '@tensorflow/tfjs-core';
import type { Transformer } from '../model/transformer.ts';
import { type GrpoLossOptions, grpoLoss } from '../rl/index.ts';
import { completionLogprobs } from './logprobs.ts';

/** Rollouts as plain arrays: prompt + completion ids, the sampling policy's and the reference's
 * log-probs of each completion token, one advantage and one keep flag (0 = no loss) per row. */
export type GrpoBatch = {
  inputs: number[][];
  promptLengths: number[];
  old: number[][];
  ref: number[][] | null;
  advantages: number[];
  keep: number[];
  /** Completion width shared by all shards (dr_grpo divides by it). */
  width: number;
  temperature: number;
  opts: GrpoLossOptions;
};

export const GRPO_LOSS = import.meta.url;

const padded = (rows: number[][], width: number) => {
  const out = new Float32Array(rows.length * width);
  rows.forEach((r, b) => r.forEach((v, j) => j < width && (out[b * width + j] = v)));
  return tf.tensor2d(out, [rows.length, width]);
};

export function loss(model: Transformer, b: GrpoBatch): { loss: tf.Scalar; metrics: Record<string, tf.Scalar> } {
  const rows = b.inputs.map((_, i) => i);
  const mask = new Float32Array(rows.length * b.width);
  rows.forEach((i) => mask.fill(b.keep[i], i * b.width, i * b.width + Math.min(b.width, b.inputs[i].length - b.promptLengths[i])));
  const out = grpoLoss(
    {
      logprobs: completionLogprobs(model, b, rows, b.temperature, b.width),
      oldLogprobs: padded(b.old, b.width),
      refLogprobs: b.ref ? padded(b.ref, b.width) : null,
      advantages: b.advantages,
      mask: tf.tensor2d(mask, [rows.length, b.width]),
    },
    b.opts,
  );
  return { loss: out.loss, metrics: { kl: out.kl, clip_ratio: out.clipFraction } };
}

export function slice(b: GrpoBatch, from: number, to: number): GrpoBatch {
  return {
    ...b, inputs: b.inputs.slice(from, to), promptLengths: b.promptLengths.slice(from, to), old: b.old.slice(from, to),
    ref: b.ref ? b.ref.slice(from, to) : null, advantages: b.advantages.slice(from, to), keep: b.keep.slice(from, to),
  };
}

/** Per-token losses (dapo, bnpo) weigh shards by their kept tokens; the others by rows. */
export function weight(b: GrpoBatch): number {
  if (b.opts.lossType === 'dapo' || b.opts.lossType === 'bnpo') {
    return b.inputs.reduce((a, seq, i) => a + b.keep[i] * Math.min(b.width, seq.length - b.promptLengths[i]), 0);
  }
  return b.inputs.length;
}
