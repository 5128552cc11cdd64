// The vocabulary loss in row slices (model/head-logprobs.ts): the language-model loss and the GRPO /
// DPO completion log-probs must give the same values and gradients as through the whole logits,
// for a tied and an untied head, with and without a temperature; and generation's last step, in
// slices of rows, must sample the same tokens with the same log-probs.
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/engine/backend.ts';
import { TINY } from '../src/model/config.ts';
import { generate } from '../src/model/generate.ts';
import { Rng } from '../src/engine/rng.ts';
import { DEFAULT_LOGITS_CHUNK_VALUES, logitsChunkRows, setLogitsChunkValues } from '../src/model/head-logprobs.ts';
import { Transformer } from '../src/model/transformer.ts';
import { completionLogprobsAndEntropy } from '../src/stages/logprobs.ts';
import { lmLoss, windowBatch } from '../src/train/lm-loss.ts';
import { disposeGrads, lossAndGrads } from '../src/train/step.ts';

beforeAll(async () => {
  await initBackend('wasm');
});
afterEach(() => setLogitsChunkValues(DEFAULT_LOGITS_CHUNK_VALUES));

const B = 3,
  T = 10,
  V = TINY.vocab_size;

/** Loss (or summed output) and every gradient, copied out. */
function run(model: Transformer, f: () => tf.Scalar): { value: number; grads: Record<string, Float32Array> } {
  const { loss, grads } = lossAndGrads(model.params, f);
  const out = Object.fromEntries(Object.entries(grads).map(([k, g]) => [k, Float32Array.from(g.dataSync() as Float32Array)]));
  disposeGrads(grads);
  return { value: loss, grads: out };
}

function expectSame(a: ReturnType<typeof run>, b: ReturnType<typeof run>): void {
  expect(Math.abs(a.value - b.value)).toBeLessThan(1e-5 * Math.max(1, Math.abs(b.value)));
  expect(Object.keys(a.grads).sort()).toEqual(Object.keys(b.grads).sort());
  for (const [k, g] of Object.entries(b.grads)) {
    const scale = Math.max(1e-6, ...g.map(Math.abs));
    let worst = 0;
    for (let i = 0; i < g.length; i++) worst = Math.max(worst, Math.abs(a.grads[k][i] - g[i]));
    expect(worst / scale, k).toBeLessThan(1e-4);
  }
}

describe('vocabulary loss in row slices', () => {
  it('chunks only above the size, in whole rows', () => {
    expect(logitsChunkRows(B * T, V)).toBeNull();
    setLogitsChunkValues(4 * V + 7);
    expect(logitsChunkRows(B * T, V)).toBe(4);
    setLogitsChunkValues(1);
    expect(logitsChunkRows(B * T, V)).toBe(1);
  });

  for (const tied of [true, false]) {
    it(`the language-model loss and its gradients equal the unchunked ones (${tied ? 'tied' : 'untied'} head)`, () => {
      const model = Transformer.init({ ...TINY, tie_word_embeddings: tied }, 3);
      const windows = Array.from({ length: B }, (_, b) => Array.from({ length: T + 1 }, (_, t) => (b * 37 + t * 11) % V));
      const batch = { ...windowBatch(windows, T, B * T), weights: Float32Array.from({ length: B * T }, (_, i) => (i % 4 === 0 ? 0 : 1)) };
      const whole = run(model, () => lmLoss(model, batch));
      setLogitsChunkValues(7 * V); // 7-row slices: the last one short
      const sliced = run(model, () => lmLoss(model, batch));
      expectSame(sliced, whole);
      model.dispose();
    });
  }

  it('completion log-probs (temperature 0.7) and their gradients equal the unchunked ones; entropies too', () => {
    const model = Transformer.init({ ...TINY, tie_word_embeddings: true }, 4);
    const batch = {
      inputs: [
        [1, 2, 3, 4, 5, 6, 7],
        [9, 8, 7, 6],
        [3, 3, 3, 3, 3],
      ],
      promptLengths: [3, 2, 4],
    };
    const rows = [0, 1, 2],
      width = 4;
    const pass = () => {
      let entropies: Float32Array = new Float32Array();
      const r = run(model, () => {
        const out = completionLogprobsAndEntropy(model, batch, rows, 0.7, width);
        entropies = Float32Array.from(out.entropies.dataSync() as Float32Array);
        // Weights so that every position counts differently.
        return tf.sum(tf.mul(out.logprobs, tf.reshape(tf.range(1, rows.length * width + 1), [rows.length, width]))) as tf.Scalar;
      });
      return { ...r, entropies };
    };
    const whole = pass();
    setLogitsChunkValues(5 * V);
    const sliced = pass();
    expectSame(sliced, whole);
    sliced.entropies.forEach((e, i) => expect(e).toBeCloseTo(whole.entropies[i], 4));
    model.dispose();
  });

  it("generation's last step runs the head in row slices: same tokens and log-probs, no [B, V] logits", () => {
    const model = Transformer.init({ ...TINY, tie_word_embeddings: true }, 5);
    const decoder = { decode: (ids: readonly number[]) => ids.join(' ') };
    const prompts = Array.from({ length: 5 }, (_, b) => [1 + b, 7, 3 + 2 * b]);
    const sample = () => generate(model, decoder, prompts, { maxNewTokens: 6, temperature: 0.9, rng: new Rng(11) });
    const whole = sample();
    setLogitsChunkValues(2 * V); // slices of 2, 2 and 1 rows
    const logits = model.logits.bind(model);
    const rowsSeen: number[] = [];
    model.logits = (h) => {
      rowsSeen.push(h.shape[0]);
      return logits(h);
    };
    const sliced = sample();
    expect(Math.max(...rowsSeen)).toBe(2);
    expect(rowsSeen.slice(0, 3)).toEqual([2, 2, 1]);
    expect(sliced.map((c) => c.tokens)).toEqual(whole.map((c) => c.tokens));
    sliced.forEach((c, i) => c.logprobs.forEach((lp, j) => expect(lp).toBeCloseTo(whole[i].logprobs[j], 5)));
    // The test is only worth something if sampling did not collapse to one token everywhere.
    expect(new Set(whole.flatMap((c) => c.tokens)).size).toBeGreaterThan(3);
    model.dispose();
  });
});
