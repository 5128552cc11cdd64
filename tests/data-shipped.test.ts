// The shipped data under data/: what scripts/make-data.ts writes (byte for byte), in the shapes the
// stages and rewards read, with the held-out sums kept out of the training sets.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readRows, type Row } from '../src/data/io.ts';
import { R1_ZERO_TEMPLATE } from '../src/data/chat.ts';

const DATA = join(import.meta.dirname, '..', 'data');
const FILES = ['corpus.jsonl', 'sums.jsonl', 'sums-test.jsonl', 'cold-start.jsonl', 'chat.jsonl', 'preferences.jsonl', 'code-problems.jsonl'];
const rows: Record<string, Row[]> = {};
const PREAMBLE = R1_ZERO_TEMPLATE.slice(0, R1_ZERO_TEMPLATE.indexOf('User: {prompt}'));
const TAGGED = /<think> [^<]+ <\/think> <answer> [^<]+ <\/answer>$/;

beforeAll(async () => {
  for (const f of FILES) rows[f] = await readRows(join(DATA, f));
});

/** The result of "What is a + b?" or "What is a - b?". */
const resultOf = (prompt: string) => {
  const m = /^What is (\d+) ([+-]) (\d+)\?$/.exec(prompt);
  if (!m) throw new Error(`not a task prompt: ${prompt}`);
  return m[2] === '+' ? Number(m[1]) + Number(m[3]) : Number(m[1]) - Number(m[3]);
};

describe('shipped data', () => {
  it('is what scripts/make-data.ts writes, and small', () => {
    const out = mkdtempSync(join(tmpdir(), 'r1-make-data-'));
    execFileSync(process.execPath, ['--import', 'tsx', join(import.meta.dirname, '..', 'scripts', 'make-data.ts'), out], { stdio: 'pipe' });
    for (const f of FILES) expect(readFileSync(join(out, f)).equals(readFileSync(join(DATA, f))), f).toBe(true);
    const total = readdirSync(DATA).reduce((a, f) => a + statSync(join(DATA, f)).size, 0);
    expect(total).toBeLessThan(3.5 * 2 ** 20);
  });

  it('has sum prompts with right answers, and a held-out test set', () => {
    for (const f of ['sums.jsonl', 'sums-test.jsonl']) {
      for (const r of rows[f]) {
        expect(String(resultOf(r.prompt as string)), r.prompt as string).toBe(r.answer);
        expect(r.prompt as string).toContain('+');
      }
    }
    const train = new Set(rows['sums.jsonl'].map((r) => r.prompt));
    expect(rows['sums-test.jsonl'].filter((r) => train.has(r.prompt))).toEqual([]);
    expect(rows['sums.jsonl'].length).toBeGreaterThanOrEqual(1000);
    expect(rows['sums-test.jsonl'].length).toBeGreaterThanOrEqual(100);
  });

  it('keeps the held-out sums out of every training set, worked steps included', () => {
    const text = ['corpus.jsonl', 'sums.jsonl', 'cold-start.jsonl', 'chat.jsonl', 'preferences.jsonl'].map((f) => JSON.stringify(rows[f])).join('\n');
    for (const r of rows['sums-test.jsonl']) {
      const [a, b] = (r.prompt as string).match(/\d+/g)!;
      expect(text.includes(`What is ${a} + ${b}?`), r.prompt as string).toBe(false);
      expect(new RegExp(`(^|[^\\d])${a} \\+ ${b} =`).test(text), r.prompt as string).toBe(false);
    }
  });

  it('has a corpus in which only a small share answers in the R1 tags', () => {
    const texts = rows['corpus.jsonl'].map((r) => r.text as string);
    expect(texts.every((t) => typeof t === 'string' && t.length > 0)).toBe(true);
    const tagged = texts.filter((t) => t.includes('<think>') && t.includes('Assistant: <think>'));
    const template = texts.filter((t) => t.startsWith(PREAMBLE));
    const share = tagged.length / texts.length;
    expect(share).toBeGreaterThan(0.02);
    expect(share).toBeLessThan(0.05);
    expect(tagged.every((t) => t.startsWith(PREAMBLE) && TAGGED.test(t))).toBe(true);
    expect(template.length).toBeGreaterThan(2 * tagged.length); // the template mostly goes on untagged
    expect(texts.some((t) => /[\u4e00-\u9fff]/.test(t))).toBe(true); // some Chinese
  });

  it('has cold-start, chat and preference rows in the shapes the stages read', () => {
    for (const r of rows['cold-start.jsonl']) {
      expect(r.completion as string).toMatch(TAGGED);
      expect((r.completion as string).startsWith(' <think>')).toBe(true);
    }
    expect(rows['chat.jsonl'].length).toBeGreaterThanOrEqual(200);
    for (const r of rows['chat.jsonl']) {
      const m = r.messages as { role: string; content: string }[];
      expect(m.at(-1)!.role).toBe('assistant');
      expect(m.every((x) => ['system', 'user', 'assistant'].includes(x.role) && x.content.length > 0)).toBe(true);
    }
    for (const r of rows['preferences.jsonl']) {
      expect(r.chosen as string).toMatch(TAGGED);
      expect(r.chosen).not.toBe(r.rejected);
      expect((r.chosen as string).match(/<answer> (\d+) </)![1]).toBe(String(resultOf(r.prompt as string)));
    }
  });

  it('has code problems with a language and stdin/stdout tests', () => {
    const code = rows['code-problems.jsonl'];
    expect(code.length).toBeGreaterThanOrEqual(24);
    for (const r of code) {
      expect(['python', 'javascript']).toContain(r.language);
      expect(typeof r.prompt).toBe('string');
      const tests = r.tests as { input: string; output: string }[];
      expect(tests.length).toBeGreaterThanOrEqual(2);
      expect(tests.every((t) => typeof t.input === 'string' && typeof t.output === 'string')).toBe(true);
    }
  });
});
