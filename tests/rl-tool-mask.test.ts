// The loss of a multi-turn rollout sees only the model's tokens: tool-output tokens are context, with
// no policy loss, KL or entropy, and they do not count in the normalisers.
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/engine/backend.ts';
import { Transformer } from '../src/model/transformer.ts';
import { type GrpoLossOptions, LOSS_TYPE_NAMES, grpoLoss, lossMaskValues, lossRowWeights, modelTokenCount } from '../src/rl/index.ts';
import { type Episodes, episodeMicroBatches, toolMetrics } from '../src/stages/grpo.ts';
import { loss as grpoBatchLoss } from '../src/stages/grpo-batch.ts';
import type { GrpoStage } from '../src/recipe/index.ts';

beforeAll(async () => {
  await initBackend('cpu');
});

// Two trajectories of 7 completion tokens; 0 marks the tokens a tool wrote.
const MASKS = [
  [1, 1, 0, 0, 0, 1, 1],
  [1, 0, 0, 1, 1, 1, 0],
];
const W = 7;
const rand = (seed: number, n: number) => Array.from({ length: n }, (_, i) => -0.2 - 0.9 * Math.abs(Math.sin(seed * 7.1 + i * 3.3)));
const LP = [rand(1, W), rand(2, W)],
  OLD = [rand(3, W), rand(4, W)],
  REF = [rand(5, W), rand(6, W)];
const ADV = [0.8, -0.5];

const opts = (lossType: GrpoLossOptions['lossType'], extra: Partial<GrpoLossOptions> = {}): GrpoLossOptions => ({
  epsilon: 0.2,
  epsilonHigh: lossType === 'cispo' ? 5 : 0.28,
  beta: 0.1,
  lossType,
  klEstimator: 'k3',
  maxCompletionLength: 8,
  ...extra,
});

/** The multi-turn inputs with tool tokens, their loss mask and row weights from the model tokens. */
function multiTurn(lossType: GrpoLossOptions['lossType'], lp: tf.Tensor2D) {
  const lengths = [W, W];
  const mask = tf.tensor2d(
    lossMaskValues(
      lengths,
      W,
      () => 1,
      (b) => MASKS[b],
    ),
    [2, W],
  );
  const tokens = lengths.map((n, b) => modelTokenCount(n, MASKS[b]));
  const rowWeights = lossRowWeights(lossType, { tokens, microBatch: [0, 0], maxCompletionLength: 8 });
  return {
    logprobs: lp,
    oldLogprobs: tf.tensor2d(OLD),
    refLogprobs: tf.tensor2d(REF),
    advantages: ADV,
    mask,
    rowWeights,
    entropies: tf.onesLike(lp) as tf.Tensor2D,
  };
}

/** The same model tokens as single-turn completions: the tool tokens taken out. */
function singleTurn(lossType: GrpoLossOptions['lossType']) {
  const keep = (rows: number[][]) => rows.map((r, b) => r.filter((_, j) => MASKS[b][j] === 1));
  const [lp, old, ref] = [keep(LP), keep(OLD), keep(REF)];
  const width = Math.max(...lp.map((r) => r.length));
  const pad = (rows: number[][]) => tf.tensor2d(rows.map((r) => [...r, ...new Array<number>(width - r.length).fill(0)]));
  const lengths = lp.map((r) => r.length);
  const mask = tf.tensor2d(
    lossMaskValues(
      lengths,
      width,
      () => 1,
      () => null,
    ),
    [2, width],
  );
  const rowWeights = lossRowWeights(lossType, { tokens: lengths, microBatch: [0, 0], maxCompletionLength: 8 });
  return {
    logprobs: pad(lp),
    oldLogprobs: pad(old),
    refLogprobs: pad(ref),
    advantages: ADV,
    mask,
    rowWeights,
    entropies: tf.onesLike(pad(lp)) as tf.Tensor2D,
  };
}

describe('tool-output tokens in the GRPO loss', () => {
  it('counts model tokens only', () => {
    expect(modelTokenCount(7, MASKS[0])).toBe(4);
    expect(modelTokenCount(7, null)).toBe(7);
    expect(
      Array.from(
        lossMaskValues(
          [7, 3],
          7,
          (b) => (b === 1 ? 0 : 1),
          (b) => MASKS[b],
        ),
      ),
    ).toEqual([...MASKS[0], 0, 0, 0, 0, 0, 0, 0]);
  });

  for (const lossType of LOSS_TYPE_NAMES) {
    for (const level of ['token', 'sequence'] as const) {
      it(`${lossType} (${level} ratios): zero gradient on a tool token's log-prob, and the single-turn loss of the same model tokens`, () => {
        const o = opts(lossType, { importanceSamplingLevel: level });
        const grad = tf.grad((lp: tf.Tensor) => grpoLoss(multiTurn(lossType, lp as tf.Tensor2D), o).loss)(tf.tensor2d(LP));
        const g = grad.arraySync() as number[][];
        MASKS.forEach((m, b) =>
          m.forEach((keep, j) => {
            if (keep === 0) expect(g[b][j], `row ${b} token ${j}`).toBe(0);
            else expect(Math.abs(g[b][j]), `row ${b} token ${j}`).toBeGreaterThan(0);
          }),
        );
        const multi = grpoLoss(multiTurn(lossType, tf.tensor2d(LP)), o);
        const single = grpoLoss(singleTurn(lossType), o);
        expect(multi.loss.dataSync()[0]).toBeCloseTo(single.loss.dataSync()[0], 6);
        expect(multi.kl.dataSync()[0]).toBeCloseTo(single.kl.dataSync()[0], 6);
        expect(multi.entropy!.dataSync()[0]).toBeCloseTo(single.entropy!.dataSync()[0], 6);
        // The masked tokens' values matter to nothing: change them and the loss stays.
        const junk = LP.map((r, b) => r.map((v, j) => (MASKS[b][j] ? v : v - 5)));
        expect(grpoLoss(multiTurn(lossType, tf.tensor2d(junk)), o).loss.dataSync()[0]).toBeCloseTo(multi.loss.dataSync()[0], 6);
      });
    }
  }
});

describe('tool tokens through the GRPO stage (episodes -> micro-batches -> loss on a model)', () => {
  const config = {
    vocab_size: 40,
    hidden_size: 16,
    num_hidden_layers: 1,
    num_attention_heads: 2,
    num_key_value_heads: 1,
    intermediate_size: 32,
    max_position_embeddings: 32,
    rope_theta: 10000,
    rms_norm_eps: 1e-6,
    tie_word_embeddings: true,
  };
  const stage = {
    loss_type: 'dapo',
    gradient_accumulation_steps: 1,
    max_completion_length: 8,
    epsilon: 0.2,
    epsilon_high: 0.28,
    beta: 0.05,
    kl_in_reward: false,
    delta: null,
    kl_estimator: 'k3',
    importance_sampling_level: 'token',
    top_entropy_quantile: 1,
    temperature: 1,
  } as unknown as GrpoStage;
  const episodes = (old: number[][], ref: number[][]): Episodes => ({
    inputs: [
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
      [1, 2, 3, 11, 12, 13, 14, 15, 16, 17],
    ],
    promptLengths: [3, 3],
    old,
    ref,
    rewards: [1, 0],
    advantages: ADV,
    keep: [1, 1],
    rewardKl: null,
    modelTokens: MASKS,
  });

  it("normalises by model tokens, and a tool token's old and reference log-probs change nothing", () => {
    const model = Transformer.init(config, 3);
    const [mb] = episodeMicroBatches(episodes(OLD, REF), stage);
    expect(mb.tokens).toBe(4 + 4); // model tokens of the two rows, not 14
    const batchOf = (m: typeof mb) => (m as { job: { data: Parameters<typeof grpoBatchLoss>[1] } }).job.data;
    const job = { data: batchOf(mb) };
    expect(job.data.rowWeights).toEqual([1 / 8, 1 / 8]);
    const lossOf = (old: number[][], ref: number[][]) => {
      const [m] = episodeMicroBatches(episodes(old, ref), stage);
      return tf.tidy(() => grpoBatchLoss(model, batchOf(m)).loss.dataSync()[0]);
    };
    const base = lossOf(OLD, REF);
    const scramble = (rows: number[][]) => rows.map((r, b) => r.map((v, j) => (MASKS[b][j] ? v : v * 3 - 7)));
    expect(lossOf(scramble(OLD), scramble(REF))).toBeCloseTo(base, 6);
    // ...while a model token's old log-prob does change it.
    const moved = OLD.map((r) => [r[0] - 0.5, ...r.slice(1)]);
    expect(Math.abs(lossOf(moved, REF) - base)).toBeGreaterThan(1e-4);
  });

  it('reports tool use and model and tool lengths apart', () => {
    const traj = (mask: number[], calls: (string | null)[]) => ({
      tokens: mask.map(() => 5),
      logprobs: mask.map(() => 0),
      text: '',
      finishReason: 'stop' as const,
      trajectory: {
        modelTokens: mask,
        turns: [...calls.map((e) => ({ text: 'x', call: { tool: 'python', code: '', output: '', error: e } })), { text: 'y', call: null }],
      },
    });
    const m = toolMetrics([traj(MASKS[0], [null, 'boom']), traj([1, 1], [])]);
    expect(m).toEqual({
      'tools/calls_per_trajectory': 1,
      'tools/errors': 1,
      'tools/errors_per_trajectory': 0.5,
      'tools/turns': 2,
      'tools/used_share': 0.5,
      'completions/mean_model_tokens': 3,
      'completions/mean_tool_tokens': 1.5,
    });
    expect(toolMetrics([{ tokens: [1], logprobs: [0], text: '', finishReason: 'stop' }])).toEqual({});
  });
});
