import { describe, expect, it } from 'vitest';
import { softOverlong, softOverlongReward } from '../rewards/overlong.ts';
import { BUILTIN_REWARDS, loadRewards, rewardSpecProblem, scoreBatch } from '../rewards/registry.ts';
import type { RewardBatch } from '../rewards/types.ts';

/** A batch of completions of the given token counts (the text is irrelevant to this reward). */
const batch = (tokens: number[] | undefined, maxCompletionTokens?: number): RewardBatch => {
  const n = tokens?.length ?? 2;
  return {
    prompts: new Array<string>(n).fill('p'),
    completions: new Array<string>(n).fill('c'),
    rows: Array.from({ length: n }, () => ({})),
    ...(tokens ? { completionTokens: tokens } : {}),
    ...(maxCompletionTokens !== undefined ? { maxCompletionTokens } : {}),
  };
};
const score = async (options: Record<string, unknown>, b: RewardBatch) =>
  softOverlongReward.make({ ...softOverlongReward.defaults, ...options })(b);

describe('softOverlong (DAPO eq. 13)', () => {
  // L_max = 10, cache = 4: free up to 6 tokens, then -(L - 6) / 4 down to -1 at 10, -1 beyond.
  it.each([
    [0, 0],
    [1, 0],
    [5, 0],
    [6, 0],
    [7, -0.25],
    [8, -0.5],
    [9, -0.75],
    [10, -1],
    [11, -1],
    [1000, -1],
  ])('L=%d -> %d', (len, want) => {
    expect(softOverlong(len, 10, 4)).toBe(want);
  });

  it("matches the paper at DAPO's own setting (L_max 20480, cache 4096)", () => {
    expect(softOverlong(16384, 20480, 4096)).toBe(0);
    expect(softOverlong(16385, 20480, 4096)).toBeCloseTo(-1 / 4096, 12);
    expect(softOverlong(18432, 20480, 4096)).toBe(-0.5);
    expect(softOverlong(20480, 20480, 4096)).toBe(-1);
    expect(softOverlong(20481, 20480, 4096)).toBe(-1);
  });

  it('is a hard cliff at cache 0 and never divides by zero', () => {
    expect([9, 10, 11].map((l) => softOverlong(l, 10, 0))).toEqual([0, 0, -1]);
  });

  it('is 0 at best, -1 at worst and never increases with length', () => {
    for (const [maxLen, cache] of [
      [10, 4],
      [7, 7],
      [100, 20],
      [5, 1],
    ]) {
      let prev = 0;
      for (let l = 0; l <= maxLen + 3; l++) {
        const r = softOverlong(l, maxLen, cache);
        expect(r).toBeLessThanOrEqual(prev);
        expect(r).toBeGreaterThanOrEqual(-1);
        prev = r;
      }
    }
  });
});

describe('soft_overlong reward', () => {
  it("scores the batch's token counts, not the text length", async () => {
    const b = { ...batch([6, 7, 8, 10, 11]), completions: ['x'.repeat(100), '', 'a b', 'y', 'z'] };
    expect(await score({ max_length: 10, cache: 4 }, b)).toEqual([0, -0.25, -0.5, -1, -1]);
  });

  it("takes max_length from the batch (the stage's max_completion_length) when unset", async () => {
    expect(await score({ cache: 4 }, batch([6, 8, 10, 11], 10))).toEqual([0, -0.5, -1, -1]);
    // The option wins over the batch.
    expect(await score({ max_length: 12, cache: 4 }, batch([8, 10, 12], 10))).toEqual([0, -0.5, -1]);
  });

  it('defaults cache to 20% of max_length', async () => {
    // max_length 20 -> cache 4: free up to 16.
    expect(await score({}, batch([16, 17, 18, 20, 21], 20))).toEqual([0, -0.25, -0.5, -1, -1]);
    expect(await score({ max_length: 20480 }, batch([16384, 18432, 20480]))).toEqual([0, -0.5, -1]);
    // cache may be the whole length: the ramp starts at 0 tokens.
    expect(await score({ max_length: 4, cache: 4 }, batch([0, 1, 2, 4]))).toEqual([0, -0.25, -0.5, -1]);
  });

  it.each([
    [{ max_length: 0 }, /max_length must be a positive integer/],
    [{ max_length: -5 }, /max_length must be a positive integer/],
    [{ max_length: 10.5 }, /max_length must be a positive integer/],
    [{ max_length: '10' }, /max_length must be a positive integer/],
    [{ max_length: 10, cache: -1 }, /cache must be a non-negative integer/],
    [{ max_length: 10, cache: 1.5 }, /cache must be a non-negative integer/],
    [{ max_length: 10, cache: 'big' }, /cache must be a non-negative integer/],
    [{ max_length: 10, cache: 11 }, /cache \(11\) must not exceed max_length \(10\)/],
  ])('rejects bad options %j, naming the option', (options, message) => {
    expect(() => softOverlongReward.make({ ...softOverlongReward.defaults, ...options })).toThrow(message);
  });

  it('rejects a cache larger than the max_length taken from the batch', async () => {
    await expect(score({ cache: 50 }, batch([1], 10))).rejects.toThrow(/cache \(50\) must not exceed max_length \(10\)/);
  });

  it('names max_length when neither the option nor the batch gives it', async () => {
    await expect(score({ cache: 4 }, batch([3, 4]))).rejects.toThrow(/max_length is not set and the batch has no maxCompletionTokens/);
    await expect(score({}, batch([3], 0))).rejects.toThrow(/maxCompletionTokens must be a positive integer/);
  });

  it('says it needs token counts when the batch has none', async () => {
    await expect(score({ max_length: 10 }, batch(undefined))).rejects.toThrow(/soft_overlong needs token counts.*completionTokens/);
    await expect(score({ max_length: 10 }, { ...batch([3, 4]), completionTokens: [3] })).rejects.toThrow(
      /one count per completion: 1 for 2/,
    );
    await expect(score({ max_length: 10 }, batch([3, -1]))).rejects.toThrow(
      /a token count in completionTokens must be a non-negative integer, got -1/,
    );
  });
});

describe('soft_overlong through the registry', () => {
  it('is a built-in, loads with its defaults and scores through scoreBatch with a weight', async () => {
    expect(BUILTIN_REWARDS).toContain('soft_overlong');
    const [r] = await loadRewards([{ name: 'soft_overlong', weight: 2, options: { cache: 4 } }], '.');
    const res = await scoreBatch([r], batch([6, 7, 8, 10, 11], 10));
    expect(res.byFunction.soft_overlong).toEqual([0, -0.25, -0.5, -1, -1]);
    expect(res.total).toEqual([0, -0.5, -1, -2, -2]);
    expect(res.errors).toEqual([]);
  });

  it('sums with other rewards, which ignore the token counts', async () => {
    const rewards = await loadRewards([{ name: 'soft_overlong', options: { max_length: 10, cache: 4 } }, { name: 'format' }], '.');
    const b = { ...batch([8, 2]), completions: ['<think>a</think><answer>1</answer>', 'no'] };
    const res = await scoreBatch(rewards, b);
    expect(res.total).toEqual([0.5, 0]);
  });

  it('fails the call naming the reward when token counts are missing, or scores 0 with onError zero', async () => {
    const [r] = await loadRewards([{ name: 'soft_overlong', options: { max_length: 10 } }], '.');
    await expect(scoreBatch([r], batch(undefined))).rejects.toThrow(
      /reward 'soft_overlong', row 0: threw soft_overlong needs token counts/,
    );
    const res = await scoreBatch([r], batch(undefined), { onError: 'zero' });
    expect(res.total).toEqual([0, 0]);
    expect(res.errors[0]).toMatch(/soft_overlong needs token counts/);
  });

  it('names the reward and the option when an option is bad or unknown', async () => {
    await expect(loadRewards([{ name: 'soft_overlong', options: { max_length: -1 } }], '.')).rejects.toThrow(
      /reward 'soft_overlong': max_length must be a positive integer/,
    );
    await expect(loadRewards([{ name: 'soft_overlong', options: { cache: 0.5 } }], '.')).rejects.toThrow(
      /reward 'soft_overlong': cache must be/,
    );
    expect(rewardSpecProblem({ name: 'soft_overlong', options: { max_len: 10 } })?.message).toMatch(
      /unknown option 'max_len'; valid: max_length, cache/,
    );
  });

  it("keeps each row's token count when it looks for the row that throws", async () => {
    // The batch throws (one count is bad); the error must name that row, not row 0.
    const [r] = await loadRewards([{ name: 'soft_overlong', options: { max_length: 10 } }], '.');
    await expect(scoreBatch([r], batch([3, 4, 2.5]))).rejects.toThrow(
      /row 2: threw a token count in completionTokens must be a non-negative integer, got 2.5/,
    );
  });

  it('scoreBatch rejects completionTokens of the wrong length', async () => {
    await expect(scoreBatch([], { ...batch([1, 2]), completionTokens: [1] })).rejects.toThrow(/2 completions but 1 completionTokens/);
  });
});
