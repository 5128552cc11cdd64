// DPO truncation (issue 12 item 12): a prompt longer than max_prompt_length / max_length is cut from
// the left (its end kept), a reply's end is cut to fit, and every pair keeps at least one reply
// token on each side, so no pair trains nothing; rows cut are counted and said once.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/engine/backend.ts';
import { readMetrics } from '../src/metrics/logger.ts';
import { Tokenizer } from '../src/model/tokenizer.ts';
import { Transformer } from '../src/model/transformer.ts';
import type { StageContext } from '../src/stages/context.ts';
import { type Recipe, DpoStage, loadRecipe } from '../src/recipe/index.ts';
import { dpoPair, runDpo } from '../src/stages/dpo.ts';

const dir = mkdtempSync(join(tmpdir(), 'r1-dpo-trunc-'));
beforeAll(async () => {
  await initBackend('wasm');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const S = 99; // a one-token document start (BOS)
const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);

describe('dpoPair', () => {
  const prompt = [S, ...range(1, 11)]; // 11 tokens
  it('cuts the prompt from the left to max_prompt_length (document start kept) and the replies at the end to max_length', () => {
    const p = dpoPair(prompt, [20, 21, 22], [30], { maxPromptLength: 4, maxLength: 6, documentStart: [S] }, 'here');
    expect(p).toEqual({ prompt: [S, 8, 9, 10], chosen: [20, 21], rejected: [30], promptCut: true, completionCut: true });
  });
  it('cuts a prompt that would leave no reply token to max_length - 1, so each reply keeps one token', () => {
    // Old code: [...prompt, ...reply].slice(0, 5) kept 5 prompt tokens and no reply at all.
    const p = dpoPair(prompt, [20, 21, 22], [30, 31], { maxPromptLength: null, maxLength: 5, documentStart: [S] }, 'here');
    expect(p.prompt).toEqual([S, 8, 9, 10]);
    expect([p.chosen, p.rejected]).toEqual([[20], [30]]);
    // max_prompt_length above max_length: max_length wins. Without a document start, the plain tail.
    expect(dpoPair(prompt, [20], [30], { maxPromptLength: 512, maxLength: 3, documentStart: [] }, 'here').prompt).toEqual([9, 10]);
  });
  it('leaves a row that fits as it is', () => {
    expect(dpoPair([S, 1, 2], [20], [30, 31], { maxPromptLength: 512, maxLength: 64, documentStart: [S] }, 'here')).toEqual({
      prompt: [S, 1, 2],
      chosen: [20],
      rejected: [30, 31],
      promptCut: false,
      completionCut: false,
    });
  });
  it('reports a row that cannot hold a prompt token and a reply token, naming where and the lengths', () => {
    expect(() => dpoPair(prompt, [20], [30], { maxPromptLength: null, maxLength: 1, documentStart: [S] }, "stage 'dpo', row 3")).toThrow(
      "stage 'dpo', row 3: max_length 1 leaves no room for a prompt token and a completion token (prompt 11 tokens, chosen 1, rejected 1); set max_length >= 2",
    );
    expect(() => dpoPair(prompt, [], [30], { maxPromptLength: null, maxLength: 8, documentStart: [S] }, "stage 'dpo', row 2")).toThrow(
      /row 2: an empty prompt or completion/,
    );
  });
  it('max_length < 2 is refused when the recipe is checked', () => {
    expect(() => loadRecipe(join('tests', 'fixtures', 'rl', 'rl.yaml'), { set: ['stages.2.max_length=1'] })).toThrow(
      /stages\.2\.max_length.*1 leaves no room for a prompt token and a reply token \(needs >= 2\)/s,
    );
  });
});

describe('the DPO stage with prompts longer than max_length', () => {
  it('trains every pair (the rewards move), counts the rows cut in the summary and says so once', async () => {
    const tok = Tokenizer.train(['the cat sat on the mat', 'a dog ran far away', 'yes no'], { vocabSize: 280 });
    const config = {
      vocab_size: tok.vocabSize,
      hidden_size: 16,
      num_hidden_layers: 1,
      num_attention_heads: 2,
      num_key_value_heads: 1,
      intermediate_size: 32,
      max_position_embeddings: 64,
      rope_theta: 10000,
      rms_norm_eps: 1e-6,
      tie_word_embeddings: true,
    };
    const long = 'the cat sat on the mat and a dog ran far away. '.repeat(6);
    const rows = [0, 1, 2, 3].map((i) => ({ prompt: `${i} ${long}`, chosen: 'yes', rejected: 'no' }));
    expect(tok.encode(rows[0].prompt).length).toBeGreaterThan(24);
    expect(Math.max(tok.encode('yes').length, tok.encode('no').length)).toBeLessThan(4); // + EOS: within 24 - 20
    const stage = {
      ...DpoStage.parse({
        type: 'dpo',
        template: 'none',
        max_prompt_length: 20,
        max_length: 24,
        per_device_train_batch_size: 2,
        max_steps: 3,
        learning_rate: 0.05,
        train_workers: 1,
      }),
      name: 'dpo',
    };
    const lines: string[] = [];
    const progressStream = Object.assign(new Writable({ write: (c, _e, cb) => (lines.push(String(c)), cb()) }), { isTTY: false });
    const ctx = {
      recipe: { seed: 0 } as Recipe,
      index: 0,
      runDir: dir,
      stageDir: join(dir, 'dpo'),
      hash: 'h',
      tokenizer: tok,
      loadModel: () => Transformer.init(config, 3),
      readDatasets: async () => rows,
      progressStream,
    } satisfies StageContext;
    const result = await runDpo(ctx, stage);
    expect(result.summary).toMatchObject({ pairs: 4, truncated_prompts: 4, truncated_completions: 0, steps: 3 });
    expect(lines.filter((l) => l.includes('prompt cut from the left'))).toEqual([
      '[dpo] of 4 rows, 4 had the prompt cut from the left and 0 a completion cut at the end to fit max_prompt_length 20 and max_length 24 (summary: truncated_prompts, truncated_completions)\n',
    ]);
    const metrics = readMetrics(join(dir, 'dpo', 'metrics.jsonl'));
    expect(metrics[0]['rewards/margins']).toBe(0); // policy == reference
    // Old code: both sequences of a pair were the same first 24 prompt tokens (the "completion" a
    // prompt token, no reply at all), so the margin stayed 0 at every step.
    expect(metrics.at(-1)!['rewards/margins'] as number).toBeGreaterThan(1e-3);
  });
});
