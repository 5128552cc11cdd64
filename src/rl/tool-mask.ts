// Which completion tokens the loss sees. In a multi-turn rollout a completion interleaves tokens the
// model sampled with tokens a tool wrote into its context (its output). Every token stays in the
// context of every forward pass (policy, old, reference), but only the model's own tokens carry
// policy loss, KL and entropy, and only they count in the token normalisers: a tool's output is not
// an action of the policy, and training on it would teach the model to predict the tool.

/** Per completion token: 1 where the model sampled it, 0 where a tool wrote it. Absent (null or
 * undefined): every token is the model's (single-turn). */
export type ModelTokenMask = readonly number[] | null | undefined;

/** How many of a completion's `length` tokens the model sampled. */
export function modelTokenCount(length: number, mask: ModelTokenMask): number {
  if (!mask) return length;
  let n = 0;
  for (let j = 0; j < length; j++) n += mask[j] ?? 1;
  return n;
}

/** The loss mask of rows of completions, row-major [rows, width]: `keep(row)` on the row's model
 * tokens, 0 on its tool tokens and past its end. */
export function lossMaskValues(
  lengths: readonly number[],
  width: number,
  keep: (row: number) => number,
  masks: (row: number) => ModelTokenMask,
): Float32Array {
  const out = new Float32Array(lengths.length * width);
  lengths.forEach((len, b) => {
    const k = keep(b),
      m = masks(b);
    const n = Math.min(width, len);
    for (let j = 0; j < n; j++) out[b * width + j] = k * (m ? (m[j] ?? 1) : 1);
  });
  return out;
}
