import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UserError } from '../src/errors.ts';
import {
  BUILTIN_REWARDS,
  RewardError,
  concatScores,
  isModulePath,
  loadRewards,
  meanStd,
  scoreBatch,
  type LoadedReward,
} from '../rewards/registry.ts';
import type { RewardBatch } from '../rewards/types.ts';

const DIR = join(import.meta.dirname, 'fixtures', 'rewards');
const batch = (completions: string[], rows: Record<string, unknown>[] = completions.map(() => ({}))): RewardBatch => ({
  prompts: completions.map(() => ''),
  completions,
  rows,
});
const fixed = (name: string, values: (number | null)[], weight = 1): LoadedReward => ({ name, weight, fn: () => values });

describe('loadRewards', () => {
  it('loads every built-in by name with its default options', async () => {
    const rewards = await loadRewards(
      BUILTIN_REWARDS.map((name) => ({ name })),
      DIR,
    );
    expect(rewards.map((r) => r.name)).toEqual([...BUILTIN_REWARDS]);
    expect(rewards.every((r) => r.weight === 1 && typeof r.fn === 'function')).toBe(true);
    expect(BUILTIN_REWARDS).toEqual(
      expect.arrayContaining(['accuracy', 'format', 'format_soft', 'tag_count', 'language', 'repetition', 'cosine_length', 'code']),
    );
  });

  it('loads TypeScript and JavaScript user modules relative to the base folder, passing options', async () => {
    const [brevity, plain] = await loadRewards(
      [{ name: './my-rewards.ts#brevity', weight: 0.5, options: { scale: 2 } }, { name: './plain.js' }],
      DIR,
    );
    expect(brevity.name).toBe('brevity');
    expect(brevity.weight).toBe(0.5);
    expect(await brevity.fn(batch(['a', 'abc']))).toEqual([1, 0.5]);
    expect(plain.name).toBe('plain');
    expect(await plain.fn(batch(['please', 'no']))).toEqual([1, 0]);
  });

  it('names the spec when a module, an export or a built-in is missing', async () => {
    const fails = async (name: string, re: RegExp) => {
      const err = await loadRewards([{ name }], DIR).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UserError);
      expect((err as Error).message).toMatch(re);
    };
    await fails('./missing.ts#x', /reward '.\/missing.ts#x': module not found: .*missing\.ts/);
    await fails('./my-rewards.ts#nope', /reward '.\/my-rewards.ts#nope': .*has no export 'nope'; its function exports: .*brevity/);
    await fails('./my-rewards.ts#notAFunction', /export 'notAFunction' is a number, not a function/);
    await fails('./my-rewards.ts', /has no export 'default'/);
    await fails('./broken.ts', /reward '.\/broken.ts': cannot load .*broken\.ts: module top-level failure/);
    await fails('acuracy', /unknown reward 'acuracy' \(did you mean 'accuracy'\?\); built-ins: accuracy, format/);
  });

  it('validates options and weights of built-ins', async () => {
    await expect(loadRewards([{ name: 'format', options: { strict: true } }], DIR)).rejects.toThrow(
      /reward 'format': unknown option 'strict'; valid: \(none\)/,
    );
    await expect(loadRewards([{ name: 'repetition', options: { ngram: 2 } }], DIR)).rejects.toThrow(
      /unknown option 'ngram'; valid: ngram_size, max_penalty/,
    );
    await expect(loadRewards([{ name: 'language', options: { language: 'xx' } }], DIR)).rejects.toThrow(
      /reward 'language': unknown language 'xx'/,
    );
    await expect(loadRewards([{ name: 'format', weight: NaN }], DIR)).rejects.toThrow(/weight must be a finite number/);
  });

  it('keeps names unique', async () => {
    const rewards = await loadRewards([{ name: 'format' }, { name: 'format', weight: 2 }], DIR);
    expect(rewards.map((r) => r.name)).toEqual(['format', 'format_2']);
  });

  it('tells module paths from built-in names', () => {
    for (const p of ['./a.ts', '../x/y.js#f', '/abs/r.mjs', 'rewards.ts#f', 'C:\\r\\x.ts']) expect(isModulePath(p)).toBe(true);
    for (const p of ['accuracy', 'my_reward', 'format_soft']) expect(isModulePath(p)).toBe(false);
  });
});

describe('scoreBatch', () => {
  it('sums weighted rewards with null as 0 and reports each function with mean/std over applicable rows', async () => {
    const res = await scoreBatch([fixed('a', [1, 0, 1, null]), fixed('b', [0.5, 0.5, null, null], -2)], batch(['w', 'x', 'y', 'z']));
    expect(res.total).toEqual([0, -1, 1, 0]);
    expect(res.byFunction).toEqual({ a: [1, 0, 1, null], b: [0.5, 0.5, null, null] });
    expect(res.stats.a.mean).toBeCloseTo(2 / 3, 12);
    expect(res.stats.a.std).toBeCloseTo(Math.sqrt(2 / 9), 12);
    expect(res.stats.b).toEqual({ mean: 0.5, std: 0 });
    expect(res.errors).toEqual([]);
  });

  it('runs built-ins and async user functions together', async () => {
    const rewards = await loadRewards([{ name: 'accuracy' }, { name: 'format', weight: 0.5 }, { name: './my-rewards.ts#hasKind' }], DIR);
    const res = await scoreBatch(
      rewards,
      batch(['<think>t</think><answer>4</answer>', '<answer>5</answer>'], [{ answer: 4, kind: 'm' }, { answer: 4 }]),
    );
    expect(res.byFunction).toEqual({ accuracy: [1, 0], format: [1, 0], hasKind: [1, null] });
    expect(res.total).toEqual([2.5, 0]);
  });

  const cases: [string, RegExp][] = [
    ['./my-rewards.ts#throwsOnBad', /^reward 'throwsOnBad', row 1: threw cannot score "bad"$/],
    ['./my-rewards.ts#throwsAlways', /^reward 'throwsAlways', row 0: threw always broken$/],
    ['./my-rewards.ts#wrongLength', /^reward 'wrongLength': returned 2 values for 3 completions$/],
    ['./my-rewards.ts#returnsNaN', /^reward 'returnsNaN', row 2: returned NaN$/],
    ['./my-rewards.ts#returnsInfinity', /^reward 'returnsInfinity', row 0: returned Infinity$/],
    ['./my-rewards.ts#returnsString', /^reward 'returnsString', row 1: returned the string "0.5", expected a number or null$/],
    ['./my-rewards.ts#returnsObject', /^reward 'returnsObject': returned object \{"score":1\}, expected an array of 3 numbers or nulls$/],
  ];

  it.each(cases)('%s fails the batch with a located error', async (name, re) => {
    const rewards = await loadRewards([{ name }], DIR);
    const err = await scoreBatch(rewards, batch(['ok', 'bad', 'ok'])).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RewardError);
    expect((err as Error).message).toMatch(re);
  });

  it.each(cases)('%s scores 0 with a warning when onError is zero', async (name, re) => {
    const rewards = await loadRewards([{ name }, { name: './plain.js', weight: 2 }], DIR);
    const res = await scoreBatch(rewards, batch(['please', 'bad', 'ok']), { onError: 'zero' });
    expect(res.errors).toHaveLength(1);
    expect(res.errors[0]).toMatch(new RegExp(re.source.replace(/\$$/, '')));
    expect(res.errors[0]).toMatch(/scored 0 for this batch$/);
    expect(Object.values(res.byFunction)[0]).toEqual([0, 0, 0]);
    expect(res.total).toEqual([2, 0, 0]);
  });

  it('reports a batch-only failure when no single row throws', async () => {
    const flaky: LoadedReward = {
      name: 'flaky',
      weight: 1,
      fn: (b) => {
        if (b.completions.length > 1) throw new Error('batch too big');
        return [1];
      },
    };
    await expect(scoreBatch([flaky], batch(['a', 'b']))).rejects.toThrow(
      /reward 'flaky': threw batch too big on the batch of 2 \(no single row throws\)/,
    );
  });

  it('rejects a batch whose parts differ in length', async () => {
    await expect(scoreBatch([], { prompts: [''], completions: ['a', 'b'], rows: [{}, {}] })).rejects.toThrow(/2 completions but 1 prompts/);
  });

  it('meanStd skips nulls and is 0 for none', () => {
    expect(meanStd([])).toEqual({ mean: 0, std: 0 });
    expect(meanStd([null, null])).toEqual({ mean: 0, std: 0 });
    expect(meanStd([1, 3, null])).toEqual({ mean: 2, std: 1 });
  });
});

describe('concatScores', () => {
  it('joins the scores of consecutive parts as if the batch had been scored whole', async () => {
    const rewards: LoadedReward[] = [
      { name: 'len', weight: 2, fn: (b: RewardBatch) => b.completions.map((c) => c.length) },
      { name: 'odd', weight: 1, fn: (b: RewardBatch) => b.completions.map((c) => (c.length % 2 ? 1 : null)) },
    ];
    const completions = ['a', 'bb', 'ccc', 'dddd', 'eeeee'];
    const batch = (cs: string[]): RewardBatch => ({ prompts: cs.map(() => 'p'), completions: cs, rows: cs.map(() => ({})) });
    const whole = await scoreBatch(rewards, batch(completions));
    const joined = concatScores([
      await scoreBatch(rewards, batch(completions.slice(0, 2))),
      await scoreBatch(rewards, batch(completions.slice(2))),
    ]);
    expect(joined).toEqual(whole);
    expect(joined.total).toEqual([3, 4, 7, 8, 11]);
  });
});
