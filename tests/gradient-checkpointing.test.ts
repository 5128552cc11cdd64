// Activation checkpointing (gradient_checkpointing: true, src/model/recompute.ts): the gradients are
// those of the plain backward pass (dense and under LoRA), the tensor peak of a forward + backward
// where activations dominate is lower with it, and the memory plan counts it.
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/engine/backend.ts';
import { projectionParams } from '../src/model/checkpoint.ts';
import { type ModelConfig, parameterCount } from '../src/model/config.ts';
import { LoraAdapters } from '../src/model/lora.ts';
import { Transformer } from '../src/model/transformer.ts';
import { lmLoss } from '../src/train/lm-loss.ts';
import { planMemory } from '../src/train/memory-plan.ts';
import { type Grads, disposeGrads, lossAndGrads } from '../src/train/step.ts';
import type { LossBatch } from '../src/model/mtp.ts';
import { DEEPSEEK_MICRO } from './micro-configs.ts';

const TINY: ModelConfig = {
  model_type: 'qwen2',
  vocab_size: 48,
  hidden_size: 16,
  num_hidden_layers: 3,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  intermediate_size: 40,
  max_position_embeddings: 64,
  rope_theta: 10000,
  rms_norm_eps: 1e-6,
  tie_word_embeddings: true,
};

/** deepseek_v3: MLA, a dense first layer (recomputed) then a MoE layer (run as usual), and MTP. */
const DS = DEEPSEEK_MICRO;

function batch(B: number, T: number, V: number, packed = false): LossBatch {
  const inputs = new Int32Array(B * T).map((_, i) => (i * 7 + 3) % V);
  const targets = new Int32Array(B * T).map((_, i) => (i * 11 + 5) % V);
  const weights = new Float32Array(B * T).map((_, i) => (i % 5 === 0 ? 0 : 1));
  const b: LossBatch = { inputs, targets, weights, B, T, normaliser: weights.reduce((a, w) => a + w, 0) };
  if (packed) {
    // Two documents a row: positions restart at the second.
    const half = Math.floor(T / 2);
    b.packed = {
      positions: new Int32Array(B * T).map((_, i) => (i % T < half ? i % T : (i % T) - half)),
      documents: new Int32Array(B * T).map((_, i) => Math.floor(i / T) * 2 + (i % T < half ? 0 : 1)),
    };
  }
  return b;
}

function gradsOf(model: Transformer, b: LossBatch, checkpointing: boolean): { loss: number; grads: Grads } {
  model.gradientCheckpointing = checkpointing;
  return lossAndGrads(model.trainableParams(), () => lmLoss(model, b));
}

function expectSameGrads(a: Grads, b: Grads): void {
  expect(Object.keys(b).sort()).toEqual(Object.keys(a).sort());
  for (const k of Object.keys(a)) {
    const x = a[k].dataSync(),
      y = b[k].dataSync();
    let worst = 0;
    for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]));
    expect(worst, k).toBeLessThan(1e-5);
  }
}

/** Every gradient is nonzero somewhere: a block whose variables were cut off would give zeros. */
function expectAllNonzero(grads: Grads): void {
  for (const [k, g] of Object.entries(grads))
    expect(
      tf.tidy(() => tf.max(tf.abs(g)).dataSync()[0]),
      k,
    ).toBeGreaterThan(0);
}

beforeAll(async () => {
  await initBackend(process.env.R1_TEST_BACKEND ?? 'wasm');
});

describe('gradient checkpointing', () => {
  it('gives the gradients of the plain backward pass, every weight (packed rows too), and leaks no tensor', () => {
    const model = Transformer.init(TINY, 1);
    for (const packed of [false, true]) {
      const b = batch(2, 12, TINY.vocab_size, packed);
      const plain = gradsOf(model, b, false);
      const before = tf.memory().numTensors;
      const again = gradsOf(model, b, true);
      expect(again.loss).toBeCloseTo(plain.loss, 6);
      expectSameGrads(plain.grads, again.grads);
      expectAllNonzero(again.grads);
      disposeGrads(again.grads);
      expect(tf.memory().numTensors).toBe(before);
      disposeGrads(plain.grads);
    }
    model.dispose();
  });

  it('gives deepseek_v3 the gradients of the plain backward pass (MLA recomputed, MoE layers as usual)', () => {
    const model = Transformer.init(DS, 6);
    const b = batch(2, 10, DS.vocab_size);
    const plain = gradsOf(model, b, false);
    const again = gradsOf(model, b, true);
    expect(again.loss).toBeCloseTo(plain.loss, 6);
    expectSameGrads(plain.grads, again.grads);
    disposeGrads(plain.grads);
    disposeGrads(again.grads);
    model.dispose();
  });

  it('gives the adapters the gradients of the plain backward pass under LoRA', () => {
    const model = Transformer.init(TINY, 2);
    model.attachAdapters(LoraAdapters.init(model.config, projectionParams(model.config), { r: 4 }, 'base', 3));
    // B starts at zero (A's gradient would be zero too): give it values so both are tested.
    for (const [name, v] of Object.entries(model.adapters!.params()))
      if (name.includes('lora_b')) v.assign(tf.randomNormal(v.shape, 0, 0.1, 'float32', 5));
    const b = batch(2, 10, TINY.vocab_size);
    const plain = gradsOf(model, b, false);
    const again = gradsOf(model, b, true);
    expect(Object.keys(again.grads).every((k) => k.includes('lora_'))).toBe(true);
    expectSameGrads(plain.grads, again.grads);
    expectAllNonzero(again.grads);
    disposeGrads(plain.grads);
    disposeGrads(again.grads);
    model.dispose();
  });

  it('lowers the tensor peak of a forward + backward where activations dominate, as the plan says', async () => {
    // Many layers, long rows, small weights: the per-layer intermediates are most of the peak.
    const deep: ModelConfig = { ...TINY, num_hidden_layers: 8, hidden_size: 32, intermediate_size: 96, max_position_embeddings: 256 };
    const model = Transformer.init(deep, 4);
    const b = batch(4, 128, deep.vocab_size);
    const peak = async (checkpointing: boolean) =>
      (
        await tf.profile(() => {
          const { grads } = gradsOf(model, b, checkpointing);
          disposeGrads(grads);
        })
      ).peakBytes;
    const plain = await peak(false);
    const saved = await peak(true);
    expect(saved).toBeLessThan(0.5 * plain);
    const input = {
      kind: 'pretrain',
      backend: 'wasm',
      blas: true,
      params: parameterCount(deep),
      matrixParams: parameterCount(deep),
      trainable: parameterCount(deep),
      lora: false,
      microBatch: 4,
      seqLength: 128,
      beta: 0,
    } as const;
    const planPlain = planMemory(deep, input),
      planSaved = planMemory(deep, { ...input, gradientCheckpointing: true });
    expect(planSaved.main.activations).toBeLessThan(0.5 * planPlain.main.activations);
    // The plan's total stays near the measured peak both ways (it is what refuses recipes).
    for (const [plan, measured] of [
      [planPlain.mainTotal, plain],
      [planSaved.mainTotal, saved],
    ]) {
      expect(plan / measured).toBeGreaterThan(1 / 1.6);
      expect(plan / measured).toBeLessThan(1.6);
    }
    model.dispose();
  });
});
