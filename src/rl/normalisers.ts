// How a GRPO-family loss divides its token losses, as TRL defines each loss_type, written as one
// weight per completion so that micro-batches and shards of a step simply add up (see
// src/train/sharded.ts). A row's loss term is rowWeight * sum over its kept tokens of the token loss.

export type LossType = 'grpo' | 'dapo' | 'bnpo' | 'dr_grpo' | 'cispo';

export type StepShape = {
  /** Kept (loss-bearing) completion tokens of each row of the whole optimiser step. */
  tokens: readonly number[];
  /** The micro-batch each row falls in (0-based). */
  microBatch: readonly number[];
  /** The stage's max_completion_length (dr_grpo's constant). */
  maxCompletionLength: number;
};

/** The weight of each row, for N rows in M micro-batches, n_i kept tokens in row i:
 *   grpo     1 / (N * n_i)                  mean over each sequence's tokens, then over sequences
 *   dapo     1 / sum_i n_i                  every token of the step counts the same (also cispo)
 *   bnpo     1 / (M * sum_{j in mb(i)} n_j) token mean within each micro-batch, micro-batches averaged
 *   dr_grpo  1 / (N * max_completion_length) a constant: a token's weight never depends on its neighbours
 * (n and the sums are taken as at least 1, so an all-masked row or batch weighs nothing, not NaN). */
export function lossRowWeights(lossType: LossType, s: StepShape): number[] {
  const N = s.tokens.length;
  if (N === 0) return [];
  const M = Math.max(...s.microBatch) + 1;
  switch (lossType) {
    case 'grpo':
      return s.tokens.map((n) => 1 / (N * Math.max(n, 1)));
    case 'dapo':
    case 'cispo': {
      const total = Math.max(1, s.tokens.reduce((a, b) => a + b, 0));
      return s.tokens.map(() => 1 / total);
    }
    case 'bnpo': {
      const perMicro = new Array<number>(M).fill(0);
      s.tokens.forEach((n, i) => (perMicro[s.microBatch[i]] += n));
      return s.microBatch.map((m) => 1 / (M * Math.max(1, perMicro[m])));
    }
    case 'dr_grpo':
      return s.tokens.map(() => 1 / (N * s.maxCompletionLength));
  }
}
