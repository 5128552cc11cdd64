// The tied output layer during generation on WebAssembly with XNNPACK (whose transposed product is
// slow, so the embedding is transposed for the product): the transpose is made once per generation,
// not once per generated token, and the tokens and log-probs are those of the per-call path.
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/engine/backend.ts';
import { matmulPath, setMatmulPath } from '../src/engine/kernels/matmul.ts';
import { TINY } from '../src/model/config.ts';
import { generate } from '../src/model/generate.ts';
import { Transformer } from '../src/model/transformer.ts';

const decoder = { decode: (ids: number[]) => ids.join(' ') };
let saved: 'blas' | 'xnnpack';
beforeAll(async () => {
  await initBackend('wasm');
  saved = matmulPath();
  setMatmulPath('xnnpack');
});
afterAll(() => setMatmulPath(saved));

/** Transposes of the whole [V, C] embedding among the kernels `f` runs. */
async function embeddingTransposes(model: Transformer, f: () => unknown): Promise<number> {
  const [V, C] = model.params.embed.shape;
  const info = await tf.profile(() => f() as tf.TensorContainer);
  return info.kernels.filter((k) => k.name === 'Transpose' && String(k.outputShapes[0]) === String([C, V])).length;
}

describe('tied output layer in generation (wasm, XNNPACK)', () => {
  it('transposes the embedding once per generation, with the per-call path tokens and log-probs', async () => {
    const model = Transformer.init({ ...TINY, tie_word_embeddings: true }, 5);
    expect(model.params.lm_head).toBeUndefined();
    const prompts = [
      [1, 2, 3],
      [4, 5, 6],
    ];
    const opts = { maxNewTokens: 6, temperature: 0 };
    let got: ReturnType<typeof generate> = [];
    expect(await embeddingTransposes(model, () => (got = generate(model, decoder, prompts, opts)))).toBe(1);
    // The per-call path (what every output-layer call did before): greedy by full forward passes.
    for (const [b, prompt] of prompts.entries()) {
      const ids = [...prompt];
      for (let t = 0; t < opts.maxNewTokens; t++) {
        const z = tf.tidy(() => {
          const logits = model.forward(tf.tensor2d([ids], [1, ids.length], 'int32'));
          return tf.logSoftmax(tf.reshape(tf.slice(logits, [0, ids.length - 1, 0], [1, 1, -1]), [-1]));
        });
        const row = z.dataSync() as Float32Array;
        z.dispose();
        const next = row.indexOf(Math.max(...row));
        expect(got[b].tokens[t]).toBe(next);
        expect(got[b].logprobs[t]).toBeCloseTo(row[next], 4);
        ids.push(next);
      }
    }
    // The copy does not outlive the generation.
    const before = tf.memory().numTensors;
    generate(model, decoder, prompts, opts);
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });

  it('refuses the transposed copy under a gradient tape (it carries no gradient)', () => {
    const model = Transformer.init({ ...TINY, tie_word_embeddings: true }, 5);
    const x = tf.variable(tf.scalar(1));
    expect(() => tf.variableGrads(() => model.withHeadTransposed(() => tf.mul(x, 2) as tf.Scalar), [x])).toThrow(/carries no gradient/);
    x.dispose();
    model.dispose();
  });
});
