// data/r1: what scripts/r1-data.ts writes (byte for byte); word problems and Countdown puzzles in two
// languages with right answers and a disjoint test split; a bilingual corpus without the tag habit
// and with language mixing; long one-language cold-start chains of thought; general rows.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readRows, writeJsonl, type Row } from '../src/data/io.ts';
import { distinctReasoningProblems } from '../src/data/reasoning.ts';
import { Rng } from '../src/engine/rng.ts';
import { strictFormat } from '../rewards/format.ts';
import { languageShare } from '../rewards/language.ts';
import { chainOfThought } from '../rewards/tags.ts';
import { accuracy } from '../rewards/accuracy.ts';
import { countdownScore } from '../rewards/countdown.ts';
import { makeR1Data } from '../scripts/r1-data.ts';

const DATA = join(import.meta.dirname, '..', 'data', 'r1');
const FILES = ['train.jsonl', 'test.jsonl', 'corpus.jsonl', 'cold-start.jsonl', 'general.jsonl', 'heldout.jsonl'];
const rows: Record<string, Row[]> = {};
beforeAll(async () => {
  for (const f of FILES) rows[f] = await readRows(join(DATA, f));
});
const share = (xs: Row[], f: (r: Row) => boolean) => xs.filter(f).length / xs.length;
const score = (completion: string, row: Row) =>
  (
    accuracy.make({ ...accuracy.defaults, tagged_only: true })({ prompts: [''], completions: [completion], rows: [row] }) as (
      | number
      | null
    )[]
  )[0];

/** Every "a + b = c" / "a - b = c" stated in a text. */
const facts = (t: string) => [...t.matchAll(/(?<![-+] )\b(\d+) ([+-]) (\d+) = (\d+)/g)].map((m) => [+m[1], m[2], +m[3], +m[4]] as const);

describe('data/r1', () => {
  it('is what scripts/r1-data.ts writes, deterministically', () => {
    const made = makeR1Data();
    expect(made.map(([f]) => f)).toEqual(FILES);
    const tmp = mkdtempSync(join(tmpdir(), 'r1-data-'));
    for (const [f, data] of made) {
      writeJsonl(join(tmp, f), data);
      expect(readFileSync(join(tmp, f)).equals(readFileSync(join(DATA, f))), `${f} differs: rerun npm run data`).toBe(true);
    }
    expect(JSON.stringify(makeR1Data(7)[1])).not.toBe(JSON.stringify(made[1])); // the seed matters
  });

  it('has both tasks, both languages and every difficulty, with right reference answers', () => {
    for (const f of ['train.jsonl', 'test.jsonl']) {
      const xs = rows[f];
      expect(share(xs, (r) => r.task === 'word')).toBeGreaterThan(0.45);
      expect(share(xs, (r) => r.task === 'countdown')).toBeGreaterThan(0.15); // small puzzles repeat, and repeats are dropped
      expect(share(xs, (r) => r.language === 'zh')).toBeGreaterThan(0.35);
      expect(share(xs, (r) => r.language === 'en')).toBeGreaterThan(0.35);
      expect(new Set(xs.filter((r) => r.task === 'word').map((r) => r.difficulty))).toEqual(new Set([1, 2, 3]));
      expect(new Set(xs.filter((r) => r.task === 'countdown').map((r) => r.difficulty))).toEqual(new Set([2, 3]));
      for (const r of xs) {
        if (r.task === 'countdown')
          expect(countdownScore(r.answer as string, r.numbers as number[], r.target as number), JSON.stringify(r)).toBe(1);
        else expect(String(r.answer)).toMatch(/^\d+$/);
        expect(score(` <think> x </think> <answer> ${r.answer} </answer>`, r)).toBe(1);
      }
    }
  });

  it('keeps the test problems out of training: no shared key, no test prompt in any training text', () => {
    const pool = new Rng(20250122).shuffle(distinctReasoningProblems(20250121, 2200));
    const [test, train] = [pool.slice(0, 200), pool.slice(200)];
    expect(test.map((p) => p.prompt)).toEqual(rows['test.jsonl'].map((r) => r.prompt));
    expect(train.map((p) => p.prompt)).toEqual(rows['train.jsonl'].map((r) => r.prompt));
    const testKeys = new Set(test.map((p) => p.key));
    expect(train.filter((p) => testKeys.has(p.key))).toEqual([]);
    const trainingText = [
      ...rows['corpus.jsonl'].map((r) => r.text),
      ...rows['cold-start.jsonl'].map((r) => r.prompt),
      ...rows['train.jsonl'].map((r) => r.prompt),
    ].join('\n');
    for (const r of rows['test.jsonl']) expect(trainingText.includes(r.prompt as string), r.prompt as string).toBe(false);
  });

  it('holds out corpus-like documents that the corpus does not have, for the pretraining eval loss', () => {
    const corpus = new Set(rows['corpus.jsonl'].map((r) => r.text));
    const held = rows['heldout.jsonl'].map((r) => r.text as string);
    expect(held).toHaveLength(500);
    expect(held.filter((t) => corpus.has(t))).toEqual([]);
    expect(new Set(held).size).toBeGreaterThan(450); // short arithmetic facts may repeat among themselves
    for (const r of rows['test.jsonl'])
      expect(
        held.some((t) => t.includes(r.prompt as string)),
        r.prompt as string,
      ).toBe(false);
    expect(share(rows['heldout.jsonl'], (r) => /[\u4e00-\u9fff]/.test(r.text as string))).toBeGreaterThan(0.3); // both languages, as the corpus
  });

  it('excludes by problem, not by wording: the same numbers in the other language are the same problem', () => {
    const a = distinctReasoningProblems(1, 50, { zhShare: 0 }),
      keys = new Set(a.map((p) => p.key));
    const b = distinctReasoningProblems(1, 50, { zhShare: 1 }, keys);
    expect(b.some((p) => keys.has(p.key))).toBe(false);
    // The same draws in the other language give the same keys: they would all have been excluded.
    const again = distinctReasoningProblems(1, 50, { zhShare: 1 });
    expect(again.map((p) => p.key)).toEqual(a.map((p) => p.key));
    expect(again.every((p) => p.language === 'zh') && a.every((p) => p.language === 'en')).toBe(true);
  });

  it('has a bilingual corpus without the tag habit, with language mixing, and only right arithmetic', () => {
    const texts = rows['corpus.jsonl'].map((r) => r.text as string);
    expect(texts.length).toBe(16000);
    const template = texts.filter((t) => t.startsWith('A conversation between User and Assistant.'));
    expect(template.length / texts.length).toBeGreaterThan(0.07);
    expect(template.length / texts.length).toBeLessThan(0.13);
    const reply = (t: string) => t.slice(t.lastIndexOf('Assistant:') + 'Assistant:'.length);
    const full = template.filter((t) => strictFormat(`${reply(t)}`) === 1).length / texts.length;
    expect(full).toBeGreaterThan(0.001);
    expect(full).toBeLessThan(0.01); // the form is rare: RL has to find it
    const zh = share(rows['corpus.jsonl'], (r) => /[\u4e00-\u9fff]/.test(r.text as string));
    expect(zh).toBeGreaterThan(0.3);
    // Worked solutions that switch language within the reasoning: English steps and Chinese steps.
    const mixed = texts.filter((t) => /^(Question: |Problem: )?[A-Z][a-z].*\b(Add|Take away) \d+: .*(加上|减去)\d+：/.test(t));
    expect(mixed.length).toBeGreaterThan(100);
    for (const t of texts) for (const [a, op, b, c] of facts(t)) expect(op === '+' ? a + b : a - b, t).toBe(c);
  });

  it('has cold-start chains of thought in one language each: reasoning, summary, answer', () => {
    const cs = rows['cold-start.jsonl'];
    expect(cs.length).toBeGreaterThanOrEqual(300);
    for (const r of cs) {
      const c = r.completion as string;
      expect(strictFormat(c), c).toBe(1);
      expect(languageShare(chainOfThought(c), r.language as string), c).toBe(1);
      expect(c).toMatch(/(The answer is |答案是)/);
      // The summary states the answer.
      expect(c.slice(c.search(/(The answer is |答案是)/))).toContain(/<answer> (.*) <\/answer>/.exec(c)![1]);
      for (const [a, op, b, d] of facts(c)) expect(op === '+' ? a + b : a - b, c).toBe(d);
    }
    expect(share(cs, (r) => r.language === 'zh')).toBeGreaterThan(0.3);
  });

  it('has general rows for the second SFT (messages) and the final RL (prompt), in both languages', () => {
    const g = rows['general.jsonl'];
    expect(g.length).toBeGreaterThanOrEqual(300);
    for (const r of g) {
      expect(typeof r.prompt).toBe('string');
      expect((r.messages as { role: string }[]).map((m) => m.role)).toEqual(['user', 'assistant']);
      expect(['en', 'zh']).toContain(r.language);
    }
    expect(share(g, (r) => r.language === 'zh')).toBeGreaterThan(0.2);
    expect(g.some((r) => /^Write|^写|^用中文写/.test(r.prompt as string))).toBe(true);
  });

  it('the accuracy reward verifies Countdown answers: any expression using each number once that reaches the target', () => {
    const row = { prompt: 'p', answer: '7 + 5 - 3', numbers: [3, 5, 7], target: 9 };
    expect(score(' <think> t </think> <answer> 5 + 7 - 3 </answer>', row)).toBe(1);
    expect(score(' <think> t </think> <answer> 7 - 3 + 5 = 9 </answer>', row)).toBe(1);
    expect(score(' <think> t </think> <answer> 7 + 5 </answer>', row)).toBe(0); // a number unused
    expect(score(' <think> t </think> <answer> 7 + 5 - 3 - 3 + 3 </answer>', row)).toBe(0); // 3 used three times
    expect(score(' <think> t </think> <answer> 7 + 5 + 3 </answer>', row)).toBe(0); // wrong value
    expect(score(' <think> t </think> <answer> 9 </answer>', row)).toBe(0); // the target is not an answer
    expect(score('7 + 5 - 3', row)).toBe(0); // tagged_only: no answer block
  });
});
