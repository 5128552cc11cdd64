import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { describe, expect, it } from 'vitest';
import { applyTemplate, R1_ZERO_TEMPLATE, renderChat } from '../src/data/chat.ts';
import { readRows, writeJsonl } from '../src/data/io.ts';
import { packSequences } from '../src/data/packing.ts';
import { batchIndices } from '../src/stages/batches.ts';
import { distinctProblems, makeProblem, problemKey, taskRows, workedSteps } from '../src/data/tasks.ts';
import { Rng } from '../src/engine/rng.ts';
import { UserError } from '../src/errors.ts';

const dir = mkdtempSync(join(tmpdir(), 'r1-data-'));
const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

describe('readRows', () => {
  it('reads JSON Lines, skipping blank lines', async () => {
    const p = file('ok.jsonl', '{"a":1}\n\n{"a":2,"b":"x"}\n');
    expect(await readRows(p)).toEqual([{ a: 1 }, { a: 2, b: 'x' }]);
  });

  it('names the file and line of a truncated or non-object line', async () => {
    const bad = file('bad.jsonl', '{"a":1}\n\n{"a":');
    await expect(readRows(bad)).rejects.toThrow(`${bad}:3: not valid JSON`);
    await expect(readRows(bad)).rejects.toBeInstanceOf(UserError);
    const arr = file('arr.jsonl', '{"a":1}\n[1,2]\n');
    await expect(readRows(arr)).rejects.toThrow(`${arr}:2: a row must be a JSON object`);
  });

  it('reads a JSON array of objects and rejects anything else', async () => {
    expect(await readRows(file('ok.json', '[{"q":"x"},{"q":"y"}]'))).toEqual([{ q: 'x' }, { q: 'y' }]);
    await expect(readRows(file('obj.json', '{"q":"x"}'))).rejects.toThrow(/must be an array of objects/);
    await expect(readRows(file('broken.json', '[{"q":'))).rejects.toThrow(/not valid JSON/);
  });

  it('reads Parquet written by hyparquet-writer', async () => {
    const buf = parquetWriteBuffer({
      columnData: [
        { name: 'prompt', data: ['What is 1 + 2?', '你好'], type: 'STRING' },
        { name: 'answer', data: [3, 7], type: 'INT32' },
      ],
    });
    const p = join(dir, 'rows.parquet');
    writeFileSync(p, new Uint8Array(buf));
    expect(await readRows(p)).toEqual([
      { prompt: 'What is 1 + 2?', answer: 3 },
      { prompt: '你好', answer: 7 },
    ]);
    // INT64 columns come back from hyparquet as BigInt, which JSON and arithmetic reject: numbers here.
    const wide = parquetWriteBuffer({
      columnData: [
        { name: 'n', data: [1n, 2n ** 40n], type: 'INT64' },
        { name: 'tests', data: [[{ input: '1' }], []], type: 'JSON' },
      ],
    });
    const q = join(dir, 'wide.parquet');
    writeFileSync(q, new Uint8Array(wide));
    expect(await readRows(q)).toEqual([
      { n: 1, tests: [{ input: '1' }] },
      { n: 2 ** 40, tests: [] },
    ]);
    await expect(readRows(file('junk.parquet', 'not parquet'))).rejects.toThrow(/junk\.parquet: not a readable Parquet file/);
  });

  it('says which dataset is missing', async () => {
    await expect(readRows(join(dir, 'nope.jsonl'))).rejects.toThrow(/nope\.jsonl does not exist/);
  });
});

describe('writeJsonl', () => {
  it('round-trips rows and leaves no temporary file behind', async () => {
    const sub = mkdtempSync(join(dir, 'w-'));
    const p = join(sub, 'out.jsonl');
    const rows = [{ text: 'a\nb "q"' }, { n: 1, zh: '中文' }];
    writeJsonl(p, rows);
    writeJsonl(p, rows); // overwrite in place
    expect(await readRows(p)).toEqual(rows);
    expect(readFileSync(p, 'utf8').split('\n')).toHaveLength(3);
    expect(readdirSync(sub)).toEqual(['out.jsonl']);
  });
});

describe('chat and prompt templates', () => {
  it('renders roles with special tokens and an optional generation prompt', () => {
    const msgs = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello' },
    ];
    expect(renderChat(msgs, { addGenerationPrompt: false })).toBe(
      '<|system|>Be brief.<|end_of_turn|><|user|>Hi<|end_of_turn|><|assistant|>Hello<|end_of_turn|>',
    );
    expect(renderChat(msgs.slice(0, 2), { addGenerationPrompt: true })).toBe(
      '<|system|>Be brief.<|end_of_turn|><|user|>Hi<|end_of_turn|><|assistant|>',
    );
    expect(() => renderChat([{ role: 'robot', content: 'x' }], { addGenerationPrompt: false })).toThrow(/unknown chat role 'robot'/);
  });

  it('ships the R1-Zero template word for word', () => {
    expect(applyTemplate('r1-zero', 'What is 2 + 3?')).toBe(
      'A conversation between User and Assistant. The user asks a question, and the Assistant solves it. The assistant ' +
        'first thinks about the reasoning process in the mind and then provides the user with the answer. The reasoning ' +
        'process and answer are enclosed within <think> </think> and <answer> </answer> tags, respectively, i.e., ' +
        '<think> reasoning process here </think> <answer> answer here </answer>. User: What is 2 + 3?. Assistant:',
    );
    expect(R1_ZERO_TEMPLATE).toContain('{prompt}');
  });

  it('applies chat, none and custom templates, and rejects an unknown name', () => {
    expect(applyTemplate('chat', 'Hi')).toBe('<|user|>Hi<|end_of_turn|><|assistant|>');
    expect(applyTemplate('none', 'Hi')).toBe('Hi');
    expect(applyTemplate('Q: {prompt}\nA ({prompt}):', '1+1')).toBe('Q: 1+1\nA (1+1):');
    expect(() => applyTemplate('r1zero', 'Hi')).toThrow(/not a known name.*no \{prompt\}/);
  });
});

describe('packing', () => {
  it('joins documents with EOS and cuts full rows, dropping the tail', () => {
    expect(packSequences([[1, 2, 3], [4], [5, 6]], 3, 0)).toEqual([
      [1, 2, 3],
      [0, 4, 0],
      [5, 6, 0],
    ]);
    expect(packSequences([[1, 2, 3], [4]], 4, 0)).toEqual([[1, 2, 3, 0]]); // [4, 0] does not fill a row
    expect(packSequences([[1, 2]], 4, 9)).toEqual([]);
    expect(() => packSequences([[1]], 0, 0)).toThrow(/positive integer/);
  });
});

describe('batch order (stages/batches.ts)', () => {
  it('serves every row once per epoch, in a seeded order that changes by epoch', () => {
    const epoch = (e: number, seed: number) => Array.from({ length: 5 }, (_, i) => batchIndices(e * 5 + i, 2, 10, seed)).flat();
    const e0 = epoch(0, 3),
      e1 = epoch(1, 3);
    expect([...e0].sort((a, b) => a - b)).toEqual(Array.from({ length: 10 }, (_, i) => i));
    expect([...e1].sort((a, b) => a - b)).toEqual(Array.from({ length: 10 }, (_, i) => i));
    expect(e1).not.toEqual(e0);
    expect(epoch(0, 4)).not.toEqual(e0);
  });

  it('gives batch i the same rows whenever it is asked (a resumed run reads what a straight run reads)', () => {
    const straight = Array.from({ length: 9 }, (_, i) => batchIndices(i, 3, 7, 11));
    expect(batchIndices(6, 3, 7, 11)).toEqual(straight[6]); // crosses epochs: 7 rows, 3 per batch
    expect(Array.from({ length: 4 }, (_, i) => batchIndices(5 + i, 3, 7, 11))).toEqual(straight.slice(5));
  });
});

describe('task generators', () => {
  it('are deterministic per seed and differ across seeds', () => {
    expect(taskRows(5, 20)).toEqual(taskRows(5, 20));
    expect(taskRows(5, 20)).not.toEqual(taskRows(6, 20));
  });

  it('give right answers, distinct problems, and honour the exclusion set', () => {
    const rows = taskRows(1, 300, { min: 1, max: 50 });
    for (const r of rows) {
      const m = /^What is (\d+) \+ (\d+)\?$/.exec(r.prompt)!;
      expect(Number(r.answer)).toBe(Number(m[1]) + Number(m[2]));
      expect(r.task).toBe('sum');
    }
    expect(new Set(rows.map((r) => r.prompt)).size).toBe(300);
    const first = distinctProblems(1, 100);
    const next = distinctProblems(2, 100, {}, new Set(first.map(problemKey)));
    expect(next.some((p) => first.map(problemKey).includes(problemKey(p)))).toBe(false);
    expect(() => distinctProblems(1, 10, { min: 1, max: 2 })).toThrow(/only 4 distinct problems/);
  });

  it('makes differences that never go below zero, in range', () => {
    const rng = new Rng(9);
    for (let i = 0; i < 500; i++) {
      const p = makeProblem(rng, { min: 3, max: 20, differenceShare: 0.5 });
      expect(p.a >= 3 && p.a <= 20 && p.b >= 3 && p.b <= 20).toBe(true);
      expect(p.result).toBe(p.kind === 'sum' ? p.a + p.b : p.a - p.b);
      expect(p.result).toBeGreaterThanOrEqual(0);
    }
  });

  it('writes worked steps whose every equation holds and which end in the result', () => {
    const rng = new Rng(2);
    for (let i = 0; i < 300; i++) {
      const p = makeProblem(rng, { min: 0, max: 99, differenceShare: 0.5 });
      const steps = workedSteps(p);
      for (const [, a, op, b, c] of steps.matchAll(/(\d+) ([+-]) (\d+) = (\d+)/g)) {
        expect(op === '+' ? +a + +b : +a - +b).toBe(+c);
      }
      expect(steps.endsWith(`= ${p.result}.`)).toBe(true);
    }
  });
});
