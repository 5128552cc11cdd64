// N-gram repetition penalty (open-r1): max_penalty * (1 - distinct n-grams / n-grams), so 0 for no
// repeats and max_penalty (negative) for a text that repeats one n-gram forever. Chinese and Japanese
// text is split per character, other text per whitespace-separated word.
import type { BuiltinReward, RewardBatch, RewardValue } from './types.ts';

const CJK = /[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]/;

/** Lower-cased words, with every CJK character a word of its own. */
export function words(text: string): string[] {
  const out: string[] = [];
  for (const w of text.toLowerCase().split(/\s+/)) {
    if (!w) continue;
    if (!CJK.test(w)) {
      out.push(w);
      continue;
    }
    let run = '';
    for (const ch of w) {
      if (CJK.test(ch)) {
        if (run) out.push(run);
        out.push(ch);
        run = '';
      } else run += ch;
    }
    if (run) out.push(run);
  }
  return out;
}

/** Share of n-grams that repeat an earlier one: 0 for none (or too short a text), towards 1 for loops. */
export function repetitionRate(text: string, n: number): number {
  const w = words(text);
  if (w.length < n) return 0;
  const seen = new Set<string>();
  let total = 0;
  for (let i = 0; i + n <= w.length; i++, total++) seen.add(w.slice(i, i + n).join('\u0001'));
  return 1 - seen.size / total;
}

export const repetition: BuiltinReward = {
  defaults: { ngram_size: 3, max_penalty: -1 },
  doc: 'max_penalty * (share of repeated word n-grams of size ngram_size): 0 without repeats, max_penalty (<= 0) at worst',
  make(options) {
    const n = Number(options.ngram_size),
      max = Number(options.max_penalty);
    if (!Number.isInteger(n) || n < 1) throw new Error(`ngram_size must be a positive integer, got ${String(options.ngram_size)}`);
    if (!(max <= 0)) throw new Error(`max_penalty must be a number <= 0, got ${String(options.max_penalty)}`);
    // `+ 0` turns -0 (no repeats times a negative penalty) into 0.
    return (b: RewardBatch): RewardValue[] => b.completions.map((c) => max * repetitionRate(c, n) + 0);
  },
};
