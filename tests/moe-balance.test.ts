// DeepSeek-V3's auxiliary-loss-free balancing in the training loop: expert loads travel as metric
// terms from the loss (any thread), the trainer sums them over the update, moves the router biases
// and logs max/mean load per layer.
import * as tf from '@tensorflow/tfjs-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/engine/backend.ts';
import { Rng } from '../src/engine/rng.ts';
import { readMetrics } from '../src/metrics/logger.ts';
import type { ModelConfig } from '../src/model/config.ts';
import { Transformer } from '../src/model/transformer.ts';
import { LM_LOSS, type LmBatch } from '../src/train/lm-loss.ts';
import { GradientPool, localLossAndGrads } from '../src/train/parallel.ts';
import { disposeGrads } from '../src/train/step.ts';
import { type TrainingConfig, trainLoop } from '../src/train/trainer.ts';
import { trainingConfig } from './micro-configs.ts';

const DS: ModelConfig = {
  model_type: 'deepseek_v3',
  vocab_size: 32,
  hidden_size: 16,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  num_key_value_heads: 2,
  intermediate_size: 32,
  max_position_embeddings: 32,
  rope_theta: 10000,
  rms_norm_eps: 1e-6,
  tie_word_embeddings: false,
  q_lora_rank: null,
  kv_lora_rank: 8,
  qk_nope_head_dim: 8,
  qk_rope_head_dim: 4,
  v_head_dim: 8,
  first_k_dense_replace: 1,
  n_routed_experts: 4,
  n_shared_experts: 1,
  moe_intermediate_size: 8,
  num_experts_per_tok: 1,
  n_group: 1,
  topk_group: 1,
  num_nextn_predict_layers: 0,
};
const quiet = Object.assign(new Writable({ write: (_c, _e, cb) => cb() }), { isTTY: false });
const config: TrainingConfig = trainingConfig({ learning_rate: 1e-3, gradient_accumulation_steps: 2 });

/** A batch of B x T random tokens, its loss divided by `normaliser`. */
function batch(seed: number, B = 3, T = 6, normaliser = 36): LmBatch {
  const rng = new Rng(seed);
  return {
    inputs: Int32Array.from({ length: B * T }, () => rng.int(32)),
    targets: Int32Array.from({ length: B * T }, () => rng.int(32)),
    weights: null,
    B,
    T,
    normaliser,
  };
}

/** A model whose router sends every token to expert 0: its selection bias starts 1 above the others
 * (sigmoid affinities lie in (0, 1)). */
function skewed(): Transformer {
  const m = Transformer.init(DS, 4);
  tf.tidy(() => m.params['layers.1.router_bias'].assign(tf.tensor1d([1, 0, 0, 0])));
  return m;
}

describe('expert loads as metric terms', () => {
  let pool: GradientPool;
  beforeAll(async () => {
    await initBackend('wasm');
  });
  afterAll(async () => pool?.close());

  it('count every routed token once per MoE layer, the same on one thread or split over two', async () => {
    const m = Transformer.init(DS, 2);
    const b = batch(1);
    const one = await localLossAndGrads(m, LM_LOSS, b);
    const loads = Object.entries(one.metrics).filter(([k]) => k.startsWith('moe/load/1/'));
    expect(loads).toHaveLength(4);
    expect(loads.reduce((a, [, v]) => a + v, 0)).toBe(3 * 6 * 1); // B x T tokens x 1 expert each
    expect(Object.keys(one.metrics).some((k) => k.startsWith('moe/load/0/'))).toBe(false); // layer 0 is dense
    pool = new GradientPool(1, DS, 'wasm');
    const two = await pool.lossAndGrads(m, { module: LM_LOSS, data: b, rows: 3 });
    for (const [k, v] of loads) expect(two.metrics[k], k).toBe(v);
    expect(two.loss).toBeCloseTo(one.loss, 5);
    disposeGrads(one.grads);
    disposeGrads(two.grads);
    m.dispose();
  });
});

describe('the bias update in the training loop', () => {
  const dir = mkdtempSync(join(tmpdir(), 'r1-moe-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  async function train(speed: number, name: string) {
    const m = skewed();
    await trainLoop(
      {
        stage: 'pretrain',
        stageDir: join(dir, name),
        model: m,
        config: { ...config, bias_update_speed: speed },
        totalSteps: 40,
        seed: 0,
        hash: name,
        progressStream: quiet,
        threads: 1,
      },
      {
        microBatches: (step) =>
          [0, 1].map((k) => ({
            kind: 'sharded' as const,
            tokens: 18,
            job: { module: LM_LOSS, data: batch(step * 2 + k, 3, 6, 36), rows: 3 },
          })),
      },
    );
    const bias = Array.from(m.params['layers.1.router_bias'].dataSync());
    m.dispose();
    return { rows: readMetrics(join(dir, name, 'metrics.jsonl')), bias };
  }

  it('moves the biases against the load and brings a skewed router toward balance; speed 0 leaves them', async () => {
    const off = await train(0, 'off');
    const on = await train(0.02, 'on');
    expect(off.bias).toEqual([1, 0, 0, 0]);
    expect(on.bias[0]).toBeLessThan(1); // the overloaded expert is made less attractive
    expect(on.bias.slice(1).every((b) => b > 0)).toBe(true);
    const imbalance = (rows: typeof on.rows) => rows.map((r) => r['moe/max_over_mean/1'] as number);
    expect(imbalance(on.rows)[0]).toBe(4); // everything on expert 0 of 4
    expect(imbalance(off.rows).every((x) => x === 4)).toBe(true); // and so it stays without the update
    // With it, max/mean load over the last 15 steps (36 tokens each: noisy, so a mean) falls well below.
    const late = (xs: number[]) => xs.slice(-15).reduce((a, b) => a + b, 0) / 15;
    expect(late(imbalance(on.rows))).toBeLessThan(3);
    expect(on.rows.at(-1)!['moe/max_over_mean'] as number).toBeGreaterThanOrEqual(1);
    // The step's load (summed over its two micro-batches) is logged per expert, for the report's heatmap.
    expect([0, 1, 2, 3].reduce((a, e) => a + (on.rows[0][`moe/load/1/${e}`] as number), 0)).toBe(36);
  }, 60_000);
});
