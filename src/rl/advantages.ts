/** Group-relative advantages (GRPO): each reward minus its group's mean, divided by
 *   'group': the group's unbiased std + 1e-4 (as TRL), 'batch': the whole batch's std + 1e-4,
 *   'none': nothing (Dr. GRPO).
 * Groups are consecutive runs of `groupSize` rewards. A group whose rewards are all equal gets 0. */
export function groupAdvantages(rewards: readonly number[], groupSize: number, opts: { scale: 'group' | 'batch' | 'none' }): number[] {
  if (!Number.isInteger(groupSize) || groupSize < 1) throw new Error(`groupSize must be a positive integer (got ${groupSize})`);
  if (rewards.length % groupSize !== 0) throw new Error(`${rewards.length} rewards do not split into groups of ${groupSize}`);
  const out = new Array<number>(rewards.length);
  const batchStd = std(rewards);
  for (let g = 0; g < rewards.length; g += groupSize) {
    const group = rewards.slice(g, g + groupSize);
    const m = mean(group);
    const scale = opts.scale === 'group' ? std(group) + 1e-4 : opts.scale === 'batch' ? batchStd + 1e-4 : 1;
    const allEqual = group.every((r) => r === group[0]);
    for (let i = 0; i < groupSize; i++) out[g + i] = allEqual ? 0 : (group[i] - m) / scale;
  }
  return out;
}

export function mean(xs: readonly number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0;
}

/** Unbiased (n - 1) standard deviation; 0 for fewer than two values. */
export function std(xs: readonly number[]): number {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
}
