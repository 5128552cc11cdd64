import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { codeLanguage, lastCodeBlock, makeCodeReward, rowTests } from '../rewards/code.ts';
import type { Program as CodeJob } from '../sandbox/index.ts';
import { format, formatSoft, softFormat, strictFormat, tagCount } from '../rewards/format.ts';
import { language, languageCode, languageShare } from '../rewards/language.ts';
import { cosineLength, cosineScaled } from '../rewards/length.ts';
import { repetition, repetitionRate, words } from '../rewards/repetition.ts';
import { chainOfThought } from '../rewards/tags.ts';
import type { RewardBatch } from '../rewards/types.ts';

const batch = (
  completions: string[],
  rows: Record<string, unknown>[] = completions.map(() => ({})),
  prompts = completions.map(() => ''),
): RewardBatch => ({
  prompts,
  completions,
  rows,
});

// [completion, strict, soft, tag count]
const FORMAT: [string, number, number, number][] = [
  ['<think>reason</think><answer>42</answer>', 1, 1, 1],
  ['<think>\nreason\n</think>\n<answer>\n42\n</answer>', 1, 1, 1],
  ['  <think>reason</think>  <answer>42</answer>\n', 1, 1, 1],
  ['<think>推理过程</think><answer>四十二</answer>', 1, 1, 1],
  ['<think>reason</think>', 0, 0, 0.5],
  ['<answer>42</answer>', 0, 0, 0.5],
  ['', 0, 0, 0],
  ['just text', 0, 0, 0],
  ['<think>reason</think> extra <answer>42</answer>', 0, 0, 1],
  ['<think>reason</think><answer>42</answer> trailing', 0, 1, 1],
  ['preamble <think>reason</think><answer>42</answer>', 0, 1, 1],
  ['<answer>42</answer><think>reason</think>', 0, 0, 1],
  ['<think>a</think><think>b</think><answer>42</answer>', 0, 1, 0.5],
  ['<think>reason</think><answer>1</answer><answer>2</answer>', 0, 1, 0.5],
  ['<think></think><answer>42</answer>', 0, 1, 1],
  ['<think>reason</think><answer> </answer>', 0, 1, 1],
  ['<think>reason<answer>42</answer>', 0, 0, 0.75],
  ['<think>reason</think><answer>42', 0, 0, 0.75],
  ['<Think>reason</Think><Answer>42</Answer>', 0, 0, 0],
  ['<think>reason</think>\n\n\n<answer>42</answer>', 1, 1, 1],
  ['<think>a <answer>x</answer> b</think><answer>42</answer>', 0, 1, 0.5],
  ['</think><answer>42</answer>', 0, 0, 0.75],
  ['<think>reason</ think><answer>42</answer>', 0, 0, 0.75],
  ['<think>' + 'long '.repeat(100_000) + '</think><answer>42</answer>', 1, 1, 1],
];

describe('format rewards', () => {
  it.each(FORMAT)('%j -> strict %d, soft %d, tags %d', (c, strict, soft, tags) => {
    expect(strictFormat(c)).toBe(strict);
    expect(softFormat(c)).toBe(soft);
    expect(tagCount(c)).toBe(tags);
  });

  it('reads the <think> the R1-Zero prompt already opened', async () => {
    const fn = format.make({});
    const completions = ['reason</think><answer>42</answer>', 'reason</think><answer>42</answer>'];
    expect(await fn(batch(completions, [{}, {}], ['Assistant: <think>', 'Assistant:']))).toEqual([1, 0]);
    expect(await formatSoft.make({})(batch(completions, [{}, {}], ['Assistant: <think>\n', 'x']))).toEqual([1, 0]);
  });

  it('tag count is a multiple of 0.25 in [0, 1] and 1 whenever strict format holds', () => {
    const piece = fc.constantFrom('<think>', '</think>', '<answer>', '</answer>', 'x', ' ', '\n', '42', '<');
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 12 }), (ps) => {
        const c = ps.join('');
        const t = tagCount(c);
        return t >= 0 && t <= 1 && (t * 4) % 1 === 0 && (strictFormat(c) === 0 || (t === 1 && softFormat(c) === 1));
      }),
    );
  });
});

describe('hostile completions', () => {
  // Each of these made a quadratic scan possible somewhere; all must finish in linear time.
  const hostile = [
    '<think>' + '</think>'.repeat(100_000),
    '<think>' + '</think>    '.repeat(50_000) + ' '.repeat(100_000),
    '\\['.repeat(100_000) + '```'.repeat(50_000),
    '$'.repeat(200_000),
    '<answer>'.repeat(100_000),
    'the answer is '.repeat(30_000),
    '我'.repeat(300_000),
  ];
  it.each(hostile.map((h, i) => [i, h]))('case %d scores in every built-in', async (_i, c) => {
    const b = batch([c as string], [{ answer: '1', language: 'en' }]);
    const fns = [
      format.make({}),
      formatSoft.make({}),
      language.make({ language: 'en', field: 'language' }),
      repetition.make({ ngram_size: 3, max_penalty: -1 }),
      cosineLength.make(cosineLength.defaults),
    ];
    for (const fn of fns) {
      const [v] = await fn(b);
      expect(v === null || Number.isFinite(v)).toBe(true);
    }
    expect(strictFormat(c as string)).toBe(0);
    expect(tagCount(c as string)).toBeLessThanOrEqual(1);
  });
});

// [chain of thought, target language, share]
const LANGUAGE: [string, string, number | null][] = [
  ['<think>We add the two numbers and check the result.</think>', 'en', 1],
  ['<think>我们把两个数相加，然后检查结果。</think>', 'zh', 1],
  ['<think>我们把两个数相加</think>', 'en', 0],
  ['<think>We add 两个数</think>', 'en', 2 / 5],
  ['<think>We add 两个数</think>', 'zh', 3 / 5],
  ['<think>首先 compute the sum</think>', 'zh', 2 / 5],
  ['<think>设 x 为未知数</think>', 'zh', 1],
  ['<think>Let $\\frac{a}{b} = 3$ so we are done</think>', 'en', 1],
  ['<think>计算 $\\sqrt{x^2 + y^2}$ 的值</think>', 'zh', 1],
  ['<think>代码如下 ```python\nprint("hello world")\n``` 完成</think>', 'zh', 1],
  ['<think>用 `numpy.sum` 求和</think>', 'zh', 1],
  ['<think>见 https://example.com/some/path 说明</think>', 'zh', 1],
  ['<think>12 + 34 = 46</think>', 'en', null],
  ['<think></think>', 'en', null],
  ['', 'en', null],
  ['no tags at all, plain English text', 'en', 1],
  ['<think>English reasoning</think><answer>答案</answer>', 'en', 1],
  ['<think>Nous calculons la somme</think>', 'fr', 1],
  ['<think>Мы считаем сумму</think>', 'ru', 1],
  ['<think>Мы считаем сумму</think>', 'en', 0],
  ['<think>まず和を計算します</think>', 'ja', 1],
  ['<think>합계를 계산합니다</think>', 'ko', 1],
  ['<think>sin and cos of x</think>', 'zh', 0], // "and", "of" are English; sin, cos are maths
  ['<think>The answer 是 5</think>', 'zh-CN', 1 / 3],
  ['<think>The answer is</think>', 'English', 1],
];

describe('language consistency', () => {
  it.each(LANGUAGE)('%j in %s -> %s', (c, lang, share) => {
    const got = languageShare(chainOfThought(c), lang);
    if (share === null) expect(got).toBeNull();
    else expect(got).toBeCloseTo(share, 10);
  });

  it("uses the row's language, else the recipe's, and ignores a programming language in the row", async () => {
    const fn = language.make({ language: 'en', field: 'language' });
    const c = '<think>我们计算</think><answer>1</answer>';
    expect(await fn(batch([c, c, c], [{ language: 'zh' }, {}, { language: 'python' }]))).toEqual([1, 0, 0]);
  });

  it('rejects an unknown language', () => {
    expect(() => language.make({ language: 'klingon', field: 'language' })).toThrow(/unknown language 'klingon'/);
    expect(languageCode('zh-TW')).toBe('zh');
    expect(languageCode('xx')).toBeNull();
  });

  it('the share is in [0, 1] and the shares of English and Chinese of mixed text sum to 1', () => {
    const piece = fc.constantFrom('the', 'sum', 'is', '我们', '计算', '和', ' ', '$x$', '42', '\n');
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 30 }), (ps) => {
        const t = ps.join(' ');
        const en = languageShare(t, 'en'),
          zh = languageShare(t, 'zh');
        if (en === null) return zh === null;
        return en >= 0 && en <= 1 && Math.abs(en + (zh ?? 0) - 1) < 1e-12;
      }),
    );
  });
});

// [completion, n, repetition rate]
const REPETITION: [string, number, number][] = [
  ['', 3, 0],
  ['one two', 3, 0],
  ['a b c d e f', 3, 0],
  ['a b c a b c', 3, 1 - 3 / 4],
  ['the the the the the', 1, 1 - 1 / 5],
  ['the the the the the', 3, 1 - 1 / 3],
  ['The THE the', 1, 1 - 1 / 3],
  ['我我我我', 1, 1 - 1 / 4],
  ['好的好的好的', 2, 1 - 2 / 5],
  ['x y x y x y x y', 2, 1 - 2 / 7],
];

describe('repetition penalty', () => {
  it.each(REPETITION)('%j with n=%d -> %d', (c, n, rate) => {
    expect(repetitionRate(c, n)).toBeCloseTo(rate, 12);
  });

  it('scales by max_penalty and validates its options', async () => {
    const fn = repetition.make({ ngram_size: 1, max_penalty: -0.5 });
    expect(await fn(batch(['a a a a', 'a b c d']))).toEqual([-0.5 * 0.75, 0]);
    expect(() => repetition.make({ ngram_size: 0, max_penalty: -1 })).toThrow(/ngram_size/);
    expect(() => repetition.make({ ngram_size: 3, max_penalty: 1 })).toThrow(/max_penalty/);
  });

  it('splits Chinese per character and other text per word', () => {
    expect(words('Hello 世界 abc')).toEqual(['hello', '世', '界', 'abc']);
    expect(words('x=1,我们y')).toEqual(['x=1,', '我', '们', 'y']);
  });

  it('stays between max_penalty and 0', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom('a', 'b', 'c', '好'), { maxLength: 40 }), fc.integer({ min: 1, max: 5 }), (ws, n) => {
        const r = repetitionRate(ws.join(' '), n);
        return r >= 0 && r < 1;
      }),
    );
  });
});

describe('cosine length reward', () => {
  const o = { minCorrect: 0.5, maxCorrect: 1, minWrong: -1, maxWrong: -0.5, maxLen: 100 };
  it.each([
    [0, true, 1],
    [50, true, 0.75],
    [100, true, 0.5],
    [500, true, 0.5],
    [0, false, -1],
    [50, false, -0.75],
    [100, false, -0.5],
  ])('length %d, correct %s -> %d', (len, correct, want) => {
    expect(cosineScaled(len, correct, o)).toBeCloseTo(want, 12);
  });

  it('uses accuracy and returns null without a reference', async () => {
    const fn = cosineLength.make({ ...cosineLength.defaults, max_len: 100 });
    const right = '<answer>4</answer>',
      wrong = '<answer>5</answer>';
    const out = (await fn(batch([right, wrong, right], [{ answer: '4' }, { answer: '4' }, {}]))) as number[];
    expect(out[0]).toBeCloseTo(0.5 + 0.25 * (1 + Math.cos((right.length / 100) * Math.PI)), 12);
    expect(out[1]).toBeLessThan(0);
    expect(out[2]).toBeNull();
  });

  it('rewards shorter correct answers more and longer wrong answers less harshly', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1000 }), fc.integer({ min: 0, max: 1000 }), (a, b) => {
        const [s, l] = a <= b ? [a, b] : [b, a];
        const big = { ...o, maxLen: 1000 };
        return cosineScaled(s, true, big) >= cosineScaled(l, true, big) && cosineScaled(s, false, big) <= cosineScaled(l, false, big);
      }),
    );
  });
});

describe('code reward', () => {
  it.each([
    ['text\n```python\nprint(1)\n```\nmore', 'python', 'print(1)\n'],
    ['```js\nlet a = 1;\n```\n```py\nx = 2\n```', 'py', 'x = 2\n'],
    ['```\nplain\n```', '', 'plain\n'],
    ['```python\nunclosed = 1', 'python', 'unclosed = 1\n'],
    ['no code', null, null],
    ['```python', null, null],
  ])('last block of %j', (text, lang, code) => {
    const b = lastCodeBlock(text);
    expect(b === null ? null : b.lang).toBe(lang);
    expect(b === null ? null : b.code).toBe(code);
  });

  it('reads tests from tests or verification_info, and fence or row languages', () => {
    expect(rowTests({ tests: ['assert f(1) == 2'], language: 'python' })).toEqual({ tests: ['assert f(1) == 2'], language: 'python' });
    expect(rowTests({ verification_info: JSON.stringify({ language: 'python', test_cases: [{ input: '1', output: '2' }] }) })).toEqual({
      tests: [{ input: '1', output: '2' }],
      language: 'python',
    });
    expect(rowTests({})).toBeNull();
    expect(codeLanguage('Python3')).toBe('python');
    expect(codeLanguage('JS')).toBe('javascript');
    expect(codeLanguage('rust')).toBeNull();
  });

  it('scores the share of tests passed through the sandbox, created once and destroyed on close', async () => {
    const jobs: CodeJob[] = [];
    let created = 0,
      destroyed = 0;
    const fake = async () => {
      created++;
      return {
        run: async (job: CodeJob) => {
          jobs.push(job);
          const total = (job.tests as unknown[]).length;
          return { passed: job.code.includes('good') ? total : 1, total, results: [] };
        },
        destroy: async () => void destroyed++,
      };
    };
    const fn = makeCodeReward({ language: null }, fake);
    const tests = ['t1', 't2', 't3', 't4'];
    const out = await fn(
      batch(
        [
          '```python\ngood()\n```',
          '```js\nbad()\n```',
          'no code here',
          '```\ngood()\n```',
          '```python\ngood()\n```',
          '```rust\ngood()\n```',
        ],
        [{ tests }, { tests }, { tests }, { tests, language: 'javascript' }, {}, { tests }],
      ),
    );
    expect(out).toEqual([1, 0.25, 0, 1, null, 0]);
    expect(jobs.map((j) => j.language)).toEqual(['python', 'javascript', 'javascript']);
    expect(created).toBe(1);
    await fn.close();
    expect(destroyed).toBe(1);
  });
});
