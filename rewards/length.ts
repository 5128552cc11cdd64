// Cosine-scaled length reward (open-r1, after Yeo et al. 2025): correct answers earn more when short,
// wrong answers are penalised less when long (the model may still be thinking), both on a half
// cosine over the length up to max_len.
import { accuracyScore } from './accuracy.ts';
import { withPromptTag } from './tags.ts';
import type { BuiltinReward, RewardBatch, RewardValue } from './types.ts';

export type CosineOptions = { minCorrect: number; maxCorrect: number; minWrong: number; maxWrong: number; maxLen: number };

/** The reward for a completion of `len` units that is correct or not. */
export function cosineScaled(len: number, correct: boolean, o: CosineOptions): number {
  const progress = Math.min(1, len / o.maxLen);
  const cosine = Math.cos(progress * Math.PI);
  // Correct: from maxCorrect (empty) down to minCorrect (max_len). Wrong: from minWrong up to maxWrong.
  const [lo, hi] = correct ? [o.minCorrect, o.maxCorrect] : [o.maxWrong, o.minWrong];
  return lo + 0.5 * (hi - lo) * (1 + cosine);
}

export const cosineLength: BuiltinReward = {
  defaults: {
    min_value_correct: 0.5,
    max_value_correct: 1,
    min_value_wrong: -1,
    max_value_wrong: -0.5,
    max_len: 1000,
    unit: 'chars',
    field: null,
  },
  doc: 'cosine-scaled length reward: short correct answers best, long wrong answers least penalised; unit chars or words',
  make(options) {
    const o: CosineOptions = {
      minCorrect: Number(options.min_value_correct),
      maxCorrect: Number(options.max_value_correct),
      minWrong: Number(options.min_value_wrong),
      maxWrong: Number(options.max_value_wrong),
      maxLen: Number(options.max_len),
    };
    if (!(o.maxLen > 0)) throw new Error(`max_len must be positive, got ${String(options.max_len)}`);
    if (options.unit !== 'chars' && options.unit !== 'words')
      throw new Error(`unit must be 'chars' or 'words', got ${String(options.unit)}`);
    const field = options.field as string | null;
    const size = (s: string) => (options.unit === 'words' ? s.split(/\s+/).filter(Boolean).length : s.length);
    return (b: RewardBatch): RewardValue[] =>
      b.completions.map((c, i) => {
        const row = b.rows[i] ?? {};
        const acc = accuracyScore(withPromptTag(b.prompts[i], c), row[field ?? 'answer'] ?? (field ? undefined : row.solution));
        return acc === null ? null : cosineScaled(size(c), acc === 1, o);
      });
  },
};
