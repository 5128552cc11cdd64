// Tensors over a GPU's binding limit split by vocabulary rows (model/vocab-split.ts): with the
// limit lowered (setBindingLimit, as R1_BINDING_LIMIT does) the embedding lookup, the output
// layer's logits and the chunked vocabulary loss run in blocks, and must give the logits, loss and
// gradients of the unsplit path. The split is plain tfjs ops, so it is checked on the cpu and wasm
// backends here; tests/webgpu-backend.test.ts runs it on a GPU adapter.
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { bindingLimit, initBackend, setBindingLimit } from '../src/engine/backend.ts';
import { TINY, type ModelConfig } from '../src/model/config.ts';
import { chunkedTokenLogprobs, DEFAULT_LOGITS_CHUNK_VALUES, logitsChunkRows, setLogitsChunkValues } from '../src/model/head-logprobs.ts';
import { Transformer } from '../src/model/transformer.ts';
import { embedRows, rowBlocks, vocabBlocks } from '../src/model/vocab-split.ts';
import { lmLoss, windowBatch } from '../src/train/lm-loss.ts';
import { disposeGrads, lossAndGrads } from '../src/train/step.ts';

afterEach(() => {
  setBindingLimit(null);
  setLogitsChunkValues(DEFAULT_LOGITS_CHUNK_VALUES);
});
afterAll(async () => {
  await initBackend('wasm');
});

const CONFIG: ModelConfig = { ...TINY, num_hidden_layers: 2 };
const V = CONFIG.vocab_size,
  C = CONFIG.hidden_size;
/** A quarter of the embedding [512, 128] (256 KiB): four row blocks. */
const LIMIT = (V * C * 4) / 4;
const B = 3,
  T = 10;

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function ids(): tf.Tensor2D {
  return tf.tensor2d(
    Array.from({ length: B * T }, (_, i) => (i * 97 + 5) % V),
    [B, T],
    'int32',
  );
}

/** The loss of a batch and every trainable parameter's gradient, copied out. */
function lossGrads(model: Transformer): { loss: number; grads: Record<string, Float32Array> } {
  const windows = Array.from({ length: B }, (_, b) => Array.from({ length: T + 1 }, (_, t) => (b * 151 + t * 37) % V));
  const batch = { ...windowBatch(windows, T, B * T), weights: Float32Array.from({ length: B * T }, (_, i) => (i % 4 === 0 ? 0 : 1)) };
  const { loss, grads } = lossAndGrads(model.params, () => lmLoss(model, batch));
  const out = Object.fromEntries(Object.entries(grads).map(([k, g]) => [k, Float32Array.from(g.dataSync() as Float32Array)]));
  disposeGrads(grads);
  return { loss, grads: out };
}

function expectSameGrads(got: Record<string, Float32Array>, want: Record<string, Float32Array>): void {
  expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort());
  for (const [k, g] of Object.entries(want)) {
    const scale = Math.max(1e-6, ...g.map(Math.abs));
    expect(maxAbsDiff(got[k], g) / scale, k).toBeLessThan(1e-4);
  }
}

describe('row blocks', () => {
  it('cover every row once, each block under the limit; one block when the rows fit', () => {
    expect(rowBlocks(10, 4, 'x', 40)).toEqual([{ start: 0, size: 10 }]);
    const blocks = rowBlocks(10, 4, 'x', 12);
    expect(blocks).toEqual([
      { start: 0, size: 3 },
      { start: 3, size: 3 },
      { start: 6, size: 3 },
      { start: 9, size: 1 },
    ]);
    expect(() => rowBlocks(10, 16, 'embedding [10, 4]', 12)).toThrow(
      /embedding \[10, 4\]: one row is 16 bytes, over the 12-byte binding limit/,
    );
  });
});

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`split by vocabulary rows on ${backend}`, () => {
    it('the limit comes from the backend (none off WebGPU) and is lowered by setBindingLimit', async () => {
      await initBackend(backend);
      expect(bindingLimit()).toBe(Infinity);
      setBindingLimit(LIMIT);
      expect(bindingLimit()).toBe(LIMIT);
      // Slices of the logits stay under the limit too.
      expect(logitsChunkRows(100, V)).toBe(Math.floor(LIMIT / 4 / V));
    });

    it('the embedding lookup in row blocks gives the same rows', async () => {
      await initBackend(backend);
      const model = Transformer.init(CONFIG, 1);
      const flat = tf.reshape(ids(), [B * T]) as tf.Tensor1D;
      const whole = embedRows(model.params.embed as tf.Tensor2D, flat);
      setBindingLimit(LIMIT);
      expect(rowBlocks(V, C * 4, 'embedding')).toHaveLength(4);
      const split = embedRows(model.params.embed as tf.Tensor2D, flat);
      expect(maxAbsDiff(split.dataSync() as Float32Array, whole.dataSync() as Float32Array)).toBe(0);
      tf.dispose([flat, whole, split]);
      model.dispose();
    });

    for (const tied of [true, false]) {
      it(`logits of a forward pass in vocabulary blocks equal the unsplit ones to 1e-5 (${tied ? 'tied' : 'untied'} head)`, async () => {
        await initBackend(backend);
        const model = Transformer.init({ ...CONFIG, tie_word_embeddings: tied }, 2);
        const x = ids();
        const whole = model.forward(x);
        setBindingLimit(LIMIT);
        const head = (tied ? model.params.embed : model.params.lm_head) as tf.Tensor2D;
        expect(vocabBlocks(head, tied, B * T).length).toBeGreaterThan(1);
        const split = model.forward(x);
        expect(split.shape).toEqual(whole.shape);
        const d = maxAbsDiff(split.dataSync() as Float32Array, whole.dataSync() as Float32Array);
        expect(d).toBeLessThan(1e-5);
        tf.dispose([x, whole, split]);
        model.dispose();
      });

      it(`the loss and every gradient (head and embedding too) equal the unsplit ones (${tied ? 'tied' : 'untied'} head)`, async () => {
        await initBackend(backend);
        const model = Transformer.init({ ...CONFIG, tie_word_embeddings: tied }, 3);
        const whole = lossGrads(model);
        setBindingLimit(LIMIT);
        const split = lossGrads(model);
        expect(Math.abs(split.loss - whole.loss)).toBeLessThan(1e-5);
        expectSameGrads(split.grads, whole.grads);
        model.dispose();
      });
    }

    it('with the embedding frozen (LoRA), a split step gives the unsplit loss and gradients, and none for the embedding', async () => {
      await initBackend(backend);
      const model = Transformer.init(CONFIG, 6);
      (model.params.embed as tf.Variable).trainable = false;
      const whole = lossGrads(model);
      setBindingLimit(LIMIT);
      const split = lossGrads(model);
      expect(split.grads.embed).toBeUndefined();
      expect(Math.abs(split.loss - whole.loss)).toBeLessThan(1e-5);
      expectSameGrads(split.grads, whole.grads);
      model.dispose();
    });

    it('with a frozen head (LoRA), split, the hidden states get the gradient of the trained unsplit head', async () => {
      await initBackend(backend);
      const model = Transformer.init(CONFIG, 4);
      const N = 12;
      const hidden = tf.randomNormal([N, C], 0, 1, 'float32', 7) as tf.Tensor2D;
      const targets = tf.tensor1d(
        Array.from({ length: N }, (_, i) => (i * 41) % V),
        'int32',
      );
      const embed = model.params.embed as tf.Variable;
      const grad = () => {
        const g = tf.grad((h: tf.Tensor) =>
          tf.sum(
            tf.mul(chunkedTokenLogprobs(h as tf.Tensor2D, embed as unknown as tf.Tensor2D, true, targets, 5, 0.8), tf.range(1, N + 1)),
          ),
        );
        const out = g(hidden);
        const values = Float32Array.from(out.dataSync() as Float32Array);
        out.dispose();
        return values;
      };
      const trained = grad();
      embed.trainable = false;
      setBindingLimit(LIMIT);
      const frozenSplit = grad();
      expect(maxAbsDiff(frozenSplit, trained)).toBeLessThan(1e-5);
      tf.dispose([hidden, targets]);
      model.dispose();
    });
  });
}
