// The shipped data of the tools recipe (data/tools): what scripts/tools-data.ts writes, byte for
// byte; held-out products kept out of the prompts and the corpus; tool-call traces a small share of
// the corpus, written exactly as a multi-turn rollout builds a call and its output.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeJsonl } from '../src/data/io.ts';
import { toolCallText, toolReply } from '../src/data/products.ts';
import { R1_FORMAT, outputBlock, parseR1Call } from '../src/rollout/multi-turn.ts';
import { strictFormat } from '../rewards/format.ts';
import { TOOLS_COUNTS, TRACE_SHARE, makeToolsData } from '../scripts/tools-data.ts';

const DATA = join(import.meta.dirname, '..', 'data', 'tools');
const made = Object.fromEntries(makeToolsData()) as Record<string, Record<string, string>[]>;
const PRODUCT = /^What is (\d{3}) \* (\d{3})\?$/;

describe('data/tools', () => {
  it('is what scripts/tools-data.ts writes', () => {
    const tmp = mkdtempSync(join(tmpdir(), 'r1-tools-data-'));
    for (const [f, rows] of Object.entries(made)) {
      writeJsonl(join(tmp, f), rows);
      expect(readFileSync(join(tmp, f)).equals(readFileSync(join(DATA, f))), `${f}: rerun npx tsx scripts/tools-data.ts`).toBe(true);
    }
  });

  it('asks products of two 3-digit numbers with right answers; the held-out ones are in no prompt or trace', () => {
    expect(made['train.jsonl']).toHaveLength(TOOLS_COUNTS.train);
    expect(made['test.jsonl']).toHaveLength(TOOLS_COUNTS.test);
    const key = (a: number, b: number) => `${Math.min(a, b)}*${Math.max(a, b)}`;
    const keys = (rows: Record<string, string>[]) =>
      rows.map((r) => {
        const [, a, b] = PRODUCT.exec(r.prompt)!;
        expect(r.answer).toBe(String(Number(a) * Number(b)));
        return key(Number(a), Number(b));
      });
    const held = new Set(keys(made['test.jsonl']));
    expect(held.size).toBe(TOOLS_COUNTS.test);
    expect(keys(made['train.jsonl']).filter((k) => held.has(k))).toEqual([]);
    const traced = made['corpus.jsonl'].flatMap((r) => [...r.text.matchAll(/print\((\d+) \* (\d+)\)/g)].map((m) => key(+m[1], +m[2])));
    expect(traced.filter((k) => held.has(k))).toEqual([]);
  });

  it('gives tool-call traces a small share of the corpus, some in the full form, written as a rollout builds them', () => {
    const texts = made['corpus.jsonl'].map((r) => r.text);
    const traces = texts.filter((t) => t.includes('<code>'));
    expect(traces.length / texts.length).toBeGreaterThan(TRACE_SHARE - 0.02);
    expect(traces.length / texts.length).toBeLessThan(TRACE_SHARE + 0.02);
    const replies = traces.map((t) => t.split(' Assistant:')[1]);
    const full = replies.filter((r) => strictFormat(r) === 1);
    expect(full.length / replies.length).toBeGreaterThan(0.25);
    expect(full.length / replies.length).toBeLessThan(0.45);
    // The call and its output as the r1 form writes them: the model's turn ends at </code> (its last
    // token holding the newline), the runner appends the output block.
    const p = { a: 347, b: 862, result: 347 * 862 };
    const turn = ` <think> <code>\nprint(347 * 862)\n</code>\n`;
    const call = parseR1Call(turn, ['python']);
    expect(call).toEqual({ tool: 'python', code: 'print(347 * 862)\n' });
    const { open, close } = R1_FORMAT.around(turn);
    expect(` <think> ${toolCallText(p)}`).toBe(turn + open + String(p.result) + close);
    expect(outputBlock({ tool: 'python', code: '', output: '299114\n', error: null })).toBe(`\n<output>\n299114\n</output>\n`);
    expect(strictFormat(toolReply(p))).toBe(1);
  });

  it('ships the base the recipe starts from (data/tools-base), its files as SHA256SUMS lists them', () => {
    const base = join(import.meta.dirname, '..', 'data', 'tools-base');
    const sums = readFileSync(join(base, 'SHA256SUMS'), 'utf8').trim().split('\n');
    expect(sums.map((l) => l.split(/\s+/)[1]).sort()).toEqual(
      ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'].sort(),
    );
    for (const line of sums) {
      const [hash, file] = line.split(/\s+/);
      expect(
        createHash('sha256')
          .update(readFileSync(join(base, file)))
          .digest('hex'),
        file,
      ).toBe(hash);
    }
  });
});
