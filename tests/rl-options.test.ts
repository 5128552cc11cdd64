// The GRPO-family options against PyTorch: tests/fixtures/grpo-torch/cases.json, written by
// make_cases.py there (a plain PyTorch re-statement of TRL's GRPOTrainer._compute_loss, its
// normalisers and gradient accumulation, get_high_entropy_mask, the GRPO / RLOO advantages and RLOO's
// KL penalty in the reward; float64, autograd for d loss / d logprobs). Regenerate with
//   /usr/bin/python3 tests/fixtures/grpo-torch/make_cases.py
// Masked positions of the fixture's inputs hold junk log-probs (+/-50) and entropies (99).
import * as tf from '@tensorflow/tfjs-core';
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/engine/backend.ts';
import { advantages, grpoLoss, lossRowWeights, type AdvantageEstimator, type GrpoLossOptions } from '../src/rl/index.ts';
import type { KlEstimator } from '../src/rl/kl.ts';
import { sequenceKl } from '../src/stages/grpo.ts';

type Inputs = {
  logprobs: number[][];
  oldLogprobs: number[][];
  refLogprobs: number[][] | null;
  advantages: number[];
  mask: number[][];
  entropies: number[][] | null;
};
type Metrics = { kl: number; clipLow: number; clipHigh: number; clipRegion: number; entropy?: number };
type LossCase = {
  name: string;
  what: string;
  options: Required<Omit<GrpoLossOptions, 'delta'>> & { delta: number | null };
  microBatches: number[][] | null;
  inputs: Inputs;
  expected: { loss: number; grad: number[][]; rowWeights: (number | null)[]; metrics: Metrics };
};
type Scale = 'group' | 'batch' | 'none';
type AdvantageCase = {
  name: string;
  rewards: number[];
  groupSize: number;
  estimator: AdvantageEstimator;
  scale: Scale;
  expected: number[];
};
type RewardKlCase = {
  name: string;
  old: number[][];
  ref: number[][];
  rewards: number[];
  beta: number;
  klEstimator: KlEstimator;
  groupSize: number;
  estimator: AdvantageEstimator;
  scale: Scale;
  expected: { sequenceKl: number[]; rewards: number[]; advantages: number[] };
};

const FIXTURE = JSON.parse(readFileSync(new URL('./fixtures/grpo-torch/cases.json', import.meta.url), 'utf8')) as {
  loss: LossCase[];
  advantages: AdvantageCase[];
  rewardKl: RewardKlCase[];
};

beforeAll(async () => {
  await initBackend('cpu');
});

type Result = { loss: number; grad: number[][]; metrics: Metrics };
const METRICS = ['kl', 'clipLow', 'clipHigh', 'clipRegion', 'entropy'] as const;

/** r1kit's value, d loss / d logprobs and metrics for a case: one grpoLoss call (its default weights)
 * or, with micro-batches, one call per micro-batch with the step's lossRowWeights and metric weight. */
function run(c: LossCase, x: Inputs = c.inputs): Result {
  return tf.tidy(() => {
    const B = x.mask.length;
    const micro = c.microBatches ?? [Array.from({ length: B }, (_, i) => i)];
    const tokens = x.mask.map((row) => row.reduce((a, b) => a + b, 0));
    const microBatch = new Array<number>(B);
    micro.forEach((rows, m) => rows.forEach((i) => (microBatch[i] = m)));
    const o = c.options;
    const rowWeights = lossRowWeights(o.lossType, { tokens, microBatch, maxCompletionLength: o.maxCompletionLength });
    const metricWeight =
      1 /
      Math.max(
        1,
        tokens.reduce((a, b) => a + b, 0),
      );
    const pick = (rows: number[][], idx: number[]) => tf.tensor2d(idx.map((i) => rows[i]));
    const call = (lp: tf.Tensor2D, idx: number[]) =>
      grpoLoss(
        {
          logprobs: tf.gather(lp, idx) as tf.Tensor2D,
          oldLogprobs: pick(x.oldLogprobs, idx),
          refLogprobs: x.refLogprobs ? pick(x.refLogprobs, idx) : null,
          advantages: idx.map((i) => x.advantages[i]),
          mask: pick(x.mask, idx),
          entropies: x.entropies ? pick(x.entropies, idx) : null,
          ...(c.microBatches ? { rowWeights: idx.map((i) => rowWeights[i]), metricWeight } : {}),
        },
        o,
      );
    const lp = tf.tensor2d(x.logprobs);
    const { value, grad } = tf.valueAndGrad(
      (l: tf.Tensor) => micro.map((idx) => call(l as tf.Tensor2D, idx).loss).reduce((a, b) => tf.add(a, b)) as tf.Scalar,
    )(lp);
    const outs = micro.map((idx) => call(lp, idx));
    const metrics = {} as Metrics;
    for (const k of METRICS) if (outs[0][k]) metrics[k] = outs.reduce((a, out) => a + out[k]!.dataSync()[0], 0);
    return { loss: value.dataSync()[0], grad: grad.arraySync() as number[][], metrics };
  });
}

const maxAbs = (rows: number[][]) => Math.max(...rows.flat().map(Math.abs));
const maxDiff = (a: number[][], b: number[][]) => Math.max(...a.flatMap((row, i) => row.map((v, j) => Math.abs(v - b[i][j]))));

describe("grpoLoss equals TRL's _compute_loss (PyTorch reference, float64)", () => {
  it('covers every option', () => {
    const o = FIXTURE.loss.map((c) => c.options);
    expect(new Set(o.map((x) => x.lossType))).toEqual(new Set(['grpo', 'dapo', 'bnpo', 'dr_grpo', 'cispo']));
    expect(new Set(o.map((x) => x.klEstimator))).toEqual(new Set(['k1', 'k2', 'k3']));
    expect(new Set(o.map((x) => x.importanceSamplingLevel))).toEqual(new Set(['token', 'sequence']));
    expect(o.some((x) => x.delta != null) && o.some((x) => x.topEntropyQuantile < 1)).toBe(true);
    expect(FIXTURE.loss.filter((c) => c.microBatches).length).toBeGreaterThanOrEqual(5);
  });

  for (const c of FIXTURE.loss) {
    it(`${c.name}: ${c.what}`, () => {
      const got = run(c),
        e = c.expected;
      // Loss: 1e-5 relative (float32 against float64).
      expect(Math.abs(got.loss - e.loss)).toBeLessThanOrEqual(1e-5 * Math.max(Math.abs(e.loss), 0.05));
      // Gradient w.r.t. logprobs: 1e-5 of its largest entry; exactly 0 at masked positions.
      expect(maxDiff(got.grad, e.grad)).toBeLessThanOrEqual(1e-5 * maxAbs(e.grad));
      c.inputs.mask.forEach((row, b) =>
        row.forEach((m, t) => {
          if (!m) expect(Math.abs(got.grad[b][t])).toBe(0);
        }),
      );
      // The step's row weights: TRL's normaliser (with its division by the accumulation steps).
      const o = c.options,
        B = c.inputs.mask.length;
      const microBatch = new Array<number>(B).fill(0);
      c.microBatches?.forEach((rows, m) => rows.forEach((i) => (microBatch[i] = m)));
      const w = lossRowWeights(o.lossType, {
        tokens: c.inputs.mask.map((r) => r.reduce((a, b) => a + b, 0)),
        microBatch,
        maxCompletionLength: o.maxCompletionLength,
      });
      e.rowWeights.forEach((ew, i) => {
        if (ew != null) expect(w[i]).toBeCloseTo(ew, 12);
      });
      // Metrics: token means over the step's kept tokens.
      expect(Object.keys(got.metrics).sort()).toEqual(Object.keys(e.metrics).sort());
      for (const k of METRICS) if (e.metrics[k] != null) expect(got.metrics[k]!, k).toBeCloseTo(e.metrics[k]!, 6);
    });
  }

  it('padded junk log-probs (+/-1000 at masked positions) leave the loss, the gradient and the metrics finite and unchanged', () => {
    for (const c of FIXTURE.loss) {
      const m = c.inputs.mask;
      const junk = (rows: number[][], v: number) => rows.map((row, b) => row.map((x, t) => (m[b][t] ? x : v)));
      const x: Inputs = {
        ...c.inputs,
        logprobs: junk(c.inputs.logprobs, 1000),
        oldLogprobs: junk(c.inputs.oldLogprobs, -1000),
        refLogprobs: c.inputs.refLogprobs && junk(c.inputs.refLogprobs, -1000),
        entropies: c.inputs.entropies && junk(c.inputs.entropies, 1000),
      };
      const clean = run(c),
        padded = run(c, x);
      expect(Number.isFinite(padded.loss), c.name).toBe(true);
      expect(padded.grad.flat().every(Number.isFinite), c.name).toBe(true);
      expect(Math.abs(padded.loss - clean.loss), c.name).toBeLessThanOrEqual(1e-7 * Math.max(1, Math.abs(clean.loss)));
      expect(maxDiff(padded.grad, clean.grad), c.name).toBeLessThanOrEqual(1e-7 * maxAbs(clean.grad));
      for (const k of METRICS) if (clean.metrics[k] != null) expect(padded.metrics[k], `${c.name} ${k}`).toBeCloseTo(clean.metrics[k]!, 7);
    }
  });
});

describe('advantages equal the PyTorch reference', () => {
  for (const c of FIXTURE.advantages) {
    it(`${c.name} (G = ${c.groupSize})`, () => {
      const got = advantages(c.rewards, c.groupSize, { estimator: c.estimator, scale: c.scale });
      expect(got).toHaveLength(c.expected.length);
      got.forEach((a, i) => expect(Math.abs(a - c.expected[i])).toBeLessThanOrEqual(1e-9 * Math.max(1, Math.abs(c.expected[i]))));
    });
  }
});

describe('the KL penalty in the reward equals the PyTorch reference', () => {
  for (const c of FIXTURE.rewardKl) {
    it(`${c.name}: reward - beta * sum_t ${c.klEstimator}(old - ref), then ${c.estimator} advantages`, () => {
      const kl = sequenceKl(c.old, c.ref, c.klEstimator);
      kl.forEach((k, i) =>
        expect(Math.abs(k - c.expected.sequenceKl[i])).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(c.expected.sequenceKl[i]))),
      );
      const rewards = c.rewards.map((r, i) => r - c.beta * kl[i]);
      rewards.forEach((r, i) => expect(r).toBeCloseTo(c.expected.rewards[i], 6));
      const adv = advantages(rewards, c.groupSize, { estimator: c.estimator, scale: c.scale });
      adv.forEach((a, i) =>
        expect(Math.abs(a - c.expected.advantages[i])).toBeLessThanOrEqual(2e-5 * Math.max(1, Math.abs(c.expected.advantages[i]))),
      );
    });
  }
});
