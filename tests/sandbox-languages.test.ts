// The sandbox's languages table (sandbox/languages.ts) and the `reuse` setting: each place a user can
// set it (the recipe's sandbox block, the code reward's options, `r1 sandbox --reuse`) must reach the
// pool. No sandbox process is started here: the pool's `run` is replaced where a run is needed.
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { makeCodeReward, sandboxOptions, sandboxPool } from '../rewards/code.ts';
import { loadRewards } from '../rewards/registry.ts';
import { REUSES, SandboxPool } from '../sandbox/index.ts';
import { LANGUAGES, LANGUAGE_NAMES, isLanguage, languageList, languageNamed } from '../sandbox/languages.ts';
import { parseProgramLine, poolOptions } from '../src/cli/commands/sandbox.ts';
import { parseRecipe } from '../src/recipe/load.ts';
import { SandboxConfig } from '../src/recipe/schema.ts';

const DIR = join(import.meta.dirname, 'fixtures', 'recipes');
const RECIPE = `name: t\ntokenizer:\n  train: { datasets: [data/corpus.jsonl] }\nstages:\n  - { type: pretrain, datasets: [data/corpus.jsonl], max_steps: 1 }\n`;
const batch = (completions: string[], rows: Record<string, unknown>[]) => ({
  prompts: completions.map(() => 'p'),
  completions,
  rows,
  answers: completions.map(() => null),
  step: 0,
});

afterEach(() => vi.restoreAllMocks());

describe('the languages table', () => {
  it('names each language by its key, an alias or its extension, and nothing else', () => {
    expect(LANGUAGE_NAMES).toEqual(['javascript', 'python']);
    for (const l of LANGUAGE_NAMES) {
      expect(languageNamed(l.toUpperCase())).toBe(l);
      expect(languageNamed(LANGUAGES[l].extension.slice(1))).toBe(l);
      for (const a of LANGUAGES[l].aliases) expect(languageNamed(` ${a} `)).toBe(l);
    }
    expect(languageNamed('rust')).toBeNull();
    expect(languageNamed('toString')).toBeNull();
    expect(isLanguage('constructor')).toBe(false);
    expect(languageList('"')).toBe('"javascript" or "python"');
  });

  it('gives the pool its recycling defaults and refuses other languages by the table', async () => {
    const pool = new SandboxPool({ isolation: 'process', notice: () => {} });
    expect(Object.keys(pool.stats)).toEqual(LANGUAGE_NAMES);
    await expect(pool.run({ language: 'rust' as never, code: '', tests: [] })).rejects.toThrow(
      'language: javascript or python, got "rust"',
    );
    await pool.destroy();
  });

  it("the CLI accepts exactly the table's languages", () => {
    expect(parseProgramLine('{"language":"ruby","code":"x","tests":[]}')).toBe(
      'field "language" must be "javascript" or "python", got "ruby"',
    );
    for (const l of LANGUAGE_NAMES)
      expect(parseProgramLine(JSON.stringify({ language: l, code: LANGUAGES[l].doubler, tests: [] }))).toMatchObject({ language: l });
  });
});

describe('reuse reaches the pool', () => {
  it('from the recipe: sandbox.reuse, default distinct, documented, bad values named', () => {
    expect(parseRecipe(RECIPE, join(DIR, 'inline.yaml')).sandbox.reuse).toBe('distinct');
    expect(parseRecipe(RECIPE + 'sandbox: { reuse: never }\n', join(DIR, 'inline.yaml')).sandbox).toEqual({
      isolation: 'standard',
      reuse: 'never',
    });
    expect(() => parseRecipe(RECIPE + 'sandbox: { reuse: sometimes }\n', join(DIR, 'inline.yaml'))).toThrow(/sandbox\.reuse/);
    const reuse = SandboxConfig.shape.reuse.unwrap();
    expect(reuse.options).toEqual([...REUSES]);
    expect(SandboxConfig.shape.reuse.description).toMatch(/distinct.*never.*any/s);
  });

  it('from the recipe through the code reward to the pool it runs programs in', async () => {
    const seen: string[] = [];
    vi.spyOn(SandboxPool.prototype, 'run').mockImplementation(async function (this: SandboxPool) {
      seen.push(this.reuse);
      return { passed: 1, total: 1, results: [{ status: 'pass' }] };
    });
    const row = { tests: [{ input: '', output: '' }] };
    for (const [defaults, options, want] of [
      [{ isolation: 'process', reuse: 'never' }, {}, 'never'],
      [{ isolation: 'process', reuse: 'never' }, { reuse: 'any' }, 'any'],
      [{ isolation: 'process' }, {}, 'distinct'],
    ] as const) {
      const [code] = await loadRewards([{ name: 'code', options }], DIR, { sandbox: defaults });
      expect(await code.fn(batch(['```python\nprint()\n```'], [row]))).toEqual([1]);
      await code.close?.();
      expect(seen.pop()).toBe(want);
    }
  });

  it("from the code reward's options, checked when the reward is made", async () => {
    expect(sandboxOptions({ reuse: 'never', workers: 2, isolation: 'process' })).toMatchObject({
      reuse: 'never',
      workers: 2,
      isolation: 'process',
    });
    const pool = await sandboxPool(sandboxOptions({ reuse: 'any', isolation: 'process' }));
    expect(pool.reuse).toBe('any');
    await pool.destroy();
    await expect(sandboxPool(sandboxOptions({ reuse: 'sometimes', isolation: 'process' }))).rejects.toThrow(
      'sandbox reuse: one of distinct, never, any, got "sometimes"',
    );
    expect(() => makeCodeReward({ workers: 'two' })).toThrow('option workers: a positive integer, got "two"');
    let given: unknown;
    const fn = makeCodeReward(
      { reuse: 'never' },
      async (o) => ((given = o), { run: async () => ({ passed: 0, total: 1, results: [{ status: 'fail' }] }), destroy: async () => {} }),
    );
    await fn(batch(['```js\n1\n```'], [{ tests: [{ input: '', output: '1' }] }]));
    expect(given).toMatchObject({ reuse: 'never' });
  });

  it('from r1 sandbox --reuse', async () => {
    for (const reuse of REUSES) {
      const pool = new SandboxPool({ ...poolOptions({ reuse, isolation: 'process' }), notice: () => {} });
      expect(pool.reuse).toBe(reuse);
      await pool.destroy();
    }
    expect(() => new SandboxPool(poolOptions({ reuse: 'sometimes', isolation: 'process' }))).toThrow(
      'sandbox reuse: one of distinct, never, any, got "sometimes"',
    );
  });
});
