// DAPO's soft overlong punishment (Yu et al. 2025, eq. 13; TRL's get_soft_overlong_punishment): no
// penalty up to max_length - cache tokens, then a linear ramp down to -1 at max_length, and -1 beyond.
// Lengths are in tokens, so the batch must carry completionTokens (the GRPO stage passes them).
import type { BuiltinReward, RewardBatch, RewardValue } from './types.ts';

/** The share of max_length that is the soft zone when `cache` is not set (DAPO: 4096 of 20480). */
export const DEFAULT_CACHE_SHARE = 0.2;

/** The punishment of a completion of `len` tokens: 0, then ((maxLen - cache) - len) / cache, then -1. */
export function softOverlong(len: number, maxLen: number, cache: number): number {
  const free = maxLen - cache;
  if (len <= free) return 0;
  if (len <= maxLen) return (free - len) / cache;
  return -1;
}

const isCount = (v: unknown, min: number): v is number => typeof v === 'number' && Number.isInteger(v) && v >= min;

export const softOverlongReward: BuiltinReward = {
  defaults: { max_length: null, cache: null },
  doc:
    'DAPO soft overlong punishment on the completion length in tokens: 0 up to max_length - cache, linear to -1 at ' +
    "max_length, -1 beyond; max_length null = the stage's max_completion_length, cache null = 20% of max_length (DAPO: 20480 and 4096)",
  make(options) {
    const { max_length: maxOpt, cache: cacheOpt } = options;
    if (maxOpt != null && !isCount(maxOpt, 1))
      throw new Error(`max_length must be a positive integer (tokens) or null, got ${String(maxOpt)}`);
    if (cacheOpt != null && !isCount(cacheOpt, 0))
      throw new Error(`cache must be a non-negative integer (tokens) or null, got ${String(cacheOpt)}`);
    if (maxOpt != null && cacheOpt != null && cacheOpt > maxOpt)
      throw new Error(`cache (${cacheOpt}) must not exceed max_length (${maxOpt})`);
    return (b: RewardBatch): RewardValue[] => {
      let maxLen = maxOpt;
      if (maxLen == null) {
        const m = b.maxCompletionTokens;
        if (m === undefined) {
          throw new Error(
            "max_length is not set and the batch has no maxCompletionTokens (the stage's max_completion_length); set the option max_length",
          );
        }
        if (!isCount(m, 1)) throw new Error(`the batch's maxCompletionTokens must be a positive integer, got ${String(m)}`);
        maxLen = m;
      }
      const cache = cacheOpt ?? Math.round(DEFAULT_CACHE_SHARE * maxLen);
      if (cache > maxLen) throw new Error(`cache (${cache}) must not exceed max_length (${maxLen})`);
      const tokens = b.completionTokens;
      if (tokens === undefined) {
        throw new Error(
          "soft_overlong needs token counts: the batch has no completionTokens (the caller must count each completion's tokens)",
        );
      }
      if (!Array.isArray(tokens) || tokens.length !== b.completions.length) {
        throw new Error(
          `the batch's completionTokens must hold one count per completion: ${Array.isArray(tokens) ? tokens.length : String(tokens)} for ${b.completions.length}`,
        );
      }
      return tokens.map((len) => {
        if (!isCount(len, 0)) throw new Error(`a token count in completionTokens must be a non-negative integer, got ${String(len)}`);
        return softOverlong(len, maxLen, cache);
      });
    };
  },
};
