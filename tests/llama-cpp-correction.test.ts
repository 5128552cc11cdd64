// The truncated importance-sampling correction of the llama.cpp engine's mismatch (as TRL's vLLM
// correction): the weights, the loss they scale, what GRPO's episodes carry, and the recipe check
// that names what is missing before any stage runs.
import * as tf from '@tensorflow/tfjs-core';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../src/engine/backend.ts';
import { Transformer } from '../src/model/transformer.ts';
import { parseRecipe, type GrpoStage } from '../src/recipe/index.ts';
import { grpoLoss, truncatedIsWeights } from '../src/rl/index.ts';
import { llamaCppProblems } from '../src/rollout/llama-cpp.ts';
import { createEpisodes, type ScoredGroups } from '../src/stages/grpo.ts';
import { completionLogprobs } from '../src/stages/logprobs.ts';

const FILE = join(import.meta.dirname, 'fixtures', 'recipes', 'inline.yaml');
const recipe = (grpo: string, model = '') => `name: t
tokenizer:
  train: { datasets: [data/corpus.jsonl] }
${model}stages:
  - { name: g, type: grpo, model: init, datasets: [data/tasks.jsonl], num_generations: 2, per_device_train_batch_size: 4, beta: 0${grpo} }
`;

describe('truncatedIsWeights', () => {
  it('is min(pi_train / pi_rollout, C) per token, with the k3 KL and the truncated share', () => {
    const train = [[Math.log(0.5), Math.log(0.9)], [Math.log(0.2)]];
    const rollout = [[Math.log(0.5), Math.log(0.3)], [Math.log(0.25)]];
    const c = truncatedIsWeights(train, rollout, 2);
    expect(c.weights[0][0]).toBeCloseTo(1, 12);
    expect(c.weights[0][1]).toBe(2); // 0.9 / 0.3 = 3, capped
    expect(c.weights[1][0]).toBeCloseTo(0.8, 12);
    expect(c.truncatedFrac).toBeCloseTo(1 / 3, 12);
    expect(c.meanWeight).toBeCloseTo((1 + 2 + 0.8) / 3, 12);
    const k3 = (r: number) => r - Math.log(r) - 1;
    expect(c.kl).toBeCloseTo((k3(1) + k3(3) + k3(0.8)) / 3, 12);
    expect(c.maxLogpDiff).toBeCloseTo(Math.log(3), 12);
  });
});

describe('grpoLoss isWeights', () => {
  it('multiplies the policy term per token and leaves the KL term alone', async () => {
    await initBackend('cpu');
    const logprobs = tf.tensor2d([
      [-1, -2],
      [-0.5, -1.5],
    ]);
    const base = {
      logprobs,
      oldLogprobs: tf.tensor2d([
        [-1.1, -2],
        [-0.5, -1.4],
      ]),
      refLogprobs: tf.tensor2d([
        [-1.2, -2.2],
        [-0.4, -1.5],
      ]),
      advantages: [1, -0.5],
      mask: tf.tensor2d([
        [1, 1],
        [1, 0],
      ]),
    };
    const opts = { epsilon: 0.2, epsilonHigh: 0.2, beta: 0, lossType: 'dapo' as const, maxCompletionLength: 2 };
    const plain = grpoLoss(base, opts).loss.dataSync()[0];
    expect(grpoLoss({ ...base, isWeights: tf.ones([2, 2]) as tf.Tensor2D }, opts).loss.dataSync()[0]).toBeCloseTo(plain, 6);
    expect(grpoLoss({ ...base, isWeights: tf.fill([2, 2], 0.5) as tf.Tensor2D }, opts).loss.dataSync()[0]).toBeCloseTo(plain / 2, 6);
    const withKl = { ...opts, beta: 0.1 };
    const klOnly = grpoLoss({ ...base, isWeights: tf.zeros([2, 2]) as tf.Tensor2D }, withKl).loss.dataSync()[0];
    expect(klOnly).toBeGreaterThan(0);
    expect(grpoLoss({ ...base, isWeights: tf.ones([2, 2]) as tf.Tensor2D }, withKl).loss.dataSync()[0]).toBeCloseTo(plain + klOnly, 6);
  });
});

describe('GRPO episodes from the llama.cpp engine', () => {
  it("take the trainer's recomputed log-probs as old and carry the truncated weights and their statistics", async () => {
    await initBackend('cpu');
    const r = parseRecipe(recipe(', rollout: { engine: llama.cpp, device: cpu, is_cap: 1.5 }'), FILE);
    const s = r.stages[0] as GrpoStage;
    expect(s.rollout).toEqual({ engine: 'llama.cpp', device: 'cpu', is_cap: 1.5 });
    const config = {
      vocab_size: 64,
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
    const policy = Transformer.init(config, 5);
    const ids = [
      [1, 2, 3],
      [1, 2, 3],
      [4, 5],
      [4, 5],
    ];
    const tokens = [[6, 7], [8], [9, 10, 11], [12]];
    const lp = completionLogprobs(
      policy,
      { inputs: ids.map((p, i) => [...p, ...tokens[i]]), promptLengths: ids.map((p) => p.length) },
      [0, 1, 2, 3],
      s.temperature,
    );
    const train = lp.arraySync().map((row, i) => row.slice(0, tokens[i].length));
    lp.dispose();
    // The engine's log-probs: off by +0.01 everywhere, and by -1 on one token (its weight e^1 is capped).
    const rollout = train.map((row, i) => row.map((x, t) => (i === 2 && t === 1 ? x - 1 : x + 0.01)));
    const x: ScoredGroups = {
      texts: ids.map(() => 'p'),
      ids,
      rows: ids.map(() => ({})),
      completions: tokens.map((t, i) => ({ tokens: t, text: 'c', logprobs: rollout[i], finishReason: 'stop' as const })),
      scores: { total: [1, 0, 0, 1], byFunction: {}, stats: {}, errors: [] },
    };
    const e = createEpisodes(x, null, s, 4, policy);
    e.old.forEach((row, i) => row.forEach((v, t) => expect(v).toBeCloseTo(train[i][t], 5)));
    expect(e.isWeights![2][1]).toBe(1.5);
    expect(e.isWeights![0][0]).toBeCloseTo(Math.exp(-0.01), 5);
    expect(e.rolloutCorrection!['rollout_correction/truncated_frac']).toBeCloseTo(1 / 7, 6);
    expect(e.rolloutCorrection!['rollout_correction/kl']).toBeGreaterThan(0);
    // The tfjs engine: no correction, the sampler's log-probs stay.
    const plain = createEpisodes(x, null, { ...s, rollout: { ...s.rollout, engine: 'tfjs' } }, 4, policy);
    expect(plain.old).toEqual(rollout);
    expect(plain.isWeights).toBeUndefined();
    policy.dispose();
  });
});

describe('recipe check of rollout.engine llama.cpp', () => {
  const errorOf = (text: string) => {
    try {
      parseRecipe(text, FILE);
    } catch (e) {
      return (e as Error).message;
    }
    return '';
  };
  it('names an architecture llama.cpp lacks before any stage runs', () => {
    const deepseek =
      'model: { model_type: deepseek_v3, hidden_size: 64, num_attention_heads: 4, num_key_value_heads: 4, q_lora_rank: null, kv_lora_rank: 16, qk_nope_head_dim: 8, qk_rope_head_dim: 8, v_head_dim: 8, n_routed_experts: 4, moe_intermediate_size: 16, num_experts_per_tok: 2 }\n';
    expect(errorOf(recipe(', rollout: { engine: llama.cpp }', deepseek))).toMatch(
      /stages\.0\.rollout\.engine.*not deepseek_v3.*rollout\.engine: tfjs/s,
    );
  });
  it.skipIf(llamaCppProblems('cuda').length === 0)('names a missing CUDA driver and how to get it', () => {
    expect(errorOf(recipe(', rollout: { engine: llama.cpp, device: cuda }'))).toMatch(
      /stages\.0\.rollout\.device.*no CUDA driver.*install the NVIDIA driver.*rollout\.device: auto/s,
    );
  });
  it('accepts the tfjs default and rejects a cap of 1 or less', () => {
    expect((parseRecipe(recipe(''), FILE).stages[0] as GrpoStage).rollout).toEqual({ engine: 'tfjs', device: 'auto', is_cap: 2 });
    expect(errorOf(recipe(', rollout: { is_cap: 1 }'))).toMatch(/is_cap/);
  });
});
