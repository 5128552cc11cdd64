// The llama.cpp engine under LoRA: the base written once, each sync only the adapters as a llama.cpp
// adapter file. On tiny llama (q/k rows permuted for llama.cpp's RoPE) and qwen2 (biases) models with
// non-zero B: greedy tokens of base + adapter equal those of the merged model written in full and
// those of r1kit's own generation, log-probs within 1e-3 of the merged file's; a second sync replaces
// the adapter (new tokens, one adapter held); the adapter file holds adapter tensors only.
import * as tf from '@tensorflow/tfjs-core';
import { readdirSync, statSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/engine/backend.ts';
import { Rng } from '../src/engine/rng.ts';
import { projectionParams } from '../src/model/checkpoint.ts';
import type { ModelConfig } from '../src/model/config.ts';
import { generate } from '../src/model/generate.ts';
import { LoraAdapters } from '../src/model/lora.ts';
import { Tokenizer } from '../src/model/tokenizer.ts';
import { Transformer } from '../src/model/transformer.ts';
import { float16Bits, readGgufInfo, writeGguf } from '../src/rollout/gguf.ts';
import { ggufLoraProblem, writeGgufLora } from '../src/rollout/gguf-lora.ts';
import { LlamaCppRollouts, llamaCppProblems } from '../src/rollout/llama-cpp.ts';
import { recipeError } from './fixtures/recipes/errors.ts';
import { optionalPresent } from './optional.ts';

const tok = Tokenizer.train(['the cat sat on the mat', 'a dog ran far away', 'one two three four'], { vocabSize: 300 });
const base = {
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
const CONFIGS: Record<string, ModelConfig> = {
  llama: base,
  qwen2: { ...base, model_type: 'qwen2', tie_word_embeddings: true },
};
const prompts = [
  [5, 6, 7, 8],
  [9, 10, 11],
  [12, 13, 14, 15, 16],
  [17, 18],
];
const greedy = { maxNewTokens: 8, temperature: 0, stopTokens: [tok.eosId] };

/** A model with peaked distributions (clear greedy winners) and rank-4 rsLoRA adapters on every projection. */
function loraModel(config: ModelConfig): Transformer {
  const model = Transformer.init(config, 3);
  for (const [k, v] of Object.entries(model.params)) if (!k.includes('norm')) v.assign(tf.mul(v, 4));
  model.attachAdapters(LoraAdapters.init(config, projectionParams(config), { r: 4, alpha: 6, use_rslora: true }, 'base', 1));
  return model;
}

describe('GGUF LoRA adapter file', () => {
  it("holds only the adapters' tensors, named and shaped as llama.cpp reads them", async () => {
    await initBackend('wasm');
    const model = loraModel(CONFIGS.llama);
    const dir = mkdtempSync(join(tmpdir(), 'gguf-lora-test-'));
    writeGgufLora(join(dir, 'a.gguf'), model.config, model.adapters!);
    const info = readGgufInfo(join(dir, 'a.gguf'));
    expect(info.metadata).toMatchObject({ 'general.type': 'adapter', 'general.architecture': 'llama', 'adapter.type': 'lora' });
    // rsLoRA: s = alpha / sqrt(r) = 3; llama.cpp multiplies by alpha' / r, so alpha' = s r = 12.
    expect(info.metadata['adapter.lora.alpha']).toBeCloseTo(12, 5);
    const names = info.tensors.map((t) => t.name);
    expect(names).toHaveLength(2 * 7 * 2);
    expect(names.every((n) => /^blk\.[01]\.(attn_q|attn_k|attn_v|attn_output|ffn_gate|ffn_up|ffn_down)\.weight\.lora_[ab]$/.test(n))).toBe(
      true,
    );
    const dims = (n: string) => info.tensors.find((t) => t.name === n)!.dims;
    expect(dims('blk.0.attn_k.weight.lora_a')).toEqual([64, 4]); // [in, r]
    expect(dims('blk.0.attn_k.weight.lora_b')).toEqual([4, 2 * 16]); // [r, out]
    expect(dims('blk.1.ffn_down.weight.lora_a')).toEqual([96, 4]);
    expect(info.tensors.every((t) => t.type === 0)).toBe(true); // float32
    // The base file of a LoRA sync: float16 matrices, float32 vectors, no adapter tensors.
    writeGguf(join(dir, 'b.gguf'), model, { weights: 'base', matrices: 'f16' });
    const b = readGgufInfo(join(dir, 'b.gguf'));
    expect(b.tensors.find((t) => t.name === 'blk.0.attn_q.weight')!.type).toBe(1);
    expect(b.tensors.find((t) => t.name === 'blk.0.attn_norm.weight')!.type).toBe(0);
    expect(b.tensors.some((t) => t.name.includes('lora'))).toBe(false);
    expect(statSync(join(dir, 'a.gguf')).size).toBeLessThan(statSync(join(dir, 'b.gguf')).size / 4);
    model.dispose();
  });

  it('rounds float32 to float16 to nearest even, with overflow, subnormals and NaN', () => {
    const x = Float32Array.from([1, -2, 65504, 65520, 2 ** -24, 2 ** -25, 1 / 3, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 0, Infinity, NaN]);
    expect([...float16Bits(x)].map((h) => h.toString(16))).toEqual([
      '3c00',
      'c000',
      '7bff',
      '7c00',
      '1',
      '0',
      '3555',
      '3c00',
      '3c02',
      '0',
      '7c00',
      '7e00',
    ]);
  });

  it('refuses, before the run, adapters llama.cpp cannot load', () => {
    expect(ggufLoraProblem(base, ['q_proj', 'v_proj'])).toBeNull();
    expect(ggufLoraProblem(base, ['q_proj', 'embed_tokens'])).toMatch(/loads LoRA adapters on q_proj, .* only, not embed_tokens/);
    const recipe = `stages:\n  - type: grpo\n    model: ckpt\n    datasets: [data/tasks.jsonl]\n    max_prompt_length: 16\n    max_completion_length: 16\n    rollout: { engine: llama.cpp, device: cpu }\n    lora: { r: 4, target_modules: [q_proj, embed_tokens] }\n`;
    expect(recipeError(recipe, join(import.meta.dirname, 'fixtures', 'recipes', 'inline.yaml'))).toMatch(
      /stages\.0\.rollout\.engine: .*not embed_tokens .*drop it from lora\.target_modules, or use rollout\.engine: tfjs/,
    );
  });
});

const LLAMA_CPP = optionalPresent(
  'llama.cpp LoRA rollout tests',
  llamaCppProblems('cpu')[0] ?? null,
  '`npm install` (node-llama-cpp ships prebuilt CPU builds)',
);

describe.skipIf(!LLAMA_CPP).each(Object.keys(CONFIGS))('llama.cpp rollouts with LoRA (%s)', (fam) => {
  let model: Transformer;
  let adapter: LlamaCppRollouts, merged: LlamaCppRollouts, half: LlamaCppRollouts;
  beforeAll(async () => {
    await initBackend('wasm');
    model = loraModel(CONFIGS[fam]);
    model.adapters!.drawB(11, 0.5);
    const settings = { device: 'cpu', threads: 1 } as const;
    adapter = await LlamaCppRollouts.open(model.config, tok, { ...settings, baseDtype: 'f32' });
    merged = await LlamaCppRollouts.open(model.config, tok, { ...settings, mergeAdapters: true });
    half = await LlamaCppRollouts.open(model.config, tok, settings);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([adapter?.close(), merged?.close(), half?.close()]);
    model?.dispose();
  });

  it("base + adapter gives the merged model's tokens and log-probs; a second sync replaces the adapter", async () => {
    const files = () => readdirSync(adapter.workDir).sort();
    let fromAdapter: Awaited<ReturnType<LlamaCppRollouts['generate']>> = [];
    for (const seed of [11, 12]) {
      model.adapters!.drawB(seed, 0.5);
      adapter.sync(model);
      merged.sync(model);
      // The first sync writes the base and an adapter; later ones an adapter only.
      expect(files().filter((f) => f.startsWith('policy-'))).toHaveLength(seed === 11 ? 1 : 0);
      const local = generate(model, tok, prompts, { ...greedy, rng: new Rng(0) });
      const before = fromAdapter;
      fromAdapter = await adapter.generate(prompts, greedy, new Rng(0));
      const fromMerged = await merged.generate(prompts, greedy, new Rng(0));
      expect(fromAdapter.map((c) => c.tokens)).toEqual(fromMerged.map((c) => c.tokens));
      expect(fromAdapter.map((c) => c.tokens)).toEqual(local.map((c) => c.tokens));
      let worst = 0;
      fromAdapter.forEach((c, i) => c.logprobs.forEach((lp, j) => (worst = Math.max(worst, Math.abs(lp - fromMerged[i].logprobs[j])))));
      console.log(`${fam} LoRA sync ${seed - 10}: base + adapter vs merged GGUF, worst log-prob difference ${worst.toExponential(2)}`);
      expect(worst).toBeLessThan(1e-3);
      if (before.length) expect(fromAdapter.map((c) => c.tokens)).not.toEqual(before.map((c) => c.tokens));
      expect(adapter.loadedAdapterCount()).toBe(1);
    }
    expect(files().filter((f) => f.startsWith('adapter-'))).toHaveLength(1); // the retired adapter's file is gone
  }, 60_000);

  it('a float16 base stays within 2e-2 of the float32 merged log-probs', async () => {
    model.adapters!.drawB(13, 0.5);
    half.sync(model);
    merged.sync(model);
    const a = await half.generate(prompts, greedy, new Rng(0));
    const b = await merged.generate(prompts, greedy, new Rng(0));
    let worst = 0;
    // Compared where the two agree so far (a float16 rounding may flip a near tie).
    a.forEach((c, i) => {
      for (let j = 0; j < c.tokens.length && c.tokens[j] === b[i].tokens[j]; j++)
        worst = Math.max(worst, Math.abs(c.logprobs[j] - b[i].logprobs[j]));
    });
    console.log(`${fam} LoRA: float16 base + adapter vs float32 merged, worst greedy log-prob difference ${worst.toExponential(2)}`);
    expect(worst).toBeLessThan(2e-2);
    expect(a[0].tokens[0]).toBe(b[0].tokens[0]);
  }, 60_000);
});
