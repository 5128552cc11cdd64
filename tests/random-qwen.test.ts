// scripts/make-random-qwen.ts, the stand-in for Qwen2.5-0.5B-Instruct that scripts/qwen-check.sh runs
// at full size (minutes, so not here): its tensor list is the real model's (494,032,768 parameters),
// its values repeat for a seed, and a narrow model with the real vocabulary and Qwen tokenizer loads in
// r1kit with its chat template and generates greedily the tokens the PyTorch reference generates; and
// recipes/grpo-qwen-lora.yaml on that config passes the memory plan where OpenBLAS runs the products.
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { makeRandomQwen, QWEN25_05B_CONFIG, qwen2Tensors } from '../scripts/make-random-qwen.ts';
import { main } from '../src/cli/main.ts';
import { applyTemplate } from '../src/data/chat.ts';
import { loadBlas } from '../src/engine/kernels/blas.ts';
import { initBackend } from '../src/engine/backend.ts';
import { loadModel } from '../src/model/checkpoint.ts';
import { generate } from '../src/model/generate.ts';
import { Tokenizer } from '../src/model/tokenizer.ts';
import { documentIds } from '../src/stages/batches.ts';
import { TORCH, announceTorch, reference } from './hf-reference.ts';

announceTorch('tests/random-qwen.test.ts');
const dir = mkdtempSync(join(tmpdir(), 'r1-random-qwen-'));
beforeAll(() => initBackend('wasm'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Narrow widths, the real vocabulary (and so the real tokenizer's ids). std 0.1: at width 64 the real
 * config's 0.02 leaves each block's output too small beside the embedding, and greedy repeats one token. */
const NARROW = {
  initializer_range: 0.1,
  hidden_size: 64,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  intermediate_size: 96,
  num_hidden_layers: 2,
};
const sha = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

describe('random Qwen2.5-0.5B-config checkpoint', () => {
  it("lists Qwen2.5-0.5B's tensors: 494,032,768 parameters, tied embeddings, q/k/v biases", () => {
    const specs = qwen2Tensors(QWEN25_05B_CONFIG);
    const count = specs.reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1), 0);
    expect(count).toBe(494_032_768);
    const names = new Set(specs.map((s) => s.name));
    expect(names.has('lm_head.weight')).toBe(false);
    expect(specs.find((s) => s.name === 'model.layers.23.self_attn.k_proj.weight')?.shape).toEqual([128, 896]);
    expect(specs.find((s) => s.name === 'model.layers.0.self_attn.v_proj.bias')?.shape).toEqual([128]);
    expect(specs.find((s) => s.name === 'model.layers.0.mlp.down_proj.weight')?.shape).toEqual([896, 4864]);
    expect(names.has('model.layers.0.self_attn.o_proj.bias')).toBe(false);
  });

  it('writes the same bytes for a seed and other values for another seed', () => {
    const a = join(dir, 'a'),
      b = join(dir, 'b'),
      c = join(dir, 'c');
    makeRandomQwen({ out: a, seed: 3, config: NARROW });
    makeRandomQwen({ out: b, seed: 3, config: NARROW });
    makeRandomQwen({ out: c, seed: 4, config: NARROW });
    expect(sha(join(a, 'model.safetensors'))).toBe(sha(join(b, 'model.safetensors')));
    expect(sha(join(a, 'model.safetensors'))).not.toBe(sha(join(c, 'model.safetensors')));
    const config = JSON.parse(readFileSync(join(a, 'config.json'), 'utf8'));
    expect(config).toMatchObject({ ...QWEN25_05B_CONFIG, ...NARROW, max_window_layers: 2 });
  });

  it("loads with the real Qwen tokenizer and chat template; greedy tokens equal PyTorch's", async () => {
    const out = join(dir, 'narrow');
    makeRandomQwen({ out, seed: 0, config: NARROW });
    const tok = Tokenizer.load(out);
    expect(tok.chatTemplate).toBeTruthy();
    const text = applyTemplate('chat', 'What is 6 + 2?', tok.chatTemplate);
    expect(text).toBe('<|im_start|>user\nWhat is 6 + 2?<|im_end|>\n<|im_start|>assistant\n');
    const ids = documentIds(tok, text);
    expect(ids.slice(0, 3)).toEqual([151644, 872, 198]); // <|im_start|> user \n: Qwen2.5's ids too
    expect([...tok.eosIds].sort()).toEqual([151643, 151645]);
    const model = loadModel(out);
    const [ours] = generate(model, tok, [ids], { maxNewTokens: 12, temperature: 0, stopTokens: [...tok.eosIds] });
    model.dispose();
    // Random weights must not collapse to one repeated token, or equality would say little.
    expect(new Set(ours.tokens).size).toBeGreaterThan(2);
    if (!TORCH) return; // announced above; the fixture-free half (load, template, generate) still ran
    const ref = (await reference('greedy', '--model', out, '--ids', ids.join(','), '--max-new-tokens', '12', '--eos', '151643,151645')) as {
      tokens: number[];
      margins: number[];
    };
    expect(ours.tokens).toEqual(ref.tokens);
  }, 120_000);

  it('recipes/grpo-qwen-lora.yaml on the real config: the plan fits with OpenBLAS, and names OpenBLAS without it', async () => {
    const cfgOnly = join(dir, 'config-only');
    mkdirSync(cfgOnly, { recursive: true });
    writeFileSync(join(cfgOnly, 'config.json'), JSON.stringify(QWEN25_05B_CONFIG)); // the plan reads no weight
    const check = async (env: string | undefined) => {
      const saved = process.env.R1_MATMUL;
      if (env === undefined) delete process.env.R1_MATMUL;
      else process.env.R1_MATMUL = env;
      let text = '';
      const spies = [process.stdout, process.stderr].map((s) =>
        vi.spyOn(s, 'write').mockImplementation((chunk: string | Uint8Array) => ((text += String(chunk)), true)),
      );
      try {
        return { code: await main(['recipe', 'recipes/grpo-qwen-lora.yaml', '--set', `stages.grpo.model=${cfgOnly}`]), text };
      } finally {
        for (const spy of spies) spy.mockRestore();
        if (saved === undefined) delete process.env.R1_MATMUL;
        else process.env.R1_MATMUL = saved;
      }
    };
    if (loadBlas().loaded) {
      const fits = await check('blas');
      expect(fits.text).toMatch(/products on BLAS/);
      expect(fits.text).not.toMatch(/DOES NOT FIT/);
      expect(fits.code).toBe(0);
    }
    const packed = await check('xnnpack');
    expect(packed.code).toBe(2);
    expect(packed.text).toMatch(/packed [0-9.]+ GiB/);
    expect(packed.text).toMatch(/install OpenBLAS/);
  });
});
