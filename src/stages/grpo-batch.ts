// The GRPO loss of a micro-batch of episodes as a shardable loss module (see src/train/sharded.ts),
// so gradient workers can compute it on their share of the completions. Its loss and metrics are
// terms of the optimiser step's sums: each row carries its weight over the whole step.
import * as tf from '@tensorflow/tfjs-core';
import type { Transformer } from '../model/transformer.ts';
import { type GrpoLossOptions, grpoLoss } from '../rl/index.ts';
import { withExpertLoad } from '../train/expert-load.ts';
import { completionLogprobsAndEntropy, completionMask } from './logprobs.ts';

/** Episodes as plain arrays: prompt + completion ids, the sampling policy's and the reference's
 * log-probs of each completion token, one advantage, keep flag (0 = no loss) and loss weight per row. */
export type GrpoBatch = {
  inputs: number[][];
  promptLengths: number[];
  old: number[][];
  ref: number[][] | null;
  advantages: number[];
  keep: number[];
  /** Each row's loss weight over the whole step (rl/loss-types.ts). */
  rowWeights: number[];
  /** Each kept token's share in the step's metrics (1 / the step's kept tokens). */
  metricWeight: number;
  /** Completion width of this micro-batch (its longest completion). */
  width: number;
  temperature: number;
  opts: GrpoLossOptions;
  /** Per-token truncated IS weights of the rollout engine's mismatch (rl/rollout-correction.ts); absent: none. */
  isWeights?: number[][] | null;
  /** Multi-turn rollouts: per completion token 1 where the model sampled it, 0 where a tool wrote it
   * (no loss, KL or entropy there; rl/tool-mask.ts). Absent: every token is the model's. */
  modelTokens?: number[][] | null;
};

export const GRPO_LOSS = import.meta.url;

const padded = (rows: number[][], width: number) => {
  const out = new Float32Array(rows.length * width);
  rows.forEach((r, b) => r.forEach((v, j) => j < width && (out[b * width + j] = v)));
  return tf.tensor2d(out, [rows.length, width]);
};

export function loss(model: Transformer, b: GrpoBatch): { loss: tf.Scalar; metrics: Record<string, tf.Scalar> } {
  return withExpertLoad(model, () => grpoTerms(model, b));
}

function grpoTerms(model: Transformer, b: GrpoBatch): { loss: tf.Scalar; metrics: Record<string, tf.Scalar> } {
  const rows = b.inputs.map((_, i) => i);
  const { logprobs, entropies } = completionLogprobsAndEntropy(model, b, rows, b.temperature, b.width);
  const out = grpoLoss(
    {
      logprobs,
      entropies,
      oldLogprobs: padded(b.old, b.width),
      refLogprobs: b.ref ? padded(b.ref, b.width) : null,
      advantages: b.advantages,
      mask: completionMask(
        b,
        rows,
        b.width,
        (i) => b.keep[i],
        (i) => b.modelTokens?.[i],
      ),
      rowWeights: b.rowWeights,
      metricWeight: b.metricWeight,
      isWeights: b.isWeights ? padded(b.isWeights, b.width) : null,
    },
    b.opts,
  );
  return { loss: out.loss, metrics: { ...(b.opts.beta > 0 ? { kl: out.kl } : {}), entropy: out.entropy!, ...out.clipMetrics } };
}

export function slice(b: GrpoBatch, from: number, to: number): GrpoBatch {
  const cut = <T>(xs: T[]) => xs.slice(from, to);
  return {
    ...b,
    inputs: cut(b.inputs),
    promptLengths: cut(b.promptLengths),
    old: cut(b.old),
    ref: b.ref ? cut(b.ref) : null,
    advantages: cut(b.advantages),
    keep: cut(b.keep),
    rowWeights: cut(b.rowWeights),
    ...(b.isWeights ? { isWeights: cut(b.isWeights) } : {}),
    ...(b.modelTokens ? { modelTokens: cut(b.modelTokens) } : {}),
  };
}
