/** How a completion's advantage is estimated from the rewards of its group (consecutive runs of G
 * rewards, one group per prompt):
 *   grpo         (r_i - mean(group)) / scale                      (DeepSeekMath)
 *   rloo         (r_i - mean of the OTHER G - 1 rewards) / scale    (Ahmadian et al. 2024: leave-one-out
 *                = G / (G - 1) * (r_i - mean(group)) / scale         baseline, unbiased)
 *   reinforce_pp (a_i - mean(a)) / (std(a) + 1e-4) over the whole batch, a_i = r_i - mean(group)
 *                                                                    (REINFORCE++-baseline, Hu et al. 2025)
 * scale (grpo, rloo): 'group': the group's unbiased std + 1e-4 (as TRL), 'batch': the whole batch's
 * std + 1e-4, 'none': 1 (Dr. GRPO). A grpo or rloo group whose rewards are all equal gets 0.
 * reinforce_pp's whitening is per sequence by default (every completion one value, as above);
 * whiten 'token' takes verl's instead, over the tokens of the batch, each completion counting once
 * per token (lengths: its tokens): see tokenWhitened. */
export type AdvantageEstimator = 'grpo' | 'rloo' | 'reinforce_pp';

export type AdvantageOptions = {
  estimator: AdvantageEstimator;
  scale: 'group' | 'batch' | 'none';
  /** reinforce_pp only: whiten over completions ('sequence', the default) or over tokens ('token', verl). */
  whiten?: 'sequence' | 'token';
  /** Each completion's token count (whiten 'token'). */
  lengths?: readonly number[];
};

export function advantages(rewards: readonly number[], groupSize: number, opts: AdvantageOptions): number[] {
  const G = groupSize;
  if (!Number.isInteger(G) || G < 1) throw new Error(`groupSize must be a positive integer (got ${G})`);
  if (rewards.length % G !== 0) throw new Error(`${rewards.length} rewards do not split into groups of ${G}`);
  if (opts.estimator === 'rloo' && G < 2) throw new Error('rloo needs groups of at least 2 (the baseline is the other completions)');
  const centred = new Array<number>(rewards.length);
  const batchStd = std(rewards);
  for (let g = 0; g < rewards.length; g += G) {
    const group = rewards.slice(g, g + G);
    const m = mean(group);
    const allEqual = group.every((r) => r === group[0]);
    const scale =
      opts.estimator === 'reinforce_pp' ? 1 : opts.scale === 'group' ? std(group) + 1e-4 : opts.scale === 'batch' ? batchStd + 1e-4 : 1;
    const loo = opts.estimator === 'rloo' ? G / (G - 1) : 1;
    for (let i = 0; i < G; i++) centred[g + i] = allEqual ? 0 : (loo * (group[i] - m)) / scale;
  }
  if (opts.estimator !== 'reinforce_pp') return centred;
  if (opts.whiten === 'token') {
    if (!opts.lengths || opts.lengths.length !== rewards.length)
      throw new Error(`whiten 'token' needs one length per reward (${rewards.length}), got ${opts.lengths?.length ?? 'none'}`);
    return tokenWhitened(centred, opts.lengths);
  }
  const m = mean(centred),
    s = std(centred) + 1e-4;
  return centred.map((a) => (a - m) / s);
}

/** verl's REINFORCE++ whitening: each completion's value a_i spread over its n_i tokens, then
 * whitened over all N = sum n_i tokens of the batch: (a_i - m) / sqrt(v + 1e-8), with the token mean
 * m = sum n_i a_i / N and the unbiased token variance v = sum n_i (a_i - m)^2 / (N - 1). A long
 * completion weighs more in m and v. Fewer than 2 tokens: all 0 (nothing to whiten by). */
export function tokenWhitened(values: readonly number[], lengths: readonly number[]): number[] {
  const N = lengths.reduce((a, b) => a + b, 0);
  if (N < 2) return values.map(() => 0);
  const m = values.reduce((a, v, i) => a + lengths[i] * v, 0) / N;
  const v = values.reduce((a, x, i) => a + lengths[i] * (x - m) ** 2, 0) / (N - 1);
  return values.map((x) => (x - m) / Math.sqrt(v + 1e-8));
}

/** GRPO's group-relative advantages (advantages with the grpo estimator). */
export function groupAdvantages(rewards: readonly number[], groupSize: number, opts: { scale: 'group' | 'batch' | 'none' }): number[] {
  return advantages(rewards, groupSize, { estimator: 'grpo', scale: opts.scale });
}

export function mean(xs: readonly number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0;
}

/** Standard deviation with `correction` subtracted from n in the divisor (as torch.std): 1, the
 * default, is the unbiased (n - 1) one; 0 the population one. 0 when n - correction < 1. */
export function std(xs: readonly number[], correction: 0 | 1 = 1): number {
  if (xs.length - correction < 1) return 0;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - correction));
}
