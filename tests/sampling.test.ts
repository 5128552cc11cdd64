// Sampling: temperature, then top-k, then top-p on the renormalised top-k set (Hugging Face's
// order of logits warpers), and the log-prob recorded for each sampled token is the one the
// trainer recomputes, log_softmax(logits / T) over the whole vocabulary.
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/engine/backend.ts';
import { Rng } from '../src/engine/rng.ts';
import type { ModelConfig } from '../src/model/config.ts';
import { generate, sampleToken, samplingDistribution } from '../src/model/generate.ts';
import { Transformer } from '../src/model/transformer.ts';
import { completionLogprobs } from '../src/stages/logprobs.ts';
import { LLAMA_MICRO } from './micro-configs.ts';

const BACKEND = process.env.R1_TEST_BACKEND ?? 'wasm';
const MICRO: ModelConfig = { ...LLAMA_MICRO, vocab_size: 32 };
const letters = { decode: (ids: readonly number[]) => ids.map((i) => String.fromCharCode(97 + (i % 26))).join('') };

beforeAll(async () => {
  await initBackend(BACKEND);
});

/** log_softmax(z / T), in float64. */
function logSoftmax(z: ArrayLike<number>, T = 1): number[] {
  const s = Array.from(z, (x) => x / T);
  const m = Math.max(...s);
  const lse = m + Math.log(s.reduce((a, x) => a + Math.exp(x - m), 0));
  return s.map((x) => x - lse);
}

/** A transcription of Hugging Face's TemperatureLogitsWarper -> TopKLogitsWarper -> TopPLogitsWarper
 * (min_tokens_to_keep = 1): the set of tokens left with a finite score. */
function hfKept(z: ArrayLike<number>, T: number, k: number, p: number): Set<number> {
  let s = Array.from(z, (x) => x / T);
  if (k > 0 && k < s.length) {
    const kth = [...s].sort((a, b) => b - a)[k - 1];
    s = s.map((x) => (x < kth ? -Infinity : x));
  }
  if (p < 1) {
    const asc = s.map((_, i) => i).sort((a, b) => s[a] - s[b]);
    const probs = logSoftmax(asc.map((i) => s[i])).map(Math.exp);
    let cum = 0;
    asc.forEach((i, j) => {
      cum += probs[j];
      if (cum <= 1 - p && j < asc.length - 1) s[i] = -Infinity;
    });
  }
  return new Set(s.flatMap((x, i) => (x === -Infinity ? [] : [i])));
}

/** How often each token is drawn in n seeded draws. */
function draws(z: Float32Array, T: number, k: number, p: number, n: number, seed = 1): number[] {
  const rng = new Rng(seed);
  const counts = new Array<number>(z.length).fill(0);
  for (let i = 0; i < n; i++) counts[sampleToken(z, T, k, p, rng)[0]]++;
  return counts;
}

describe('sampleToken: temperature, then top-k, then top-p on the renormalised top-k set', () => {
  it('top-k: tokens outside the k most likely are never drawn; the k are drawn in proportion', () => {
    const z = Float32Array.from([0.3, 2.0, -1.0, 1.5, 0.9, 1.2, -0.4, 0.1]);
    const counts = draws(z, 1, 3, 1, 6000);
    const top3 = [1, 3, 5];
    counts.forEach((c, i) => (top3.includes(i) ? expect(c, `token ${i}`).toBeGreaterThan(0) : expect(c, `token ${i}`).toBe(0)));
    const p = top3.map((i) => Math.exp(z[i]));
    const total = p.reduce((a, b) => a + b, 0);
    top3.forEach((i, j) => expect(counts[i] / 6000).toBeCloseTo(p[j] / total, 1));
  });

  it('top-p is taken over the top-k set renormalised, not over the full distribution', () => {
    // Probabilities [0.5, 0.2, 0.15, 0.15]. Top-2 renormalised is [5/7, 2/7]: 5/7 >= 0.65 already, so
    // top-p keeps token 0 alone. Over the full distribution 0.5 < 0.65 and token 1 would be kept too.
    const z = Float32Array.from([0.5, 0.2, 0.15, 0.15].map(Math.log));
    const d = samplingDistribution(z, 1, 2, 0.65);
    expect(d.ids).toEqual([0]);
    expect(d.probs).toEqual([1]);
    expect(draws(z, 1, 2, 0.65, 3000)).toEqual([3000, 0, 0, 0]);
    // Without top-k the same top-p keeps tokens 0 and 1.
    expect(samplingDistribution(z, 1, 0, 0.65).ids).toEqual([0, 1]);
    const counts = draws(z, 1, 0, 0.65, 3000);
    expect(counts[2] + counts[3]).toBe(0);
    expect(counts[1]).toBeGreaterThan(0);
  });

  it('keeps the same tokens as Hugging Face on random logits, temperatures, k and p; draws only those, in proportion', () => {
    const rng = new Rng(42);
    let differsFromFullTopP = 0;
    for (let trial = 0; trial < 200; trial++) {
      const V = 6 + rng.int(20);
      const z = Float32Array.from({ length: V }, () => 2 * rng.normal());
      const T = [0.5, 0.7, 1, 1.3][rng.int(4)];
      const k = [0, 2, 3, 5, V][rng.int(5)];
      const p = [0.3, 0.6, 0.8, 0.9, 0.95, 1][rng.int(6)];
      const d = samplingDistribution(z, T, k, p);
      const want = hfKept(z, T, k, p);
      expect(new Set(d.ids), `trial ${trial}: V=${V} T=${T} k=${k} p=${p}`).toEqual(want);
      expect(d.probs.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 9);
      // Renormalised over the kept set, in the temperature-scaled model's proportions.
      const full = logSoftmax(z, T);
      d.ids.forEach((i, j) => expect(Math.log(d.probs[j]) - Math.log(d.probs[0])).toBeCloseTo(full[i] - full[d.ids[0]], 6));
      // Top-p over the full distribution, then cut to k (the old order) keeps min(k, |top-p set|) tokens.
      const fullTopP = hfKept(z, T, 0, p).size;
      if (Math.min(k > 0 ? k : V, fullTopP) !== want.size) differsFromFullTopP++;
      if (trial % 10 === 0) {
        const n = 4000,
          counts = draws(z, T, k, p, n, trial);
        counts.forEach((c, i) => {
          if (!want.has(i)) expect(c, `trial ${trial}: token ${i} is outside the kept set`).toBe(0);
        });
        d.ids.forEach((i, j) => expect(Math.abs(counts[i] / n - d.probs[j]), `trial ${trial}: token ${i}`).toBeLessThan(0.04));
      }
    }
    expect(differsFromFullTopP).toBeGreaterThan(0); // the cases include ones the order of operations decides
  });

  it('returns the log-prob under the full temperature-scaled softmax, not the truncated distribution', () => {
    const z = Float32Array.from([1.0, 0.4, 0.3, -0.2, -1.5, 0.8]);
    const rng = new Rng(5);
    const full = logSoftmax(z, 0.7);
    const d = samplingDistribution(z, 0.7, 3, 0.9);
    for (let i = 0; i < 200; i++) {
      const [tok, lp] = sampleToken(z, 0.7, 3, 0.9, rng);
      expect(lp).toBeCloseTo(full[tok], 9);
      expect(Math.abs(lp - Math.log(d.probs[d.ids.indexOf(tok)]))).toBeGreaterThan(0.1);
    }
  });

  it('temperature 0 is greedy whatever top-k, top-p and the seed', () => {
    const z = Float32Array.from([0.1, 0.3, 2.5, 2.4, -1]);
    for (const [k, p] of [
      [0, 1],
      [2, 0.5],
      [1, 0.1],
      [4, 0.99],
    ]) {
      for (let seed = 0; seed < 5; seed++) expect(sampleToken(z, 0, k, p, new Rng(seed))[0]).toBe(2);
      expect(samplingDistribution(z, 0, k, p)).toEqual({ ids: [2], probs: [1] });
    }
  });
});

describe('generate with a tiny model', () => {
  let model: Transformer;
  beforeAll(() => {
    model = Transformer.init(MICRO, 11);
  });
  afterAll(() => model.dispose());

  const prompts = [
    [1, 2, 3],
    [4, 5, 6],
    [7, 8],
    [9, 10, 11, 12, 13],
  ];

  /** Full forward logits over prompt + completion: [T, V]. */
  const forward = (seq: number[]) => tf.tidy(() => model.forward(tf.tensor2d([seq], [1, seq.length], 'int32')).arraySync()[0]);

  it('records, at temperature 0.7 with top-k and top-p, the log-probs the trainer computes', () => {
    const T = 0.7,
      topK = 6,
      topP = 0.8;
    const out = generate(model, letters, prompts, { maxNewTokens: 12, temperature: T, topK, topP, rng: new Rng(7) });
    const inputs = prompts.map((p, i) => [...p, ...out[i].tokens]);
    const rows = prompts.map((_, i) => i);
    const lp = completionLogprobs(model, { inputs, promptLengths: prompts.map((p) => p.length) }, rows, T);
    const trainer = lp.arraySync();
    lp.dispose();
    let outsideTopK = 0;
    out.forEach((c, i) => {
      expect(c.tokens).toHaveLength(12);
      c.logprobs.forEach((x, j) => expect(Math.abs(x - trainer[i][j]), `row ${i} token ${j}`).toBeLessThan(1e-4));
      // Every sampled token is in the kept set at its position; the set is a real restriction.
      const z = forward(inputs[i]);
      c.tokens.forEach((tok, j) => {
        const logits = Float32Array.from(z[prompts[i].length - 1 + j]);
        const kept = samplingDistribution(logits, T, topK, topP).ids;
        expect(kept, `row ${i} token ${j}`).toContain(tok);
        expect(kept.length).toBeLessThanOrEqual(topK);
        outsideTopK += MICRO.vocab_size - kept.length;
      });
    });
    expect(outsideTopK).toBeGreaterThan(0);
  });

  it('temperature 0 stays greedy with top-k/top-p set, whatever the seed', () => {
    const a = generate(model, letters, prompts, { maxNewTokens: 8, temperature: 0, topK: 3, topP: 0.5, rng: new Rng(1) });
    const b = generate(model, letters, prompts, { maxNewTokens: 8, temperature: 0, rng: new Rng(99) });
    expect(a.map((c) => c.tokens)).toEqual(b.map((c) => c.tokens));
    a.forEach((c, i) => {
      const z = forward([...prompts[i], ...c.tokens]);
      c.tokens.forEach((tok, j) => {
        const row = z[prompts[i].length - 1 + j];
        expect(tok).toBe(row.indexOf(Math.max(...row)));
      });
    });
  });
});
