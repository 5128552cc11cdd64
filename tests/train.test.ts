import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/engine/backend.ts';
import { Rng } from '../src/engine/rng.ts';
import type { ModelConfig } from '../src/model/config.ts';
import { Transformer } from '../src/model/transformer.ts';
import { AdamW } from '../src/train/adamw.ts';
import { crossEntropy } from '../src/train/loss.ts';
import { LM_LOSS, type LmBatch, lmLoss } from '../src/train/lm-loss.ts';
import { GradientPool } from '../src/train/parallel.ts';
import { learningRateAt } from '../src/train/schedule.ts';
import { accumulate, clipGradients, disposeGrads, lossAndGrads } from '../src/train/step.ts';
import { LLAMA_MICRO } from './micro-configs.ts';

const MICRO: ModelConfig = LLAMA_MICRO;

beforeAll(async () => {
  await initBackend(process.env.R1_TEST_BACKEND ?? 'wasm');
});

describe('learning-rate schedules', () => {
  const base = { peak: 1, warmupSteps: 10, totalSteps: 100 };
  it('warms up linearly, then follows DeepSeek LLM multistep: 31.6% after 80%, 10% after 90%', () => {
    const s = { ...base, type: 'multistep' as const };
    expect(learningRateAt(0, s)).toBeCloseTo(0.1);
    expect(learningRateAt(9, s)).toBeCloseTo(1);
    expect(learningRateAt(79, s)).toBe(1);
    expect(learningRateAt(80, s)).toBeCloseTo(0.316);
    expect(learningRateAt(89, s)).toBeCloseTo(0.316);
    expect(learningRateAt(90, s)).toBeCloseTo(0.1);
  });
  it('cosine decays from the peak to 10% of it; linear to 0; constant stays', () => {
    expect(learningRateAt(10, { ...base, type: 'cosine' })).toBeCloseTo(1);
    expect(learningRateAt(55, { ...base, type: 'cosine' })).toBeCloseTo(0.55);
    expect(learningRateAt(100, { ...base, type: 'cosine' })).toBeCloseTo(0.1);
    expect(learningRateAt(55, { ...base, type: 'linear' })).toBeCloseTo(0.5);
    expect(learningRateAt(99, { ...base, type: 'constant' })).toBe(1);
  });
});

describe('AdamW', () => {
  it('matches a hand-computed first step with decoupled weight decay (none on 1-D params)', () => {
    const w = tf.variable(tf.tensor2d([[1, -2]]));
    const g = tf.variable(tf.tensor1d([3, 3]));
    const opt = new AdamW({ w, g }, { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 });
    opt.apply({ w: tf.tensor2d([[0.5, -0.25]]), g: tf.tensor1d([1, 0]) }, 0.01);
    // Step 1: m_hat = g, v_hat = g^2, so the Adam part is sign(g); decay adds wd * p.
    expect(Array.from(w.dataSync())).toEqual([1 - 0.01 * (1 + 0.1 * 1), -2 - 0.01 * (-1 + 0.1 * -2)].map((x) => Math.fround(x)));
    expect(g.dataSync()[0]).toBeCloseTo(3 - 0.01, 6);
    expect(g.dataSync()[1]).toBeCloseTo(3, 6);
    opt.dispose();
  });
});

describe('loss and gradients', () => {
  it('weighted cross-entropy ignores zero-weight positions', () => {
    const z = tf.tensor2d([
      [5, 0],
      [0, 5],
    ]);
    const y = tf.tensor1d([0, 0], 'int32');
    const full = crossEntropy(z, y).dataSync()[0];
    const firstOnly = crossEntropy(z, y, tf.tensor1d([1, 0])).dataSync()[0];
    expect(firstOnly).toBeCloseTo(Math.log(1 + Math.exp(-5)), 5);
    expect(full).toBeGreaterThan(firstOnly);
  });

  it('accumulates and clips gradients to the global norm', () => {
    const a = { x: tf.tensor1d([3, 0]) },
      b = { x: tf.tensor1d([0, 4]) };
    const sum = accumulate(accumulate(null, a), b);
    const norm = clipGradients(sum, 1);
    expect(norm).toBeCloseTo(5);
    const [x0, x1] = sum.x.dataSync();
    expect(x0).toBeCloseTo(0.6, 5);
    expect(x1).toBeCloseTo(0.8, 5);
    disposeGrads(sum);
  });
});

describe('data-parallel gradients', () => {
  let pool: GradientPool;
  afterAll(async () => pool?.close());

  it('split across a worker thread, equal the single-thread gradients', async () => {
    const model = Transformer.init(MICRO, 4);
    const rng = new Rng(5);
    const B = 5,
      T = 12;
    const batch: LmBatch = {
      inputs: Int32Array.from({ length: B * T }, () => rng.int(40)),
      targets: Int32Array.from({ length: B * T }, () => rng.int(40)),
      weights: Float32Array.from({ length: B * T }, (_, i) => (i % 3 === 0 ? 0 : 1)),
      B,
      T,
      normaliser: 40,
    };
    const single = lossAndGrads(model.params, () => lmLoss(model, batch));
    pool = new GradientPool(1, MICRO, 'wasm');
    const par = await pool.lossAndGrads(model, { module: LM_LOSS, data: batch, rows: B });
    expect(par.loss).toBeCloseTo(single.loss, 5);
    for (const name of Object.keys(single.grads)) {
      const a = single.grads[name].dataSync(),
        b = par.grads[name].dataSync();
      for (let i = 0; i < a.length; i += 7) expect(b[i]).toBeCloseTo(a[i], 5);
    }
    disposeGrads(single.grads);
    disposeGrads(par.grads);
    model.dispose();
  });
});
