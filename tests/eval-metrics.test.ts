// Eval metrics (issue 12 item 9): rows without a reference are left out of pass@1, maj@k and pass@k
// and counted; maj@k votes on answers that verify as equal (0.5, 1/2 and \frac{1}{2} are one vote);
// pass@k for k > 1 with the unbiased estimator of Chen et al. 2021. Generation is mocked in the stage
// test: the completions are fixed, so every number is known by hand.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { UserError } from '../src/errors.ts';
import type { Completion } from '../src/model/generate.ts';
import { Tokenizer } from '../src/model/tokenizer.ts';
import type { Transformer } from '../src/model/transformer.ts';
import type { StageContext } from '../src/stages/context.ts';
import { parseRecipe, type EvalStage } from '../src/recipe/index.ts';
import { majorityCorrect, majorityVote, passAtK, runEval, summarizeEval, type EvalSamples } from '../src/stages/eval.ts';

// The texts generate() hands back, in order; the stage test fills it.
const canned = vi.hoisted(() => ({ texts: [] as string[] }));
vi.mock('../src/model/generate.ts', () => ({
  generate: (_model: unknown, _tok: unknown, prompts: number[][]): Completion[] =>
    prompts.map((_, i) => ({ tokens: [1, 2, 3], text: canned.texts[i], logprobs: [0, 0, 0], finishReason: 'stop' as const })),
}));

const made: string[] = [];
afterAll(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));

const tagged = (answer: string) => ` <think> working </think> <answer> ${answer} </answer>`;

/** C(n, k) exactly, in integers. */
function choose(n: number, k: number): bigint {
  if (k < 0 || k > n) return 0n;
  let r = 1n;
  for (let i = 1; i <= k; i++) r = (r * BigInt(n - k + i)) / BigInt(i);
  return r;
}

/** summarizeEval input: k completions per row, answers tagged, given accuracy scores. */
function samples(
  rows: Record<string, unknown>[],
  k: number,
  answers: string[],
  accuracy: (number | null)[] | null,
  passK?: number[],
): EvalSamples {
  const completions = answers.map(tagged);
  return {
    rows,
    k,
    prompts: completions.map(() => 'Q'),
    completions,
    lengths: completions.map(() => 10),
    byFunction: accuracy ? { accuracy } : {},
    rewardMeans: {},
    passK,
  };
}

describe('pass@k: the unbiased estimator 1 - C(n-c, k) / C(n, k)', () => {
  it('matches values worked out by hand', () => {
    expect(passAtK(5, 2, 2)).toBeCloseTo(1 - 3 / 10, 12); // 1 - C(3,2)/C(5,2)
    expect(passAtK(10, 3, 5)).toBeCloseTo(1 - 21 / 252, 12); // 1 - C(7,5)/C(10,5) = 11/12
    expect(passAtK(4, 1, 2)).toBeCloseTo(1 - 3 / 6, 12); // 1 - C(3,2)/C(4,2)
    expect(passAtK(8, 0, 4)).toBe(0); // nothing right: no draw has a right sample
    expect(passAtK(4, 3, 2)).toBe(1); // one wrong sample: every pair holds a right one
    expect(passAtK(4, 1, 4)).toBe(1); // k = n: solved at least once
    expect(passAtK(8, 3, 1)).toBeCloseTo(3 / 8, 12); // k = 1 is c/n
  });

  it('equals the exact combinatorial formula for every n <= 20, c <= n, k <= n', () => {
    for (let n = 1; n <= 20; n++) {
      for (let c = 0; c <= n; c++) {
        for (let k = 1; k <= n; k++) {
          const exact = 1 - Number(choose(n - c, k)) / Number(choose(n, k));
          expect(passAtK(n, c, k), `n ${n} c ${c} k ${k}`).toBeCloseTo(exact, 12);
        }
      }
    }
  });

  it('stays finite and in [0, 1] where the binomials overflow a double', () => {
    const v = passAtK(2000, 7, 1000);
    expect(Number.isFinite(v)).toBe(true);
    expect(v).toBeGreaterThan(0.99);
    expect(v).toBeLessThanOrEqual(1);
  });

  it('refuses k above the samples per prompt', () => {
    expect(() => passAtK(3, 1, 4)).toThrow(/pass@4 needs at least 4 samples per prompt, got 3/);
  });
});

describe('maj@k votes on answers that verify as equal', () => {
  it('["0.5", "1/2", "3"]: 0.5 and 1/2 are one vote of two, 0.5 wins', () => {
    expect(majorityVote(['0.5', '1/2', '3'])).toEqual({ answer: '0.5', samples: [0, 1], right: null });
  });

  it('three spellings of one half outvote two 3s, that the old count of identical strings picked', () => {
    const vote = majorityVote(['3', '3', '0.5', '1/2', '\\frac{1}{2}'], [0, 0, 1, 1, 1]);
    expect(vote).toEqual({ answer: '0.5', samples: [2, 3, 4], right: true });
    const completions = ['3', '3', '0.5', '1/2', '\\frac{1}{2}'].map(tagged);
    expect(majorityCorrect(completions, [0, 0, 1, 1, 1], '1/2')).toBe(true);
    // Without accuracy scores the majority answer is compared with the reference.
    expect(majorityCorrect(completions, null, '0.5')).toBe(true);
    expect(majorityCorrect(completions, null, '3')).toBe(false);
  });

  it('a tie goes to the answer given first; samples without an answer do not vote', () => {
    expect(majorityVote(['3', '0.5', '7', '1/2', '7'])?.answer).toBe('0.5'); // {0.5, 1/2} and {7} tie, 0.5 came first
    expect(majorityVote(['7', '0.5', '7', '1/2'])?.answer).toBe('7');
    expect(majorityVote([null, '4', null])).toEqual({ answer: '4', samples: [1], right: null });
    expect(majorityVote([null, null])).toBeNull();
  });

  it('answers of equal value that the accuracy reward told apart stay apart (Countdown: 3*8 vs (1+2)*8 for 24)', () => {
    expect(majorityVote(['3*8', '(1+2)*8', '3*8', '8*(2+1)', '8*(1+2)'], [0, 1, 0, 1, 1])).toEqual({
      answer: '(1+2)*8',
      samples: [1, 3, 4],
      right: true,
    });
  });
});

describe('summarizeEval', () => {
  it('a row without a reference does not lower pass@1, maj@k or pass@k, and is counted', () => {
    const rows = [
      { prompt: 'a', answer: '8', task: 'sum' },
      { prompt: 'b', task: 'chat' },
    ];
    // Row a: 1 of 2 right; row b has no reference, so the accuracy reward gave null.
    const report = summarizeEval(samples(rows, 2, ['8', '9', 'hello', 'hi'], [1, 0, null, null]));
    expect(report['pass@1']).toBe(0.5); // the old code divided by 2 rows: 0.25
    expect(report['maj@2']).toBe(1); // '8' came first; the old code: 0.5
    expect(report.prompts).toBe(2);
    expect(report.no_reference).toBe(1);
    expect(report['pass@2']).toBe(1); // 1 - C(1,2)/C(2,2)
    expect(report.by_task).toEqual({ sum: { prompts: 1, 'pass@1': 0.5 } });
    expect(report.mean_length).toBe(10); // over every completion, with or without a reference
  });

  it('without an accuracy reward the built-in one decides, and finds no reference the same way', () => {
    const rows = [{ prompt: 'a', answer: '1/2' }, { prompt: 'b' }];
    const report = summarizeEval(samples(rows, 2, ['0.5', '3', 'x', 'y'], null));
    expect(report['pass@1']).toBe(0.5); // the old code: 0, there was no accuracy score
    expect(report['maj@2']).toBe(1);
    expect(report.no_reference).toBe(1);
  });

  it('no row with a reference: the rates are null, not 0', () => {
    const report = summarizeEval(samples([{ prompt: 'a' }], 2, ['1', '2'], [null, null]));
    expect(report['pass@1']).toBeNull(); // the old code: 0
    expect(report.no_reference).toBe(1);
    expect(report['maj@2']).toBeNull();
    expect(report['pass@2']).toBeNull();
  });

  it('maj@k counts a majority written three ways as right', () => {
    const rows = [{ prompt: 'a', answer: '1/2' }];
    const report = summarizeEval(samples(rows, 5, ['3', '3', '0.5', '1/2', '\\frac{1}{2}'], [0, 0, 1, 1, 1]));
    expect(report['maj@5']).toBe(1); // the old vote picked '3'
    expect(report['pass@1']).toBeCloseTo(3 / 5, 12);
  });

  it('pass@k per prompt with the unbiased estimator, averaged over the prompts; default k = n', () => {
    const rows = [
      { prompt: 'a', answer: '1' },
      { prompt: 'b', answer: '2' },
    ];
    // Row a: c = 2 of n = 5; row b: c = 0.
    const acc = [1, 0, 1, 0, 0, 0, 0, 0, 0, 0];
    const answers = ['1', '0', '1', '0', '0', '0', '0', '0', '0', '0'];
    const report = summarizeEval(samples(rows, 5, answers, acc, [2, 3]));
    expect(report['pass@2']).toBeCloseTo((1 - 3 / 10 + 0) / 2, 12); // (0.7 + 0) / 2
    expect(report['pass@3']).toBeCloseTo((1 - 1 / 10 + 0) / 2, 12); // 1 - C(3,3)/C(5,3) = 0.9
    expect(report).not.toHaveProperty('pass@5');
    const byDefault = summarizeEval(samples(rows, 5, answers, acc));
    expect(byDefault['pass@5']).toBe(0.5); // row a solved at least once, row b never
    expect(Object.keys(byDefault).filter((key) => key.startsWith('pass@'))).toEqual(['pass@1', 'pass@5']);
  });

  it('a k above the samples per prompt is an error naming the fix', () => {
    let err: unknown;
    try {
      summarizeEval(samples([{ prompt: 'a', answer: '1' }], 2, ['1', '2'], [1, 0], [4]));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toMatch(/pass@4 needs at least 4 samples per prompt, but num_generations is 2/);
  });
});

describe('eval stage: recipe fields and the end-to-end path', () => {
  const dir = mkdtempSync(join(tmpdir(), 'r1-eval-metrics-'));
  made.push(dir);
  const TOKENIZER = resolve('tests/fixtures/tokenizer');
  const recipe = (evalFields: string) =>
    parseRecipe(
      `name: t\ntokenizer: { path: ${TOKENIZER} }\nstages:\n  - { type: eval, model: init, datasets: [rows.jsonl], template: 'Q: {prompt} A:'${evalFields} }\n`,
      join(dir, 'recipe.yaml'),
    );
  writeFileSync(
    join(dir, 'rows.jsonl'),
    [
      { prompt: 'What is 1/4 + 1/4?', answer: '1/2', task: 'frac' },
      { prompt: 'What is 3 + 4?', answer: '7', task: 'sum' },
      { prompt: 'Say hello.', task: 'chat' },
    ]
      .map((r) => JSON.stringify(r))
      .join('\n') + '\n',
  );

  it('pass_at_k: each k must be >= 2 and <= num_generations, checked when the recipe loads', () => {
    expect(() => recipe(', num_generations: 4, pass_at_k: [2, 8]')).toThrow(
      /stages\.0\.pass_at_k\.1: pass@8 needs at least 8 samples per prompt, but num_generations is 4/,
    );
    expect(() => recipe(', pass_at_k: [1]')).toThrow(/stages\.0\.pass_at_k\.0: pass@1 is always reported: list k >= 2/);
    const s = recipe('').stages[0] as EvalStage;
    expect(s.pass_at_k).toBeUndefined();
    expect((recipe(', num_generations: 8, pass_at_k: [2, 8]').stages[0] as EvalStage).pass_at_k).toEqual([2, 8]);
  });

  it('runEval writes no_reference, the canonical maj@k and pass@k to eval.json, metrics.jsonl and the summary', async () => {
    const r = recipe(', num_generations: 4, pass_at_k: [2, 4]');
    // Row 1 (1/2): 3, 0.5, 1/2, \frac{1}{2}: c = 3, the majority is one half. Row 2 (7): c = 1, all
    // distinct, 7 first. Row 3 has no reference.
    canned.texts = [...['3', '0.5', '1/2', '\\frac{1}{2}'], ...['7', '1', '2', '5'], ...['hello', 'hi', 'hey', 'yo']].map(tagged);
    const stageDir = join(dir, 'run', 'eval');
    const ctx = {
      recipe: r,
      index: 0,
      runDir: join(dir, 'run'),
      stageDir,
      hash: '',
      tokenizer: Tokenizer.load(TOKENIZER),
      loadModel: () => ({ config: { max_position_embeddings: 512 }, dispose: () => {} }) as unknown as Transformer,
      readDatasets: async () =>
        readFileSync(join(dir, 'rows.jsonl'), 'utf8')
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as Record<string, unknown>),
    } satisfies StageContext;
    mkdirSync(stageDir, { recursive: true });
    const { summary } = await runEval(ctx, r.stages[0] as EvalStage);
    const report = JSON.parse(readFileSync(join(stageDir, 'eval.json'), 'utf8'));
    const want = {
      prompts: 3,
      k: 4,
      no_reference: 1,
      'pass@1': (3 / 4 + 1 / 4) / 2, // the old code: 1 / 3
      'maj@4': 1, // the old code: '3' won row 1's four-way tie, 1 / 3
      'pass@2': (1 + (1 - 3 / 6)) / 2, // row 1: C(1,2) = 0, so 1; row 2: 1 - C(3,2)/C(4,2)
      'pass@4': 1,
    };
    expect(report).toMatchObject(want);
    expect(summary).toMatchObject(want);
    const logged = readFileSync(join(stageDir, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(logged[0]).toMatchObject(want);
    expect(report.by_task).toEqual({ frac: { prompts: 1, 'pass@1': 0.75 }, sum: { prompts: 1, 'pass@1': 0.25 } });
  });
});
