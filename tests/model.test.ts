import * as tf from '@tensorflow/tfjs-core';
import { mkdtempSync, readFileSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/engine/backend.ts';
import { type ModelConfig, validateConfig, parameterCount } from '../src/model/config.ts';
import { Transformer } from '../src/model/transformer.ts';
import { generate } from '../src/model/generate.ts';
import { loadModel, saveModel } from '../src/model/checkpoint.ts';
import { readSafetensors } from '../src/engine/safetensors.ts';
import { AdamW } from '../src/train/adamw.ts';
import { lossAndGrads, clipGradients, disposeGrads } from '../src/train/step.ts';
import { crossEntropy } from '../src/train/loss.ts';
import { Rng } from '../src/engine/rng.ts';
import { LLAMA_MICRO } from './micro-configs.ts';

const BACKEND = process.env.R1_TEST_BACKEND ?? 'wasm';
const MICRO: ModelConfig = { ...LLAMA_MICRO, vocab_size: 32 };
const digits = { decode: (ids: readonly number[]) => ids.map((i) => String.fromCharCode(97 + (i % 26))).join('') };

function batchLoss(m: Transformer, ids: number[][]): () => tf.Scalar {
  const B = ids.length,
    T = ids[0].length - 1;
  return () => {
    const x = tf.tensor2d(
      ids.map((r) => r.slice(0, -1)),
      [B, T],
      'int32',
    );
    const y = tf.tensor1d(
      ids.flatMap((r) => r.slice(1)),
      'int32',
    );
    return crossEntropy(m.logits(m.hidden(x)), y);
  };
}

function trainSteps(m: Transformer, ids: number[][], steps: number, lr = 1e-2): number[] {
  const opt = new AdamW(m.params, { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0 });
  const losses: number[] = [];
  for (let s = 0; s < steps; s++) {
    const { loss, grads } = lossAndGrads(m.params, batchLoss(m, ids));
    clipGradients(grads, 1);
    opt.apply(grads, lr);
    disposeGrads(grads);
    losses.push(loss);
  }
  opt.dispose();
  return losses;
}

beforeAll(async () => {
  await initBackend(BACKEND);
});

describe('model config', () => {
  it('names the fields that do not fit', () => {
    expect(() => validateConfig({ ...MICRO, hidden_size: 18 })).toThrow(
      /hidden_size \(18\) must be divisible by model.num_attention_heads \(4\)/,
    );
    expect(() => validateConfig({ ...MICRO, num_key_value_heads: 3 })).toThrow(
      /num_attention_heads \(4\) must be divisible by model.num_key_value_heads \(3\)/,
    );
  });
  it('counts parameters', () => {
    const m = Transformer.init(MICRO);
    const n = m.variables().reduce((a, v) => a + v.size, 0);
    expect(parameterCount(MICRO)).toBe(n);
    m.dispose();
  });
});

describe(`transformer on ${BACKEND}`, () => {
  it('has gradients that match finite differences', async () => {
    await initBackend('cpu'); // float64-free finite differences need the exact reference backend
    try {
      const m = Transformer.init(MICRO, 3);
      const rng = new Rng(1);
      const ids = [Array.from({ length: 9 }, () => rng.int(32)), Array.from({ length: 9 }, () => rng.int(32))];
      const f = batchLoss(m, ids);
      const { grads } = lossAndGrads(m.params, f);
      for (const name of ['embed', 'layers.0.wqkv', 'layers.1.w_gate_up', 'layers.0.attn_norm', 'norm']) {
        const p = m.params[name];
        const g = grads[name].dataSync();
        const base = p.dataSync().slice();
        for (const idx of [0, 7, base.length - 1]) {
          const eps = 1e-2;
          const at = (delta: number) => {
            const d = base.slice();
            d[idx] += delta;
            p.assign(tf.tensor(d, p.shape));
            return tf.tidy(() => f().dataSync()[0]);
          };
          const numeric = (at(eps) - at(-eps)) / (2 * eps);
          p.assign(tf.tensor(base, p.shape));
          expect(Math.abs(numeric - g[idx])).toBeLessThan(2e-3 + 0.05 * Math.abs(numeric));
        }
      }
      disposeGrads(grads);
      m.dispose();
    } finally {
      await initBackend(BACKEND);
    }
  });

  it('overfits a small batch', () => {
    const m = Transformer.init(MICRO, 0);
    const rng = new Rng(2);
    const ids = Array.from({ length: 4 }, () => Array.from({ length: 13 }, () => rng.int(32)));
    const losses = trainSteps(m, ids, 60, 2e-2);
    expect(losses[0]).toBeGreaterThan(3);
    expect(losses[losses.length - 1]).toBeLessThan(0.3);
    m.dispose();
  });

  it('generates the same greedy tokens with and without the KV cache', () => {
    const m = Transformer.init(MICRO, 5);
    trainSteps(m, [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]], 10); // sharpen away from a flat distribution
    const prompts = [
      [1, 2, 3],
      [4, 5, 6],
      [7, 8, 9, 10, 11],
    ];
    const cached = generate(m, digits, prompts, { maxNewTokens: 12, temperature: 0 });
    for (let i = 0; i < prompts.length; i++) {
      const seq = [...prompts[i]];
      for (let t = 0; t < 12; t++) {
        const logits = tf.tidy(() => m.forward(tf.tensor2d([seq], [1, seq.length], 'int32')));
        const z = logits.arraySync()[0][seq.length - 1];
        logits.dispose();
        seq.push(z.indexOf(Math.max(...z)));
      }
      expect(cached[i].tokens).toEqual(seq.slice(prompts[i].length));
    }
    m.dispose();
  });

  it('samples with temperature, top-k, top-p; stops per sequence; returns log-probs', () => {
    const m = Transformer.init(MICRO, 6);
    const prompts = Array.from({ length: 6 }, (_, i) => [i + 1, i + 2]);
    const out = generate(m, digits, prompts, {
      maxNewTokens: 10,
      temperature: 1,
      topK: 5,
      topP: 0.9,
      stopTokens: [3],
      stopStrings: ['e'],
      rng: new Rng(3),
    });
    for (const c of out) {
      expect(c.logprobs.length).toBe(c.tokens.length);
      for (const lp of c.logprobs) expect(lp).toBeLessThanOrEqual(0);
      if (c.finishReason === 'length') expect(c.tokens.length).toBe(10);
      else expect(c.tokens.at(-1) === 3 || c.text.endsWith('e')).toBe(true);
      expect(c.text.slice(0, -1)).not.toContain('e');
    }
    // A log-prob equals log softmax of the full forward pass at that position.
    const c = out[0];
    const seq = [...prompts[0], ...c.tokens];
    const logits = tf.tidy(() => tf.logSoftmax(m.forward(tf.tensor2d([seq], [1, seq.length], 'int32'))).arraySync()[0]);
    expect(c.logprobs[0]).toBeCloseTo(logits[1][c.tokens[0]], 3);
    m.dispose();
  });

  it('saves Hugging Face Llama tensors atomically and loads the same logits', () => {
    const dir = mkdtempSync(join(tmpdir(), 'r1-ckpt-'));
    const m = Transformer.init({ ...MICRO, tie_word_embeddings: false }, 8);
    saveModel(join(dir, 'ck'), m);
    expect(readdirSync(dir)).toEqual(['ck']);
    const names = Object.keys(readSafetensors(join(dir, 'ck', 'model.safetensors')).tensors);
    expect(names).toContain('model.layers.1.self_attn.k_proj.weight');
    expect(names).toContain('lm_head.weight');
    const cfg = JSON.parse(readFileSync(join(dir, 'ck', 'config.json'), 'utf8'));
    expect(cfg.model_type).toBe('llama');
    const l = loadModel(join(dir, 'ck'));
    const ids = tf.tensor2d([[1, 2, 3, 4]], [1, 4], 'int32');
    const a = m.forward(ids).dataSync(),
      b = l.forward(ids).dataSync();
    expect(Array.from(b)).toEqual(Array.from(a));
    m.dispose();
    l.dispose();
  });

  it('rejects a truncated or corrupt checkpoint with the file name, and overwrites nothing', () => {
    const dir = mkdtempSync(join(tmpdir(), 'r1-ckpt-'));
    const m = Transformer.init(MICRO, 9);
    saveModel(join(dir, 'ck'), m);
    const file = join(dir, 'ck', 'model.safetensors');
    const bytes = readFileSync(file);
    writeFileSync(file, bytes.subarray(0, bytes.length - 100));
    expect(() => loadModel(join(dir, 'ck'))).toThrow(
      new RegExp(`truncated safetensors file ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`),
    );
    writeFileSync(file, Buffer.from('garbage!garbage!'));
    expect(() => loadModel(join(dir, 'ck'))).toThrow(/corrupt/);
    expect(readFileSync(file).toString()).toBe('garbage!garbage!');
    expect(existsSync(join(dir, 'ck', 'config.json'))).toBe(true);
    m.dispose();
  });

  it('leaks no tensors across training steps and generation', () => {
    const m = Transformer.init(MICRO, 10);
    const ids = [[1, 2, 3, 4, 5, 6, 7, 8]];
    const opt = new AdamW(m.params);
    const counts: number[] = [];
    for (let s = 0; s < 50; s++) {
      const { grads } = lossAndGrads(m.params, batchLoss(m, ids));
      clipGradients(grads, 1);
      opt.apply(grads, 1e-3);
      disposeGrads(grads);
      generate(
        m,
        digits,
        [
          [1, 2],
          [3, 4],
        ],
        { maxNewTokens: 4, rng: new Rng(s) },
      );
      counts.push(tf.memory().numTensors);
    }
    expect(counts[49]).toBe(counts[0]);
    opt.dispose();
    m.dispose();
  });

  it("loads flat weights (the workers' weight sync) without keeping a copy per call", () => {
    const m = Transformer.init(MICRO, 10),
      src = Transformer.init(MICRO, 11);
    const flat = new Float32Array(Object.values(src.params).flatMap((p) => [...(p.dataSync() as Float32Array)]));
    m.loadFlat(flat);
    const before = tf.memory();
    for (let i = 0; i < 20; i++) m.loadFlat(flat);
    expect(tf.memory().numTensors).toBe(before.numTensors);
    expect(tf.memory().numBytes).toBe(before.numBytes);
    for (const [k, p] of Object.entries(m.params)) expect(p.dataSync(), k).toEqual(src.params[k].dataSync());
    m.dispose();
    src.dispose();
  });
});
