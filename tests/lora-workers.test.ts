// LoRA in the gradient workers (train/parallel.ts, grad-worker.ts): the workers train the adapters
// and give the gradients of one thread, the frozen base goes to them once per run (not every step),
// and a LoRA stage with two gradient threads ends where one thread ends.
import * as tf from '@tensorflow/tfjs-core';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/engine/backend.ts';
import { Rng } from '../src/engine/rng.ts';
import { projectionParams } from '../src/model/checkpoint.ts';
import type { ModelConfig } from '../src/model/config.ts';
import { LoraAdapters } from '../src/model/lora.ts';
import { Transformer } from '../src/model/transformer.ts';
import { LM_LOSS, type LmBatch } from '../src/train/lm-loss.ts';
import { GradientPool, localLossAndGrads } from '../src/train/parallel.ts';
import { type Grads, disposeGrads } from '../src/train/step.ts';
import { type TrainingConfig, trainLoop } from '../src/train/trainer.ts';
import { LLAMA_MICRO, trainingConfig } from './micro-configs.ts';

const BACKEND = process.env.R1_TEST_BACKEND ?? 'wasm';
const CONFIG: ModelConfig = { ...LLAMA_MICRO, model_type: 'qwen2' }; // q/k/v biases, tied embeddings

/** A model with LoRA adapters whose B is not zero (so A's gradient is not zero either). */
function loraModel(seed: number): Transformer {
  const m = Transformer.init(CONFIG, seed);
  m.attachAdapters(LoraAdapters.init(m.config, projectionParams(m.config), { r: 4 }, 'base', seed + 1));
  for (const [name, v] of Object.entries(m.adapters!.params()))
    if (name.includes('lora_b')) v.assign(tf.randomNormal(v.shape, 0, 0.1, 'float32', seed + 2));
  return m;
}

function lmBatch(seed: number, B = 4, T = 10): LmBatch {
  const rng = new Rng(seed);
  return {
    inputs: Int32Array.from({ length: B * T }, () => rng.int(40)),
    targets: Int32Array.from({ length: B * T }, () => rng.int(40)),
    weights: Float32Array.from({ length: B * T }, (_, i) => (i % 3 === 0 ? 0 : 1)),
    B,
    T,
    normaliser: B * T,
  };
}

function maxDiff(a: Grads, b: Grads): number {
  expect(Object.keys(b).sort()).toEqual(Object.keys(a).sort());
  let worst = 0;
  for (const k of Object.keys(a)) {
    const x = a[k].dataSync(),
      y = b[k].dataSync();
    for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]));
  }
  return worst;
}

const bytesOf = (params: Record<string, tf.Variable>) => Object.values(params).reduce((n, v) => n + v.size * 4, 0);

beforeAll(async () => {
  await initBackend(BACKEND);
});

describe('LoRA in the gradient workers', () => {
  let pool: GradientPool | undefined;
  afterAll(async () => pool?.close());

  it('give the one-thread gradients of the adapters at every step, with the frozen base sent once', async () => {
    const model = loraModel(3);
    pool = new GradientPool(1, CONFIG, BACKEND, { adapters: model.adapters, gradientCheckpointing: true });
    const baseBytes = bytesOf(model.params),
      adapterBytes = bytesOf(model.trainableParams());
    const steps = 3;
    for (let step = 0; step < steps; step++) {
      const batch = lmBatch(10 + step);
      const one = await localLossAndGrads(model, LM_LOSS, batch);
      const two = await pool.lossAndGrads(model, { module: LM_LOSS, data: batch, rows: batch.B });
      expect(Object.keys(two.grads).every((k) => k.includes('.lora_'))).toBe(true);
      expect(two.loss).toBeCloseTo(one.loss, 5);
      expect(maxDiff(one.grads, two.grads)).toBeLessThan(1e-5);
      // An optimiser step of the adapters only (what the trainer does), then the pool is told.
      for (const [name, v] of Object.entries(model.trainableParams())) tf.tidy(() => v.assign(tf.sub(v, tf.mul(one.grads[name], 0.5))));
      pool.invalidate();
      disposeGrads(one.grads);
      disposeGrads(two.grads);
    }
    // The base went to shared memory and into the worker once; the adapters at each step.
    expect(pool.sentBytes.base).toBe(baseBytes);
    expect(pool.sentBytes.adapters).toBe(steps * adapterBytes);
    expect(pool.workerLoadedBytes).toBe(baseBytes + steps * adapterBytes);
    // A base that moves (a MoE router's bias) goes again, once.
    pool.invalidate({ base: true });
    const batch = lmBatch(20);
    disposeGrads((await pool.lossAndGrads(model, { module: LM_LOSS, data: batch, rows: batch.B })).grads);
    expect(pool.sentBytes.base).toBe(2 * baseBytes);
    expect(pool.workerLoadedBytes).toBe(2 * baseBytes + (steps + 1) * adapterBytes);
    model.dispose();
  });

  it('a LoRA training loop with two gradient threads ends where one thread ends', async () => {
    const config: TrainingConfig = trainingConfig();
    const run = async (threads: number) => {
      const model = loraModel(5);
      const notes: string[] = [];
      const result = await trainLoop(
        {
          stage: 'lora',
          stageDir: mkdtempSync(join(tmpdir(), 'lora-workers-')),
          model,
          config,
          totalSteps: 3,
          seed: 1,
          hash: 'h',
          threads,
          backend: BACKEND,
          log: (l) => notes.push(l),
          progressStream: { write: () => true } as unknown as NodeJS.WritableStream,
        },
        { microBatches: (step) => [{ kind: 'sharded', tokens: 40, job: { module: LM_LOSS, data: lmBatch(30 + step), rows: 4 } }] },
      );
      const adapters = Object.fromEntries(Object.entries(model.trainableParams()).map(([k, v]) => [k, Array.from(v.dataSync())]));
      model.dispose();
      return { result, adapters, notes };
    };
    const one = await run(1);
    const two = await run(2);
    expect(one.notes).toEqual([]);
    expect(two.notes.join()).toMatch(/LoRA with 1 gradient worker: each holds the frozen base .* copied in once per run/);
    expect(two.result.finalLoss).toBeCloseTo(one.result.finalLoss, 5);
    let worst = 0;
    for (const [k, a] of Object.entries(one.adapters)) a.forEach((x, i) => (worst = Math.max(worst, Math.abs(x - two.adapters[k][i]))));
    expect(worst).toBeLessThan(1e-4);
    // The run moved the adapters (the comparison is not of two untouched starts).
    const start = loraModel(5);
    const moved = Object.entries(start.trainableParams()).some(([k, v]) => Math.abs(v.dataSync()[0] - one.adapters[k][0]) > 1e-4);
    start.dispose();
    expect(moved).toBe(true);
  });
});
