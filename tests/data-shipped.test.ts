// The shipped data under data/: what scripts/make-data.ts writes (byte for byte), in the shapes the
// stages and rewards read, with the held-out sums kept out of every training set, and a corpus that
// makes the R1-Zero prompt short for its own tokenizer.
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { beforeAll, describe, expect, it } from 'vitest';
import { applyTemplate, R1_ZERO_TEMPLATE } from '../src/data/chat.ts';
import { readRows, writeJsonl, type Row } from '../src/data/io.ts';
import { factKey, workedSteps, type Problem } from '../src/data/tasks.ts';
import { Tokenizer } from '../src/model/tokenizer.ts';
import { strictFormat } from '../rewards/format.ts';
import { makeData } from '../scripts/make-data.ts';

const DATA = join(import.meta.dirname, '..', 'data');
const FILES = [
  'corpus.jsonl',
  'sums.jsonl',
  'sums-test.jsonl',
  'cold-start.jsonl',
  'chat.jsonl',
  'preferences.jsonl',
  'code-problems.jsonl',
];
const rows: Record<string, Row[]> = {};
const PREAMBLE = R1_ZERO_TEMPLATE.slice(0, R1_ZERO_TEMPLATE.indexOf('User: {prompt}'));
const TAGGED = /^ <think> [^<]+ <\/think> <answer> \d+ <\/answer>$/;
const tmp = mkdtempSync(join(tmpdir(), 'r1-shipped-'));

beforeAll(async () => {
  for (const f of FILES) rows[f] = await readRows(join(DATA, f));
});

/** a and b of "What is a + b?". */
const operands = (prompt: unknown): [number, number] => {
  const m = /^What is (\d+) \+ (\d+)\?$/.exec(prompt as string);
  if (!m) throw new Error(`not a sum prompt: ${String(prompt)}`);
  return [Number(m[1]), Number(m[2])];
};
const sumOf = (prompt: unknown) => operands(prompt)[0] + operands(prompt)[1];

describe('shipped data', () => {
  it('is what scripts/make-data.ts writes, deterministically, and small', () => {
    const made = makeData();
    expect(made.map(([f]) => f).sort()).toEqual([...FILES].sort());
    for (const [f, data] of made) {
      const out = join(tmp, f);
      writeJsonl(out, data);
      expect(
        readFileSync(out).equals(readFileSync(join(DATA, f))),
        `${f} differs from the generator's output: rerun npx tsx scripts/make-data.ts`,
      ).toBe(true);
    }
    expect(JSON.stringify(makeData(7))).not.toBe(JSON.stringify(made)); // the seed matters
    const total = readdirSync(DATA).reduce((a, f) => a + statSync(join(DATA, f)).size, 0);
    expect(total).toBeLessThan(3 * 2 ** 20);
  });

  it('has 190 sum prompts and 20 held-out ones (every sum of 0-19 once), right answers, disjoint', () => {
    const train = rows['sums.jsonl'],
      test = rows['sums-test.jsonl'];
    expect(train.length).toBe(190);
    expect(test.length).toBe(20);
    for (const r of [...train, ...test]) {
      expect(r.task).toBe('sum');
      expect(r.answer, r.prompt as string).toBe(String(sumOf(r.prompt)));
      expect(operands(r.prompt).every((x) => x >= 0 && x <= 19)).toBe(true);
    }
    const key = (r: Row) =>
      operands(r.prompt)
        .sort((x, y) => x - y)
        .join('+'); // 23 + 45 is 45 + 23
    const trainKeys = new Set(train.map(key));
    expect(trainKeys.size).toBe(train.length);
    expect(test.filter((r) => trainKeys.has(key(r)))).toEqual([]);
  });

  it('keeps the held-out sums out of every training set, in either order and in worked steps', () => {
    const text = ['corpus.jsonl', 'sums.jsonl', 'cold-start.jsonl', 'chat.jsonl', 'preferences.jsonl']
      .map((f) => JSON.stringify(rows[f]))
      .join('\n');
    const stated = new Set<string>();
    // Every "a + b", "a plus b", "a 加 b", "a 和 b", "of a and b", "a and b make", "has a ... gets b" in the training text.
    const patterns = [
      /(\d+) \+ (\d+)/g,
      /(\d+) plus (\d+)/g,
      /(\d+) 加 (\d+)/g,
      /(\d+) 和 (\d+)/g,
      /of (\d+) and (\d+)/g,
      /(\d+) and (\d+) make/g,
      /Add (\d+) to (\d+)/g,
      /has (\d+) \w+ and gets (\d+)/g,
      /有(\d+)[^\d。]*，又得到(\d+)/g,
    ];
    for (const re of patterns) for (const m of text.matchAll(re)) stated.add(factKey({ kind: 'sum', a: +m[1], b: +m[2], result: 0 }));
    expect(stated.size).toBeGreaterThan(190); // the patterns do find the training sums
    for (const r of rows['sums-test.jsonl']) {
      const [a, b] = operands(r.prompt);
      expect(stated.has(factKey({ kind: 'sum', a, b, result: a + b })), r.prompt as string).toBe(false);
    }
  });

  it('has a corpus of correct sums, some Chinese, and 5-10% R1-Zero dialogues, many tagged, rarely in full form', () => {
    const texts = rows['corpus.jsonl'].map((r) => r.text as string);
    expect(texts.every((t) => typeof t === 'string' && t.length > 0)).toBe(true);
    for (const t of texts) {
      for (const m of t.matchAll(/(?<!\d)(\d+) \+ (\d+) = (\d+)/g)) expect(+m[1] + +m[2], t).toBe(+m[3]);
    }
    expect(texts.filter((t) => /[\u4e00-\u9fff]/.test(t)).length / texts.length).toBeGreaterThan(0.05);
    const template = texts.filter((t) => t.includes(PREAMBLE));
    expect(template.every((t) => t.startsWith(PREAMBLE))).toBe(true); // the template opens its document
    const share = template.length / texts.length;
    expect(share).toBeGreaterThan(0.05);
    expect(share).toBeLessThan(0.1);
    const replies = template.map((t) => {
      const start = t.indexOf('. Assistant:') + '. Assistant:'.length;
      return { prompt: t.slice(0, start), reply: t.slice(start) };
    });
    const withTags = replies.filter(({ reply }) => /<\/?(think|answer)>/.test(reply));
    const full = replies.filter(({ reply }) => TAGGED.test(reply));
    expect(withTags.length / replies.length).toBeGreaterThan(0.35);
    expect(full.length / replies.length).toBeGreaterThan(0.02);
    expect(full.length / replies.length).toBeLessThan(0.1);
    // The format reward agrees: only the full-form replies pass, and they give the right sum.
    expect(replies.filter(({ reply }) => strictFormat(reply) === 1)).toEqual(full);
    for (const { prompt, reply } of full) {
      expect(reply.match(/<answer> (\d+) </)![1]).toBe(String(sumOf(/User: (.*)\. Assistant:$/.exec(prompt)![1])));
    }
  });

  it('gives the R1-Zero prompt of every sum well under 150 tokens with a tokenizer trained on the corpus', () => {
    const tok = Tokenizer.train(
      rows['corpus.jsonl'].map((r) => r.text as string),
      { vocabSize: 512 },
    );
    let longest = 0;
    for (const r of [...rows['sums.jsonl'], ...rows['sums-test.jsonl']]) {
      longest = Math.max(longest, tok.encode(applyTemplate('r1-zero', r.prompt as string)).length);
    }
    expect(longest).toBeLessThan(110);
    // ... and every tagged answer the data teaches fits the recipes' 48 new tokens.
    const p: Problem = { kind: 'sum', a: 87, b: 96, result: 183 };
    const answers = [
      ` <think> ${workedSteps(p)} </think> <answer> 183 </answer>`,
      ...rows['cold-start.jsonl'].map((r) => r.completion as string),
      ...rows['preferences.jsonl'].map((r) => r.chosen as string),
      ...rows['corpus.jsonl'].map((r) => (r.text as string).split('. Assistant:')[1] ?? '').filter((a) => TAGGED.test(a)),
    ];
    expect(Math.max(...answers.map((a) => tok.encode(a).length))).toBeLessThanOrEqual(48);
  });

  it('has cold-start, chat and preference rows in the shapes the stages read', () => {
    expect(rows['cold-start.jsonl'].length).toBeGreaterThanOrEqual(250);
    for (const r of rows['cold-start.jsonl']) {
      expect(r.completion as string).toMatch(TAGGED);
      expect((r.completion as string).match(/<answer> (\d+) </)![1]).toBe(String(sumOf(r.prompt)));
      expect(r.completion as string).not.toMatch(/[\u4e00-\u9fff]/); // English reasoning only
    }
    const chat = rows['chat.jsonl'];
    expect(chat.length).toBeGreaterThanOrEqual(250);
    for (const r of chat) {
      const m = r.messages as { role: string; content: string }[];
      expect(m.at(-1)!.role).toBe('assistant');
      expect(m.every((x) => ['system', 'user', 'assistant'].includes(x.role) && x.content.length > 0)).toBe(true);
      const turns = m.filter((x) => x.role !== 'system');
      expect(turns.every((x, i) => x.role === (i % 2 ? 'assistant' : 'user'))).toBe(true);
    }
    expect(chat.filter((r) => (r.messages as unknown[]).length >= 4).length).toBeGreaterThan(30); // some multi-turn
    expect(chat.some((r) => JSON.stringify(r).includes('翻译成英文'))).toBe(true);
    const prefs = rows['preferences.jsonl'];
    expect(prefs.length).toBeGreaterThanOrEqual(250);
    let wrongAnswer = 0;
    for (const r of prefs) {
      expect(r.chosen as string).toMatch(TAGGED);
      expect((r.chosen as string).match(/<answer> (\d+) </)![1]).toBe(String(sumOf(r.prompt)));
      expect(r.chosen).not.toBe(r.rejected);
      const rejected = r.rejected as string;
      if (strictFormat(rejected) === 1) {
        wrongAnswer++;
        expect(rejected.match(/<answer> (\d+) </)![1]).not.toBe(String(sumOf(r.prompt)));
      }
    }
    // Both kinds of pair: a wrong answer in good form, and a broken form.
    expect(wrongAnswer / prefs.length).toBeGreaterThan(0.3);
    expect(wrongAnswer / prefs.length).toBeLessThan(0.7);
  });

  it('has code problems with a language and stdin/stdout tests', () => {
    const code = rows['code-problems.jsonl'];
    expect(code.length).toBeGreaterThanOrEqual(52);
    expect(new Set(code.map((r) => r.language))).toEqual(new Set(['python', 'javascript']));
    // Both sandboxes get a real share of the problems.
    expect(code.filter((r) => r.language === 'python').length).toBeGreaterThanOrEqual(20);
    expect(code.filter((r) => r.language === 'javascript').length).toBeGreaterThanOrEqual(20);
    // No task twice.
    expect(new Set(code.map((r) => r.prompt)).size).toBe(code.length);
    for (const r of code) {
      expect(r.prompt as string).toMatch(/^Write a (Python|JavaScript \(Node\.js\)) program\./);
      const tests = r.tests as { input: string; output: string }[];
      expect(tests.length).toBeGreaterThanOrEqual(2);
      expect(tests.length).toBeLessThanOrEqual(5);
      expect(tests.every((t) => typeof t.input === 'string' && typeof t.output === 'string' && t.output.endsWith('\n'))).toBe(true);
    }
    // Spot-check outputs against hand-worked answers.
    const find = (s: string) => code.find((r) => (r.prompt as string).includes(s))!.tests as { input: string; output: string }[];
    expect(find('FizzBuzz').find((t) => t.input === '5\n')!.output).toBe('1\n2\nFizz\n4\nBuzz\n');
    expect(find('greatest common divisor').find((t) => t.input === '100 75\n')!.output).toBe('25\n');
    expect(find('leap year').map((t) => t.output)).toEqual(['YES\n', 'NO\n', 'YES\n', 'NO\n']);
    expect(find('run-length encoding').map((t) => t.output)).toEqual(['a3b1c2\n', 'a1\n', 'a1b1c1\n', 'z12\n', 'a2b2a2\n']);
    expect(find('modulo m').find((t) => t.input === '123456789 987654321 1000000007\n')!.output).toBe('652541198\n');
    expect(find('last person left').map((t) => t.output)).toEqual(['3\n', '4\n', '1\n', '6\n', '4\n']);
    expect(find('m minutes later').find((t) => t.input === '23:30 45\n')!.output).toBe('00:15\n');
  });

  it('round-trips the sums through Parquet (hyparquet-writer) and readRows', async () => {
    const sums = rows['sums.jsonl'];
    const buf = parquetWriteBuffer({
      columnData: ['prompt', 'answer', 'task'].map((name) => ({ name, data: sums.map((r) => r[name] as string), type: 'STRING' as const })),
    });
    const p = join(tmp, 'sums.parquet');
    writeFileSync(p, new Uint8Array(buf));
    expect(await readRows(p)).toEqual(sums);
  });

  it('names the file and line of a broken line in a shipped file', async () => {
    const lines = readFileSync(join(DATA, 'cold-start.jsonl'), 'utf8').split('\n');
    lines[41] = lines[41].slice(0, 30); // truncate line 42
    const p = join(tmp, 'cold-start.jsonl');
    writeFileSync(p, lines.join('\n'));
    await expect(readRows(p)).rejects.toThrow(`${p}:42: not valid JSON`);
  });
});
