// The RL losses on the wasm backend (the one the test suite and CI rely on) agree with the plain JS
// backend, values and gradients, for every loss type.
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/engine/backend.ts';
import { dpoLoss, grpoLoss } from '../src/rl/index.ts';

afterAll(async () => {
  await initBackend('cpu');
});

const wave = (n: number, f: number, s = 1) => Array.from({ length: n }, (_, i) => s * Math.sin(i * f));

/** Loss values and d loss / d logprobs for each GRPO loss type, and the DPO losses. */
function losses(): number[][] {
  const out: number[][] = [];
  const lp = tf.tensor2d(wave(12, 1.3, 0.3), [3, 4]);
  const x = {
    oldLogprobs: tf.tensor2d(wave(12, 0.7, 0.3), [3, 4]),
    refLogprobs: tf.tensor2d(wave(12, 2.1, 0.2), [3, 4]),
    advantages: [1.2, -0.7, 0.4],
    mask: tf.tensor2d([1, 1, 1, 0, 1, 1, 0, 0, 1, 1, 1, 1], [3, 4]),
  };
  for (const lossType of ['grpo', 'dapo', 'bnpo', 'dr_grpo'] as const) {
    const o = { epsilon: 0.2, epsilonHigh: 0.28, beta: 0.04, lossType, maxCompletionLength: 4 };
    const r = grpoLoss({ ...x, logprobs: lp }, o);
    const g = tf.grad((l: tf.Tensor) => grpoLoss({ ...x, logprobs: l as tf.Tensor2D }, o).loss)(lp);
    out.push([r.loss, r.kl, r.clipRegion, g].flatMap((t) => Array.from(t.dataSync())));
  }
  const pc = tf.tensor1d([-3, -5, -2]);
  const d = {
    policyRejected: tf.tensor1d([-4, -4, -6]),
    refChosen: tf.tensor1d([-3.5, -4, -2.5]),
    refRejected: tf.tensor1d([-3.9, -4.2, -5]),
  };
  for (const lossType of ['sigmoid', 'ipo'] as const) {
    const r = dpoLoss({ ...d, policyChosen: pc }, { beta: 0.1, lossType });
    const g = tf.grad((c: tf.Tensor) => dpoLoss({ ...d, policyChosen: c as tf.Tensor1D }, { beta: 0.1, lossType }).loss)(pc);
    out.push([r.loss, r.chosenRewards, r.rejectedRewards, r.accuracy, g].flatMap((t) => Array.from(t.dataSync())));
  }
  return out;
}

describe('RL losses on wasm', () => {
  it('match the cpu backend in values and gradients', async () => {
    await initBackend('cpu');
    const cpu = losses();
    await initBackend('wasm');
    const wasm = losses();
    expect(wasm.map((r) => r.length)).toEqual(cpu.map((r) => r.length));
    cpu.forEach((row, k) => row.forEach((v, i) => expect(wasm[k][i], `loss ${k}, value ${i}`).toBeCloseTo(v, 5)));
    expect(cpu.some((row) => row.some((v) => v !== 0 && Number.isFinite(v)))).toBe(true);
  });
});
