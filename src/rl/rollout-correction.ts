// Truncated importance sampling for a rollout engine whose numbers differ from the trainer's (TRL's
// vllm_importance_sampling_correction; verl's rollout correction): tokens are sampled from
// pi_rollout (e.g. llama.cpp), the ratio is taken against the trainer's own recomputed log-probs
// pi_train at sampling time, and each token's policy loss is weighted by
//   w_t = min(pi_train(y_t) / pi_rollout(y_t), C)
// which undoes the mismatch in expectation while the cap C bounds the variance. Pure: no I/O.

/** Per-token weights and what to log about the mismatch. */
export type RolloutCorrection = {
  /** w_t per completion token (same shape as the log-probs). */
  weights: number[][];
  /** The rollout-vs-train KL, KL(pi_rollout || pi_train), per token: mean of the k3 estimate
   * r - log r - 1 with r = pi_train / pi_rollout (non-negative, unbiased for samples of pi_rollout). */
  kl: number;
  /** Share of tokens whose ratio exceeded C (their weight is C). */
  truncatedFrac: number;
  /** Mean weight over the tokens. */
  meanWeight: number;
  /** Largest |log pi_train - log pi_rollout| over the tokens. */
  maxLogpDiff: number;
};

/** w_t = min(exp(train_t - rollout_t), cap) for every token, with the mismatch statistics. */
export function truncatedIsWeights(
  train: readonly (readonly number[])[],
  rollout: readonly (readonly number[])[],
  cap: number,
): RolloutCorrection {
  if (!(cap > 0)) throw new Error(`truncatedIsWeights: the cap must be positive, got ${cap}`);
  let n = 0,
    kl = 0,
    truncated = 0,
    sum = 0,
    maxDiff = 0;
  const weights = rollout.map((row, i) =>
    row.map((r, t) => {
      const d = train[i][t] - r;
      const ratio = Math.exp(d);
      n++;
      kl += ratio - d - 1;
      if (ratio > cap) truncated++;
      const w = Math.min(ratio, cap);
      sum += w;
      maxDiff = Math.max(maxDiff, Math.abs(d));
      return w;
    }),
  );
  const per = Math.max(1, n);
  return { weights, kl: kl / per, truncatedFrac: truncated / per, meanWeight: n ? sum / n : 1, maxLogpDiff: maxDiff };
}
