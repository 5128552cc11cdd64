// The README results block (`r1 report <runs...> --results <file.md>`) and the eval metrics it shows:
// language consistency, pass@1 per language, maj@k for tasks with many right answers.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { register } from '../src/cli/commands/report.ts';
import { RESULTS_END, RESULTS_START, collectEvals, resultsTable, spliceResults, writeResults } from '../src/report/index.ts';
import { firstLast, movingAverage, trendLine, collectGrpo } from '../src/report/results.ts';
import { languageConsistency, majorityCorrect, rowLanguage, summarizeEval } from '../src/stages/eval.ts';

const made: string[] = [];
const tmp = () => {
  made.push(mkdtempSync(join(tmpdir(), 'r1-results-')));
  return made.at(-1)!;
};
afterAll(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));
afterEach(() => vi.restoreAllMocks());

const PROMPT = 'User: What is 3 + 5? Assistant: <think>';
const think = (cot: string, answer: string) => ` ${cot} </think> <answer> ${answer} </answer>`;

describe('eval metrics', () => {
  it("a row's language is its language field when that names one, else English", () => {
    expect(rowLanguage({ language: 'zh' })).toBe('zh');
    expect(rowLanguage({ language: 'Chinese' })).toBe('zh');
    expect(rowLanguage({ language: 'python' })).toBe('en');
    expect(rowLanguage({})).toBe('en');
  });

  it('language consistency: a zh chain of thought half in English gives 0.5; nothing countable is left out', () => {
    const zh = { language: 'zh' },
      en = { language: 'en' };
    // 3 Han characters and 3 English words; the answer block does not count.
    const half = think('三加五 plus three equals', 'eight is the answer');
    expect(languageConsistency([PROMPT], [half], [zh])).toBe(0.5);
    // The same completion judged as English is also half; an all-English one is 1; digits only count for nothing.
    expect(
      languageConsistency([PROMPT, PROMPT, PROMPT], [half, think('three plus five', '8'), think('3 + 5 = 8', '8')], [en, en, en]),
    ).toBe(0.75);
    expect(languageConsistency([PROMPT], [think('3 + 5 = 8', '8')], [zh])).toBeNull();
    // Without the prompt's <think>, the chain of thought is what comes before </think>.
    expect(languageConsistency(['What is 3 + 5?'], ['三加五等于八 </think> <answer> 8 </answer>'], [zh])).toBe(1);
  });

  it('maj@k: two different right Countdown expressions (no reference answer) count as right', () => {
    const completions = ['(1+2)*8', '(1+2)*8', '8*(2+1)', '1+2+8'].map((e) => think('try', e));
    expect(majorityCorrect(completions, [1, 1, 1, 0], undefined)).toBe(true);
  });

  it('maj@k: the majority answer is wrong when no sample with it got accuracy 1, even if it equals the reference numerically', () => {
    // 3*8 = 24 is the target, but 3 is not one of the numbers: the accuracy reward said 0.
    const completions = ['3*8', '3*8', '(1+2)*8', '3*8'].map((e) => think('try', e));
    expect(majorityCorrect(completions, [0, 0, 1, 0], '24')).toBe(false);
    expect(majorityCorrect(completions, [0, 1, 1, 0], '24')).toBe(true);
  });

  it('maj@k falls back to the reference when there is no accuracy score', () => {
    const completions = ['20', '20', '19'].map((a) => think('add', a));
    expect(majorityCorrect(completions, null, '20')).toBe(true);
    expect(majorityCorrect(completions, [null, null, null], '20')).toBe(true);
    expect(majorityCorrect(completions, null, '21')).toBe(false);
    expect(majorityCorrect(['no answer at all'], null, '20')).toBe(false);
  });

  it('summarizeEval: pass@1 per language, language consistency and maj@k in the report', () => {
    const rows = [
      { prompt: 'a', answer: '8', language: 'zh', task: 'sum' },
      { prompt: 'b', answer: '9', language: 'en', task: 'sum' },
      { prompt: 'c', answer: '10', task: 'sum' },
    ];
    const completions = [
      think('三加五 plus three equals', '8'),
      think('三加五等于八', '8'),
      think('four plus five', '9'),
      think('four plus five', '7'),
      think('five plus five', '1'),
      think('five plus five', '2'),
    ];
    const report = summarizeEval({
      rows,
      k: 2,
      prompts: completions.map(() => PROMPT),
      completions,
      lengths: [10, 20, 30, 40, 50, 60],
      byFunction: { accuracy: [1, 1, 1, 0, 0, 0], format: [1, 1, 1, 1, 0, 1] },
      rewardMeans: { accuracy: 0.5, format: 5 / 6 },
    });
    expect(report['pass@1']).toBeCloseTo(0.5);
    expect(report['maj@2']).toBeCloseTo(2 / 3);
    expect(report.format_rate).toBeCloseTo(5 / 6);
    expect(report.mean_length).toBe(35);
    expect(report.language_consistency).toBeCloseTo((0.5 + 1 + 1 + 1 + 1 + 1) / 6);
    expect(report.by_language).toEqual({ zh: { prompts: 1, 'pass@1': 1 }, en: { prompts: 2, 'pass@1': 0.25 } });
    expect(report.by_task).toEqual({ sum: { prompts: 3, 'pass@1': 0.5 } });
  });
});

// --- fixture runs -----------------------------------------------------------------------------

type Json = Record<string, unknown>;
function stage(run: string, name: string, files: Record<string, string>): void {
  mkdirSync(join(run, name), { recursive: true });
  for (const [f, text] of Object.entries(files)) writeFileSync(join(run, name, f), text);
}
const json = (v: Json) => JSON.stringify(v, null, 2) + '\n';
const jsonl = (rows: Json[]) => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';

/** 30 GRPO steps: accuracy = step/30, reward = step/50, length 40 - step/5. */
const GRPO_ROWS = Array.from({ length: 30 }, (_, i) => ({
  step: i + 1,
  loss: 0.01,
  reward: (i + 1) / 50,
  'rewards/accuracy/mean': (i + 1) / 30,
  'completions/mean_length': 40 - (i + 1) / 5,
}));

/** Two runs like the real ones: `alpha` with a manifest whose order is not alphabetical, an old-format
 * eval (no label, no language consistency) and a GRPO stage; `beta` without a manifest. */
function fixture(): { root: string; alpha: string; beta: string } {
  const root = tmp();
  const alpha = join(root, 'runs', 'alpha'),
    beta = join(root, 'runs', 'beta');
  mkdirSync(alpha, { recursive: true });
  writeFileSync(
    join(alpha, 'manifest.json'),
    json({ stages: { pretrain: { status: 'done' }, 'eval-base': { status: 'done' }, grpo: { status: 'done' }, eval: { status: 'done' } } }),
  );
  stage(alpha, 'pretrain', {
    'metrics.jsonl': jsonl([
      { step: 1, loss: 5 },
      { step: 2, loss: 4 },
    ]),
  });
  stage(alpha, 'eval-base', {
    'eval.json': json({
      prompts: 20,
      k: 4,
      'pass@1': 0.3375,
      'maj@4': 0.4,
      format_rate: 0.125,
      mean_length: 37.3125,
      rewards: { accuracy: 0.3375 },
    }),
    'metrics.jsonl': jsonl([{ step: 1, 'pass@1': 0.3375, 'rewards/accuracy/mean': 0.3375 }]),
  });
  stage(alpha, 'grpo', { 'metrics.jsonl': jsonl(GRPO_ROWS) });
  stage(alpha, 'eval', {
    'eval.json': json({
      label: 'R1-Zero (GRPO)',
      prompts: 20,
      k: 4,
      'pass@1': 0.9125,
      'maj@4': 0.95,
      format_rate: 1,
      language_consistency: 0.98765,
      mean_length: 28.8,
    }),
  });
  stage(beta, 'eval', {
    'eval.json': json({ label: 'odd | name', 'pass@1': 0.413, 'maj@8': 0.5, language_consistency: null, format_rate: 0.5 }),
  });
  return { root, alpha, beta };
}

const TABLE_HEAD = [
  '| Model | pass@1 (%) | maj@k (%) | format rate (%) | language consistency (%) | mean length (tokens) | samples (prompts × k) |',
  '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
];
const TABLE_ROWS = [
  '| alpha/eval-base | 33.8 | 40.0 | 12.5 | – | 37.3 | 20 × 4 |',
  '| R1-Zero (GRPO) | 91.3 | 95.0 | 100.0 | 98.8 | 28.8 | 20 × 4 |',
  '| odd \\| name | 41.3 | 50.0 | 50.0 | – | – | – |',
];

describe('results table', () => {
  it('one row per eval stage, runs in the given order, stages in pipeline order; labels, percentages and – for missing', () => {
    const { alpha, beta } = fixture();
    expect(collectEvals([alpha, beta]).map((e) => `${e.run}/${e.stage}`)).toEqual(['alpha/eval-base', 'alpha/eval', 'beta/eval']);
    expect(resultsTable(collectEvals([alpha, beta]))).toBe([...TABLE_HEAD, ...TABLE_ROWS].join('\n'));
    expect(
      resultsTable(collectEvals([beta, alpha]))
        .split('\n')
        .slice(2),
    ).toEqual([TABLE_ROWS[2], TABLE_ROWS[0], TABLE_ROWS[1]]);
  });

  it('GRPO stages: first-10 vs last-10 step means over the run', () => {
    const { alpha, beta } = fixture();
    const grpo = collectGrpo([alpha, beta]);
    // The eval stage logs rewards/accuracy/mean too, but no total reward: it is not a GRPO stage.
    expect(grpo.map((g) => g.stage)).toEqual(['grpo']);
    // Mean step of the first 10 is 5.5, of the last 10 25.5: accuracy 5.5/30 = 0.18 and 25.5/30 = 0.85,
    // reward 0.11 and 0.51, length 40 - 1.1 = 38.9 and 40 - 5.1 = 34.9.
    expect(trendLine(grpo[0])).toBe('alpha/grpo: accuracy 0.18 → 0.85, reward 0.11 → 0.51, length 39 → 35 tokens over 30 steps');
    expect(
      firstLast([
        [1, 1],
        [2, 3],
      ]),
    ).toEqual({ first: 2, last: 2 });
    expect(firstLast([])).toBeNull();
  });

  it('moving average: centered (an even window leans back), shorter at the ends', () => {
    expect(
      movingAverage(
        [
          [1, 1],
          [2, 2],
          [3, 6],
        ],
        3,
      ),
    ).toEqual([
      [1, 1.5],
      [2, 3],
      [3, 4],
    ]);
    expect(
      movingAverage(
        [
          [1, 0],
          [2, 3],
          [3, 6],
          [4, 9],
        ],
        2,
      ),
    ).toEqual([
      [1, 0],
      [2, 1.5],
      [3, 4.5],
      [4, 7.5],
    ]);
    expect(movingAverage([[1, 5]], 10)).toEqual([[1, 5]]);
  });
});

describe('results block in a Markdown file', () => {
  it('replaces only the text between the markers; every other byte stays', () => {
    const { root, alpha, beta } = fixture();
    const file = join(root, 'README.md');
    const before = '# Title  \r\n\nSome text the author wrote, with trailing spaces   \n\n## Results\n\n';
    const after = '\n\n## Next section\nno final newline';
    writeFileSync(file, `${before}${RESULTS_START}\nold table\n| a | b |\n${RESULTS_END}${after}`);
    const { plots } = writeResults([alpha, beta], file);
    const text = readFileSync(file, 'utf8');
    expect(text.startsWith(before + RESULTS_START + '\n')).toBe(true);
    expect(text.endsWith('\n' + RESULTS_END + after)).toBe(true);
    expect(text).not.toContain('old table');
    expect(text).toContain([...TABLE_HEAD, ...TABLE_ROWS].join('\n'));
    expect(text).toContain('- alpha/grpo: accuracy 0.18 → 0.85');
    // The plot sits in docs/results next to the file and is linked relative to it.
    expect(plots).toEqual([join(root, 'docs', 'results', 'alpha-grpo.svg')]);
    expect(text).toContain('](docs/results/alpha-grpo.svg)');
    // A second run leaves the same bytes (nothing accumulates between the markers).
    writeResults([alpha, beta], file);
    expect(readFileSync(file, 'utf8')).toBe(text);
    expect(text.split(RESULTS_START).length).toBe(2);
  });

  it('appends a marked block when the file has no markers, and creates the file when it is missing', () => {
    const { root, alpha } = fixture();
    const file = join(root, 'notes.md');
    writeFileSync(file, '# Notes\nno newline at the end');
    writeResults([alpha], file);
    const text = readFileSync(file, 'utf8');
    expect(text.startsWith('# Notes\nno newline at the end\n\n' + RESULTS_START + '\n')).toBe(true);
    expect(text.endsWith(RESULTS_END + '\n')).toBe(true);
    expect(text).toContain(TABLE_ROWS[1]);

    const fresh = join(root, 'sub', 'RESULTS.md');
    writeResults([alpha], fresh, join(root, 'plots'));
    const created = readFileSync(fresh, 'utf8');
    expect(created.startsWith(RESULTS_START + '\n')).toBe(true);
    expect(created.endsWith(RESULTS_END + '\n')).toBe(true);
    expect(created).toContain('](../plots/alpha-grpo.svg)');
    expect(existsSync(join(root, 'plots', 'alpha-grpo.svg'))).toBe(true);
  });

  it('refuses a file with only one marker, and writes nothing', () => {
    expect(() => spliceResults(`x\n${RESULTS_END}\n${RESULTS_START}\n`, 'new')).toThrow(/only one of/);
    const { root, alpha } = fixture();
    const file = join(root, 'broken.md');
    writeFileSync(file, `intro\n${RESULTS_START}\nno end marker\n`);
    expect(() => writeResults([alpha], file)).toThrow(/only one of/);
    expect(readFileSync(file, 'utf8')).toBe(`intro\n${RESULTS_START}\nno end marker\n`);
    expect(existsSync(join(root, 'docs'))).toBe(false);
  });

  it('the SVG has an accuracy, a reward and a length panel, each with every step faint and a moving average', () => {
    const { root, alpha } = fixture();
    const [svg] = writeResults([alpha], join(root, 'R.md')).plots;
    const text = readFileSync(svg, 'utf8');
    expect(text.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(text).toContain('<style>');
    for (const title of ['>accuracy<', '>reward<', '>response length (tokens)<']) expect(text).toContain(title);
    const lines = [...text.matchAll(/<polyline points="([^"]*)" class="(raw|line)"\/>/g)].map((m) => ({
      cls: m[2],
      ys: m[1].split(' ').map((p) => Number(p.split(',')[1])),
    }));
    expect(lines.map((l) => l.cls)).toEqual(['raw', 'line', 'raw', 'line', 'raw', 'line']);
    for (const l of lines) expect(l.ys).toHaveLength(30);
    // Accuracy and reward rise (SVG y grows downwards), length falls: the panels hold the right series.
    const [acc, , reward, , length] = lines;
    expect(acc.ys[0]).toBeGreaterThan(acc.ys[29]);
    expect(reward.ys[0]).toBeGreaterThan(reward.ys[29]);
    expect(length.ys[0]).toBeLessThan(length.ys[29]);
  });
});

describe('r1 report --results', () => {
  async function run(args: string[]): Promise<string> {
    const program = new Command('r1').exitOverride();
    register(program);
    let out = '';
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => ((out += String(chunk)), true));
    await program.parseAsync(['report', ...args], { from: 'user' });
    return out;
  }

  it('keeps writing the HTML reports and also writes the results file and plots, printing every path', async () => {
    const { root, alpha, beta } = fixture();
    const file = join(root, 'README.md');
    const out = await run([alpha, beta, '--results', file, '--plots', join(root, 'figs')]);
    expect(existsSync(join(alpha, 'index.html'))).toBe(true);
    expect(existsSync(join(alpha, 'grpo', 'report.html'))).toBe(true);
    expect(out).toContain(join(root, 'figs', 'alpha-grpo.svg'));
    expect(out).toContain(`${file}: results table of 3 evals; trend line and plot of 1 GRPO stage`);
    expect(readFileSync(file, 'utf8')).toContain('](figs/alpha-grpo.svg)');
  });

  it('fails on folders with neither an eval nor a GRPO stage', async () => {
    const root = tmp();
    stage(root, 'pretrain', { 'metrics.jsonl': jsonl([{ step: 1, loss: 5 }]) });
    await expect(run([root, '--results', join(root, 'R.md')])).rejects.toThrow(/no eval stage/);
    expect(existsSync(join(root, 'R.md'))).toBe(false);
  });
});

describe('pass@1 breakdown table', () => {
  it('has a column per task and per language any eval reports, and – where one does not', async () => {
    const { breakdownTable } = await import('../src/report/index.ts');
    const evals = [
      {
        run: 'a',
        stage: 'eval',
        results: {
          label: 'base',
          by_task: { word: { prompts: 3, 'pass@1': 0.5 }, countdown: { prompts: 2, 'pass@1': 0 } },
          by_language: { en: { prompts: 4, 'pass@1': 0.25 } },
        },
      },
      { run: 'b', stage: 'eval', results: { by_language: { zh: { prompts: 1, 'pass@1': 1 } } } },
    ];
    expect(breakdownTable(evals)!.split('\n')).toEqual([
      '| Model | countdown | word | en | zh |',
      '| --- | ---: | ---: | ---: | ---: |',
      '| base | 0.0 | 50.0 | 25.0 | – |',
      '| b/eval | – | – | – | 100.0 |',
    ]);
    expect(breakdownTable([{ run: 'c', stage: 'e', results: {} }])).toBeNull();
  });
});
