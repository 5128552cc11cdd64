// The llama.cpp rollout engine against the tfjs one on a tiny llama model: the GGUF export loads,
// greedy completions are the same tokens, and sampled tokens' log-probs are within 5e-3 of what
// the trainer recomputes (llama.cpp's KV cache is F16).
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '../src/engine/backend.ts';
import { Rng } from '../src/engine/rng.ts';
import { generate } from '../src/model/generate.ts';
import { Tokenizer } from '../src/model/tokenizer.ts';
import { Transformer } from '../src/model/transformer.ts';
import { ggufContents, permuteRope, writeGguf } from '../src/rollout/gguf.ts';
import { LlamaCppRollouts, llamaCppModelProblem, llamaCppProblems } from '../src/rollout/llama-cpp.ts';
import { completionLogprobs } from '../src/stages/logprobs.ts';
import { optionalPresent } from './optional.ts';
import { type CallFormat, type TurnSampler, generateWithTools } from '../src/rollout/multi-turn.ts';
import type { CallRunner, ToolSession } from '../src/rollout/tools.ts';

const tok = Tokenizer.train(['the cat sat on the mat', 'a dog ran far away', 'one two three four'], { vocabSize: 300 });
const config = {
  vocab_size: tok.vocabSize,
  hidden_size: 64,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  intermediate_size: 96,
  max_position_embeddings: 64,
  rope_theta: 10000,
  rms_norm_eps: 1e-6,
  tie_word_embeddings: false,
};
const prompts = [
  [5, 6, 7, 8],
  [9, 10, 11],
  [12, 13, 14, 15, 16],
  [17, 18],
];

describe('GGUF export', () => {
  it('writes the header of ggml docs/gguf.md and permutes rotate-half rows to adjacent pairs', async () => {
    await initBackend('wasm');
    const model = Transformer.init(config, 1);
    const file = join(mkdtempSync(join(tmpdir(), 'gguf-test-')), 'm.gguf');
    writeGguf(file, model);
    const buf = readFileSync(file);
    expect(buf.subarray(0, 4).toString('latin1')).toBe('GGUF');
    expect(buf.readUInt32LE(4)).toBe(3);
    const { tensors, metadata } = ggufContents(model);
    expect(Number(buf.readBigUInt64LE(8))).toBe(tensors.length);
    expect(Number(buf.readBigUInt64LE(16))).toBe(Object.keys(metadata).length);
    expect(metadata['general.architecture']).toEqual({ type: 'string', value: 'llama' });
    // One head of D = 4 rows of width 1: rows (0, 2) and (1, 3) are the rotated pairs -> adjacent.
    expect([...permuteRope(Float32Array.from([10, 11, 12, 13]), 1, 4, 1)]).toEqual([10, 12, 11, 13]);
    model.dispose();
  });

  it('names what it cannot export', () => {
    expect(llamaCppModelProblem({ ...config, model_type: 'deepseek_v3' })).toMatch(
      /exports llama, qwen2, qwen3 models, not deepseek_v3.*rollout.engine: tfjs/,
    );
    expect(llamaCppModelProblem(config)).toBeNull();
  });
});

const LLAMA_CPP = optionalPresent(
  'llama.cpp rollout tests',
  llamaCppProblems('cpu')[0] ?? null,
  '`npm install` (node-llama-cpp ships prebuilt CPU builds)',
);

describe.skipIf(!LLAMA_CPP)('llama.cpp rollouts', () => {
  let model: Transformer;
  let engine: LlamaCppRollouts;
  beforeAll(async () => {
    await initBackend('wasm');
    model = Transformer.init(config, 3);
    // Larger weights than the init's make the distributions peaked, so greedy has clear winners.
    for (const [k, v] of Object.entries(model.params)) if (!k.includes('norm')) v.assign(tf.mul(v, 4));
    engine = await LlamaCppRollouts.open(config, tok, { device: 'cpu', threads: 1 });
    engine.sync(model);
  }, 60_000);
  afterAll(async () => {
    await engine?.close();
    model?.dispose();
  });

  it("greedy completions equal the tfjs engine's", async () => {
    const sampling = { maxNewTokens: 8, temperature: 0, stopTokens: [tok.eosId] };
    const local = generate(model, tok, prompts, { ...sampling, rng: new Rng(0) });
    const parts: number[] = [];
    const remote = await engine.generate(prompts, sampling, new Rng(0), 2, (offset) => parts.push(offset));
    expect(remote.map((c) => c.tokens)).toEqual(local.map((c) => c.tokens));
    expect(remote.map((c) => c.text)).toEqual(local.map((c) => c.text));
    expect(parts.sort()).toEqual([0, 2]);
    remote.forEach((c, i) => c.logprobs.forEach((lp, j) => expect(Math.abs(lp - local[i].logprobs[j])).toBeLessThan(5e-3)));
  }, 60_000);

  it('takes part in multi-turn rollouts: turns stop at the call, the output is appended, greedy trajectories equal the tfjs ones; each row its own stream', async () => {
    const sampling = { maxNewTokens: 16, temperature: 0, stopTokens: [tok.eosId] };
    // A call ends where the greedy model writes its third token's text, so both engines make one.
    const [first] = generate(model, tok, [prompts[0]], { ...sampling, rng: new Rng(0) });
    const close = tok.decode(first.tokens.slice(2, 3));
    expect(close.length).toBeGreaterThan(0);
    const format: CallFormat = { close, parse: () => ({ tool: 'python', code: 'x' }), around: () => ({ open: '', close: '' }) };
    const runner: CallRunner = {
      call: async (_s: ToolSession, tool: string, code: string) => ({ tool, code, output: 'the cat', error: null }),
      malformed: (error: string) => ({ tool: '', code: '', output: '', error }),
      takeMetrics: () => ({ calls: 0, errors: 0, timeouts: 0 }),
      close: async () => {},
    };
    const tools = { names: ['python' as const], max_turns: 1, max_output_tokens: 8, timeout_s: 1, format: 'r1' as const };
    const run = (sample: TurnSampler) => generateWithTools(sample, tok, runner, prompts, sampling, new Rng(1), tools, format);
    const viaLlama = await run((c, o) => engine.sampleRows(c, o, o.rngs!));
    const viaTfjs = await run((c, o) => generate(model, tok, c, o));
    expect(viaLlama.map((c) => c.tokens)).toEqual(viaTfjs.map((c) => c.tokens));
    expect(viaLlama[0].trajectory!.turns.map((t) => t.call?.output ?? null)).toEqual(['the cat', null]);
    expect(viaLlama[0].trajectory!.modelTokens).toContain(0);
    // Row i draws from rngs[i] only: alone or beside another row, the same tokens.
    const hot = { maxNewTokens: 10, temperature: 1 };
    const both = await engine.sampleRows([prompts[0], prompts[1]], hot, [new Rng(4), new Rng(5)]);
    const alone = await engine.sampleRows([prompts[1]], hot, [new Rng(5)]);
    expect(alone[0].tokens).toEqual(both[1].tokens);
  }, 60_000);

  it("sampled log-probs are within 5e-3 of the trainer's recomputed ones", async () => {
    const T = 0.9;
    const cs = await engine.generate(prompts, { maxNewTokens: 10, temperature: T, topK: 50, topP: 0.95 }, new Rng(7));
    const batch = { inputs: prompts.map((p, i) => [...p, ...cs[i].tokens]), promptLengths: prompts.map((p) => p.length) };
    const lp = completionLogprobs(model, batch, [0, 1, 2, 3], T);
    const trainer = lp.arraySync();
    lp.dispose();
    let worst = 0;
    cs.forEach((c, i) => c.logprobs.forEach((x, j) => (worst = Math.max(worst, Math.abs(x - trainer[i][j])))));
    expect(cs.every((c) => c.tokens.length === 10)).toBe(true);
    console.log(`llama.cpp vs trainer: worst sampled log-prob difference ${worst.toExponential(2)}`);
    expect(worst).toBeLessThan(5e-3);
  }, 60_000);

  it('stops at stop strings and cuts the text after them, as the tfjs engine does', async () => {
    const text = tok.decode(prompts[0]);
    expect(text.length).toBeGreaterThan(0);
    const greedy = await engine.generate([prompts[0]], { maxNewTokens: 8, temperature: 0 }, new Rng(0));
    const stop = tok.decode(greedy[0].tokens.slice(0, 3)).slice(-1);
    const sampling = { maxNewTokens: 8, temperature: 0, stopStrings: [stop] };
    const [remote] = await engine.generate([prompts[0]], sampling, new Rng(0));
    const [local] = generate(model, tok, [prompts[0]], { ...sampling, rng: new Rng(0) });
    expect(remote).toMatchObject({ tokens: local.tokens, text: local.text, finishReason: local.finishReason });
    expect(remote.finishReason).toBe('stop');
  }, 60_000);
});
