import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/engine/backend.ts';
import { advantages, dpoLoss, groupAdvantages, grpoLoss, tokenWhitened } from '../src/rl/index.ts';
import { sequenceLogprobs } from '../src/rl/dpo-loss.ts';

beforeAll(async () => {
  await initBackend('cpu');
});

const t2 = (rows: number[][]) => tf.tensor2d(rows);
const val = (t: tf.Tensor) => t.dataSync()[0];

describe('groupAdvantages', () => {
  it('normalises within each group by the unbiased std + 1e-4', () => {
    // Group [1, 0]: mean 0.5, unbiased std sqrt(0.5) = 0.70711.
    const a = groupAdvantages([1, 0, 3, 3], 2, { scale: 'group' });
    expect(a[0]).toBeCloseTo(0.5 / (Math.SQRT1_2 + 1e-4), 6);
    expect(a[1]).toBeCloseTo(-0.5 / (Math.SQRT1_2 + 1e-4), 6);
    expect(a.slice(2)).toEqual([0, 0]); // equal rewards: 0, never NaN
  });
  it('scales by the batch std, or not at all', () => {
    const r = [1, 0, 2, 4];
    const batchStd = Math.sqrt(((1 - 1.75) ** 2 + 1.75 ** 2 + 0.25 ** 2 + 2.25 ** 2) / 3);
    expect(groupAdvantages(r, 2, { scale: 'batch' })[3]).toBeCloseTo(1 / (batchStd + 1e-4), 6);
    expect(groupAdvantages(r, 2, { scale: 'none' })).toEqual([0.5, -0.5, -1, 1]);
  });
  it('rejects a batch that does not split into groups', () => {
    expect(() => groupAdvantages([1, 2, 3], 2, { scale: 'group' })).toThrow(/groups of 2/);
  });
});

describe('reinforce_pp whitening', () => {
  it('whitens over tokens when asked (verl): each completion counts once per token', () => {
    // Centred [0.5, -0.5] over 3 and 1 tokens: token mean 0.25, unbiased token variance
    // (3 x 0.0625 + 0.5625) / 3 = 0.25, so (a - 0.25) / 0.5.
    const a = advantages([1, 0], 2, { estimator: 'reinforce_pp', scale: 'group', whiten: 'token', lengths: [3, 1] });
    expect(a[0]).toBeCloseTo(0.5, 6);
    expect(a[1]).toBeCloseTo(-1.5, 6);
    // Per sequence (the default) the two completions weigh the same: symmetric.
    const s = advantages([1, 0], 2, { estimator: 'reinforce_pp', scale: 'group' });
    expect(s[0]).toBeCloseTo(-s[1], 6);
  });
  it('gives 0 with fewer than two tokens, and needs one length per completion', () => {
    expect(tokenWhitened([0.5, -0.5], [1, 0])).toEqual([0, 0]);
    expect(() => advantages([1, 0], 2, { estimator: 'reinforce_pp', scale: 'group', whiten: 'token', lengths: [3] })).toThrow(
      /one length per reward/,
    );
  });
});

describe('grpoLoss', () => {
  let base: Parameters<typeof grpoLoss>[0];
  beforeAll(() => {
    base = {
      logprobs: t2([
        [Math.log(1.5), 0],
        [Math.log(0.5), 0],
      ]),
      oldLogprobs: t2([
        [0, 0],
        [0, 0],
      ]),
      refLogprobs: null,
      advantages: [1, -1],
      mask: t2([
        [1, 1],
        [1, 0],
      ]),
    };
  });
  const opts = { epsilon: 0.2, epsilonHigh: 0.2, beta: 0, lossType: 'grpo' as const, maxCompletionLength: 2 };
  // Token losses: row 0: ratio 1.5 (A=1) -> -min(1.5, 1.2) = -1.2; ratio 1 -> -1.
  //               row 1: ratio 0.5 (A=-1) -> -min(-0.5, -0.8) = 0.8; masked token ignored.
  it('clips the ratio and averages per sequence (grpo)', () => {
    const out = grpoLoss(base, opts);
    expect(val(out.loss)).toBeCloseTo(((-1.2 - 1) / 2 + 0.8) / 2, 5);
    expect(val(out.clipRegion)).toBeCloseTo(2 / 3, 5); // both clipped tokens bind, 3 tokens
    expect(val(out.kl)).toBe(0);
  });
  it('averages over all tokens (dapo, bnpo) or divides the sum by B x T (dr_grpo)', () => {
    expect(val(grpoLoss(base, { ...opts, lossType: 'dapo' }).loss)).toBeCloseTo((-1.2 - 1 + 0.8) / 3, 5);
    expect(val(grpoLoss(base, { ...opts, lossType: 'bnpo' }).loss)).toBeCloseTo((-1.2 - 1 + 0.8) / 3, 5);
    expect(val(grpoLoss(base, { ...opts, lossType: 'dr_grpo' }).loss)).toBeCloseTo((-1.2 - 1 + 0.8) / 4, 5);
  });
  it('needs maxCompletionLength only for dr_grpo when no row weights are given', () => {
    const { maxCompletionLength: _, ...withoutLength } = opts;
    expect(val(grpoLoss(base, withoutLength).loss)).toBeCloseTo(((-1.2 - 1) / 2 + 0.8) / 2, 5);
    expect(val(grpoLoss(base, { ...withoutLength, lossType: 'cispo', epsilonHigh: 5 }).loss)).toBeLessThan(0);
    expect(() => grpoLoss(base, { ...withoutLength, lossType: 'dr_grpo' })).toThrow(/dr_grpo divides by max_completion_length/);
  });
  it('does not count a clip on the side that does not bind', () => {
    const out = grpoLoss({ ...base, advantages: [-1, 1] }, opts);
    // row 0 ratio 1.5 with A<0: min(-1.5, -1.2) = -1.5 (unclipped); row 1 ratio 0.5 with A>0: 0.5.
    expect(val(out.clipRegion)).toBe(0);
    expect(val(out.loss)).toBeCloseTo(((1.5 + 1) / 2 - 0.5) / 2, 5);
  });
  it('adds beta times the k3 KL estimator exp(ref - logp) - (ref - logp) - 1', () => {
    const ref = t2([
      [0, Math.log(2)],
      [0, 0],
    ]);
    const out = grpoLoss({ ...base, refLogprobs: ref }, { ...opts, beta: 0.5 });
    const k3 = (d: number) => Math.exp(d) - d - 1;
    const kls = [k3(-Math.log(1.5)), k3(Math.log(2)), k3(-Math.log(0.5))];
    expect(val(out.kl)).toBeCloseTo((kls[0] + kls[1] + kls[2]) / 3, 5);
    const row0 = (-1.2 + 0.5 * kls[0] + (-1 + 0.5 * kls[1])) / 2,
      row1 = 0.8 + 0.5 * kls[2];
    expect(val(out.loss)).toBeCloseTo((row0 + row1) / 2, 5);
  });
  it('is differentiable in logprobs: d loss / d logp = -ratio A / n where unclipped', () => {
    const g = tf
      .grad((lp: tf.Tensor) => grpoLoss({ ...base, logprobs: lp as tf.Tensor2D }, opts).loss)(base.logprobs)
      .arraySync() as number[][];
    expect(g[0][0]).toBeCloseTo(0, 6); // clipped: no gradient
    expect(g[0][1]).toBeCloseTo(-1 / 2 / 2, 6); // ratio 1, A 1, 2 tokens, 2 sequences
    expect(g[1][1]).toBe(0); // masked
  });
});

describe('dpoLoss', () => {
  let x: Parameters<typeof dpoLoss>[0];
  beforeAll(() => {
    x = {
      policyChosen: tf.tensor1d([-1, -2]),
      policyRejected: tf.tensor1d([-3, -1]),
      refChosen: tf.tensor1d([-2, -2]),
      refRejected: tf.tensor1d([-2, -2]),
    };
  });
  it('computes the sigmoid loss, rewards and accuracy as TRL', () => {
    const out = dpoLoss(x, { beta: 0.1, lossType: 'sigmoid' });
    // h = (1 - (-1)) = 2 for pair 0, (0 - 1) = -1 for pair 1.
    const nls = (z: number) => Math.log(1 + Math.exp(-z));
    expect(val(out.loss)).toBeCloseTo((nls(0.2) + nls(-0.1)) / 2, 6);
    expect(Array.from(out.chosenRewards.dataSync())).toEqual([0.1, 0].map((v) => Math.fround(v)));
    expect(out.rejectedRewards.dataSync()[0]).toBeCloseTo(-0.1, 6);
    expect(val(out.accuracy)).toBe(0.5);
  });
  it('computes the IPO loss', () => {
    const out = dpoLoss(x, { beta: 0.5, lossType: 'ipo' });
    expect(val(out.loss)).toBeCloseTo(((2 - 1) ** 2 + (-1 - 1) ** 2) / 2, 6);
  });
  it('sums the log-probs of a response for sigmoid, averages them over its tokens for ipo (as TRL)', () => {
    // Responses of 3 and 1 tokens (the mask), padded to 3.
    const lp = t2([
        [-1, -2, -3],
        [-4, -7, -7],
      ]),
      mask = t2([
        [1, 1, 1],
        [1, 0, 0],
      ]);
    expect(Array.from(sequenceLogprobs(lp, mask, 'sigmoid').dataSync())).toEqual([-6, -4]);
    expect(Array.from(sequenceLogprobs(lp, mask, 'ipo').dataSync())).toEqual([-2, -4]);
    // One pair: chosen = row 0, rejected = row 1; the reference gives -1 per token. ipo, beta 0.25
    // (target 1 / (2 beta) = 2): per-token means give h = (-2 + 1) - (-4 + 1) = 2 -> loss 0, where
    // summed log-probs would give h = (-6 + 3) - (-4 + 1) = 0 -> loss 4.
    const ref = sequenceLogprobs(
      t2([
        [-1, -1, -1],
        [-1, -7, -7],
      ]),
      mask,
      'ipo',
    );
    const pol = sequenceLogprobs(lp, mask, 'ipo');
    const at = (t: tf.Tensor1D, i: number) => tf.slice(t, i, 1) as tf.Tensor1D;
    const pair = { policyChosen: at(pol, 0), policyRejected: at(pol, 1), refChosen: at(ref, 0), refRejected: at(ref, 1) };
    const out = dpoLoss(pair, { beta: 0.25, lossType: 'ipo' });
    expect(val(out.loss)).toBe(0);
    expect(out.chosenRewards.dataSync()[0]).toBeCloseTo(0.25 * (-2 + 1), 6);
    expect(out.rejectedRewards.dataSync()[0]).toBeCloseTo(0.25 * (-4 + 1), 6);
    // beta 0.5 (target 1): (2 - 1)^2 = 1. A response with no token counts 0, not NaN.
    expect(val(dpoLoss(pair, { beta: 0.5, lossType: 'ipo' }).loss)).toBe(1);
    expect(Array.from(sequenceLogprobs(t2([[-1, -1]]), t2([[0, 0]]), 'ipo').dataSync())).toEqual([0]);
  });
  it('has a gradient (no logSigmoid)', () => {
    const g = tf.grad((pc: tf.Tensor) => dpoLoss({ ...x, policyChosen: pc as tf.Tensor1D }, { beta: 0.1, lossType: 'sigmoid' }).loss)(
      x.policyChosen,
    );
    const sig = (z: number) => 1 / (1 + Math.exp(-z));
    expect(g.dataSync()[0]).toBeCloseTo((-0.1 * (1 - sig(0.2))) / 2, 6);
  });
});
