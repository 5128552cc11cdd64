import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/engine/backend.ts';
import { tokenEntropy, tokenLogprobs } from '../src/rl/index.ts';

beforeAll(async () => {
  await initBackend('cpu');
});

// N = 4 positions, V = 3. Row [0, ln 2, 0] has probabilities [1/4, 1/2, 1/4].
const L2 = Math.log(2);
const logits = () =>
  tf.tensor2d([
    [0, 0, 0],
    [0, L2, 0],
    [L2, 0, 0],
    [1, 2, 3],
  ]);
const targets = () => tf.tensor1d([1, 1, 2, 0], 'int32');
const softmax = (z: number[]) => {
  const e = z.map(Math.exp),
    s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
};

describe('tokenLogprobs', () => {
  it('gathers log softmax at each target', () => {
    const lp = tokenLogprobs(logits(), targets()).arraySync();
    expect(lp[0]).toBeCloseTo(Math.log(1 / 3), 6);
    expect(lp[1]).toBeCloseTo(Math.log(1 / 2), 6);
    expect(lp[2]).toBeCloseTo(Math.log(1 / 4), 6);
    expect(lp[3]).toBeCloseTo(Math.log(softmax([1, 2, 3])[0]), 6);
  });

  it('has the gradient dy * (onehot(target) - softmax) under tf.grad', () => {
    const w = tf.tensor1d([1, 2, 0, -1]); // per-token weights, as a mask or advantage would be
    const g = tf
      .grad((z: tf.Tensor) => tf.sum(tf.mul(tokenLogprobs(z as tf.Tensor2D, targets()), w)))(logits())
      .arraySync() as number[][];
    const z = logits().arraySync(),
      y = targets().arraySync(),
      ws = w.arraySync();
    for (let n = 0; n < 4; n++) {
      const p = softmax(z[n]);
      for (let v = 0; v < 3; v++) expect(g[n][v]).toBeCloseTo(ws[n] * ((v === y[n] ? 1 : 0) - p[v]), 6);
    }
  });

  it('matches log softmax through an outer function of the log-probs (chain rule)', () => {
    const z = tf.randomNormal([6, 5], 0, 1, 'float32', 7) as tf.Tensor2D;
    const y = tf.tensor1d([0, 4, 2, 1, 1, 3], 'int32');
    const oh = tf.oneHot(y, 5);
    const ref = (x: tf.Tensor) => tf.sum(tf.exp(tf.sum(tf.mul(tf.logSoftmax(x), oh), -1)));
    const ours = (x: tf.Tensor) => tf.sum(tf.exp(tokenLogprobs(x as tf.Tensor2D, y)));
    const a = tf.grad(ours)(z).dataSync(),
      b = tf.grad(ref)(z).dataSync();
    a.forEach((v, i) => expect(v).toBeCloseTo(b[i], 5));
  });
});

describe('tokenLogprobs on the wasm backend', () => {
  afterAll(async () => {
    await initBackend('cpu');
  });
  it('gives the same values and gradient as on cpu', async () => {
    const run = () => {
      const z = tf.tensor2d(
        Array.from({ length: 30 }, (_, i) => Math.sin(i * 1.7)),
        [6, 5],
      );
      const y = tf.tensor1d([0, 4, 2, 1, 1, 3], 'int32');
      return [tokenLogprobs(z, y), tf.grad((x: tf.Tensor) => tf.sum(tf.exp(tokenLogprobs(x as tf.Tensor2D, y))))(z)].map((t) =>
        Array.from(t.dataSync()),
      );
    };
    const cpu = run();
    await initBackend('wasm');
    const wasm = run();
    cpu.forEach((xs, k) => xs.forEach((v, i) => expect(wasm[k][i]).toBeCloseTo(v, 5)));
  });
});

describe('tokenEntropy', () => {
  it('is log V for uniform logits and -sum p log p otherwise', () => {
    const h = tokenEntropy(logits()).arraySync();
    expect(h[0]).toBeCloseTo(Math.log(3), 6);
    expect(h[1]).toBeCloseTo(-(0.25 * Math.log(0.25) * 2 + 0.5 * Math.log(0.5)), 6);
    const p = softmax([1, 2, 3]);
    expect(h[3]).toBeCloseTo(-p.reduce((a, x) => a + x * Math.log(x), 0), 5);
  });
});
