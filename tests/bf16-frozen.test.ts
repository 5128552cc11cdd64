// Frozen weights held as bfloat16 outside the backend (lora.frozen_dtype: bfloat16; model/bf16.ts):
// the model computes exactly what the float32 model with bf16-rounded base weights computes, logits
// and adapter gradients alike (with and without activation checkpointing), the backend holds none of
// the frozen projections, and saving the adapter and merging still work.
import * as tf from '@tensorflow/tfjs-core';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/engine/backend.ts';
import { Bf16Weight, fromBf16, roundToBf16, toBf16 } from '../src/model/bf16.ts';
import { bf16HoldableParams, frozenBf16Bytes } from '../src/model/bf16-frozen.ts';
import { type ModelConfig, parameterCount } from '../src/model/config.ts';
import { loadModel, mergeAdapters, prepareStageAdapters, projectionParams, saveModel } from '../src/model/checkpoint.ts';
import { Transformer, parameterShapes } from '../src/model/transformer.ts';
import { WASM_HEAP_BYTES, planMemory, planProblems } from '../src/train/memory-plan.ts';
import { disposeGrads, lossAndGrads } from '../src/train/step.ts';
import { DEEPSEEK_MICRO, LLAMA_MICRO, QWEN2_MICRO } from './micro-configs.ts';
import { QWEN25_05B_CONFIG } from '../scripts/make-random-qwen.ts';

const BACKEND = process.env.R1_TEST_BACKEND ?? 'wasm';
const LLAMA = LLAMA_MICRO;
const QWEN2 = QWEN2_MICRO;
/** deepseek_v3 with q compression, a dense first layer then MoE (4 experts, 1 shared). */
const DS: ModelConfig = { ...DEEPSEEK_MICRO, n_routed_experts: 4, n_group: 2, topk_group: 1, num_nextn_predict_layers: 0 };
const IDS = [
  [1, 5, 9, 3, 7, 2],
  [4, 4, 8, 1, 0, 6],
];
/** How far bf16-held base weights may move the tiny models' logits from float32 (measured: about 1e-3). */
const BF16_LOGIT_TOLERANCE = 5e-3;

const logits = (m: Transformer) => tf.tidy(() => m.forward(tf.tensor2d(IDS, [2, 6], 'int32')).dataSync() as Float32Array);
const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);

/** A model with LoRA adapters (random B, so they matter) and, when `bf16`, its base held as bf16. */
function adapted(c: ModelConfig, bf16: boolean, seed = 3): Transformer {
  const m = Transformer.init(c, seed);
  prepareStageAdapters(m, { r: 4, frozen_dtype: bf16 ? 'bfloat16' : 'float32' }, 'base', 'stages.t.lora', 7);
  let s = 1;
  const next = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31 - 0.5) * 0.4;
  for (const slot of m.adapters!.slots.values())
    for (const b of slot.b) tf.tidy(() => b.assign(tf.tensor(Float32Array.from({ length: b.size }, next), b.shape)));
  return m;
}

/** The float32 model whose block projections were rounded to bf16 first: what the bf16 model must equal. */
function roundedTwin(c: ModelConfig): Transformer {
  const m = adapted(c, false);
  for (const { param } of projectionParams(c)) {
    if (param.endsWith('.wkv_b')) continue;
    const v = m.params[param];
    tf.tidy(() => v.assign(tf.tensor(roundToBf16(v.dataSync() as Float32Array), v.shape)));
  }
  return m;
}

function adapterGrads(m: Transformer): Record<string, Float32Array> {
  const loss = () => tf.tidy(() => tf.mean(tf.square(m.forward(tf.tensor2d(IDS, [2, 6], 'int32')))) as tf.Scalar);
  const { grads } = lossAndGrads(m.trainableParams(), loss);
  const out = Object.fromEntries(Object.entries(grads).map(([k, g]) => [k, g.dataSync().slice() as Float32Array]));
  disposeGrads(grads);
  return out;
}

beforeAll(async () => {
  await initBackend(BACKEND);
});

describe('bfloat16 storage', () => {
  it('rounds to nearest even and widens exactly', () => {
    const f = new Float32Array(new Uint32Array([0x3f808000, 0x3f818000, 0x3f808001, 0x7f7fffff, 0x7fc00001, 0xbf800000]).buffer);
    expect([...toBf16(f)].map((b) => b.toString(16))).toEqual(['3f80', '3f82', '3f81', '7f80', '7fc0', 'bf80']);
    expect([...fromBf16(new Uint16Array([0x3f80, 0xc040]))]).toEqual([1, -3]);
    const w = Bf16Weight.fromTensor(tf.tensor2d([1.5, -2, 0.1, 3], [2, 2]));
    expect(w.bytes).toBe(8);
    expect([...w.values()]).toEqual([...roundToBf16(new Float32Array([1.5, -2, 0.1, 3]))]);
  });
});

describe('lora.frozen_dtype: bfloat16', () => {
  for (const [name, c] of [
    ['llama', LLAMA],
    ['qwen2', QWEN2],
    ['deepseek_v3', DS],
  ] as const) {
    it(`${name}: logits and adapter gradients equal the float32 model with bf16-rounded weights`, () => {
      const held = adapted(c, true),
        twin = roundedTwin(c),
        exact = adapted(c, false);
      expect(held.frozen.size).toBeGreaterThan(0);
      const l = logits(held);
      expect(maxDiff(l, logits(twin))).toBeLessThan(1e-5);
      const drift = maxDiff(l, logits(exact));
      expect(drift).toBeGreaterThan(0); // the rounding is real
      expect(drift).toBeLessThan(BF16_LOGIT_TOLERANCE);
      for (const checkpointing of [false, true]) {
        held.gradientCheckpointing = twin.gradientCheckpointing = checkpointing;
        const g = adapterGrads(held),
          want = adapterGrads(twin);
        expect(Object.keys(g).sort()).toEqual(Object.keys(want).sort());
        for (const k of Object.keys(want)) expect(maxDiff(g[k], want[k]), `${k} (checkpointing ${checkpointing})`).toBeLessThan(1e-5);
        expect(Math.max(...Object.values(g).map((x) => Math.max(...x.map(Math.abs))))).toBeGreaterThan(0);
      }
      for (const m of [held, twin, exact]) m.dispose();
    });
  }

  it('takes the frozen projections out of the backend: tfjs holds their float32 bytes less, JS half of them', () => {
    const before = tf.memory().numBytes;
    const f32 = adapted(QWEN2, false);
    const withF32 = tf.memory().numBytes - before;
    f32.dispose();
    const start = tf.memory().numBytes;
    expect(start).toBe(before); // a disposed model leaves nothing behind
    const held = adapted(QWEN2, true);
    const withBf16 = tf.memory().numBytes - start;
    const names = projectionParams(QWEN2).map((p) => p.param);
    const frozenF32Bytes = names.reduce((n, k) => n + held.frozen.get(k)!.bits.length * 4, 0);
    expect(frozenF32Bytes).toBeGreaterThan(0);
    expect(withF32 - withBf16).toBe(frozenF32Bytes);
    expect(frozenBf16Bytes(held)).toBe(frozenF32Bytes / 2);
    for (const k of names) {
      expect(held.params[k]).toBeUndefined();
      expect(held.frozen.get(k)).toBeInstanceOf(Bf16Weight);
    }
    // A forward and backward pass leave nothing behind (each widened copy is freed after its product).
    adapterGrads(held);
    logits(held);
    const settled = tf.memory().numTensors;
    adapterGrads(held);
    logits(held);
    expect(tf.memory().numTensors).toBe(settled);
    held.dispose();
  });

  it('the adapter saves as a PEFT folder and merges (widened) into the bf16-rounded base', () => {
    const dir = mkdtempSync(join(tmpdir(), 'r1-bf16-'));
    const baseDir = join(dir, 'base'),
      adapterDir = join(dir, 'adapter'),
      mergedDir = join(dir, 'merged');
    const base = Transformer.init(QWEN2, 3);
    saveModel(baseDir, base, {}, { dtype: 'F32' });
    base.dispose();
    const m = loadModel(baseDir);
    prepareStageAdapters(m, { r: 4, frozen_dtype: 'bfloat16' }, baseDir, 'stages.t.lora', 7);
    for (const slot of m.adapters!.slots.values()) for (const b of slot.b) b.assign(tf.fill(b.shape, 0.05));
    const want = logits(m);
    saveModel(adapterDir, m, {}, { dtype: 'F32' });
    m.dispose();
    // Loaded as a bf16 LoRA stage loads it (context.ts): the projections never enter the backend.
    const atRest = (frozenBf16: boolean) => {
      const before = tf.memory().numBytes;
      const model = loadModel(adapterDir, { frozenBf16 });
      return { model, bytes: tf.memory().numBytes - before };
    };
    const plain = atRest(false);
    plain.model.dispose();
    const { model: direct, bytes } = atRest(true);
    const names = projectionParams(QWEN2).map((p) => p.param);
    expect(names.every((k) => direct.params[k] === undefined && direct.frozen.has(k))).toBe(true);
    expect(plain.bytes - bytes).toBe(2 * frozenBf16Bytes(direct));
    prepareStageAdapters(direct, { r: 4, frozen_dtype: 'bfloat16' }, baseDir, 'stages.t.lora', 7);
    expect(maxDiff(logits(direct), want)).toBeLessThan(1e-5);
    direct.dispose();
    // Loaded back (as `r1 convert --merge` does), the adapter runs on the float32 base: bf16 only
    // ever held the base in memory, so the adapter is the same and the logits differ by the rounding.
    const back = loadModel(adapterDir);
    expect(back.frozen.size).toBe(0);
    expect(maxDiff(logits(back), want)).toBeLessThan(BF16_LOGIT_TOLERANCE);
    mergeAdapters(back);
    saveModel(mergedDir, back, {}, { dtype: 'F32' });
    back.dispose();
    // Merging a bf16-held model widens its base back into float32 variables.
    const held = loadModel(baseDir);
    prepareStageAdapters(held, { r: 4, frozen_dtype: 'bfloat16' }, baseDir, 'stages.t.lora', 7);
    for (const slot of held.adapters!.slots.values()) for (const b of slot.b) b.assign(tf.fill(b.shape, 0.05));
    mergeAdapters(held);
    expect(held.frozen.size).toBe(0);
    expect(maxDiff(logits(held), want)).toBeLessThan(1e-5);
    const merged = loadModel(mergedDir);
    expect(maxDiff(logits(merged), want)).toBeLessThan(BF16_LOGIT_TOLERANCE);
    held.dispose();
    merged.dispose();
  });
});

/** Qwen2.5-0.5B's config (494 M parameters), as its config.json ships it. */
const QWEN05: ModelConfig = QWEN25_05B_CONFIG;

describe('memory plan with frozen_dtype: bfloat16', () => {
  const held = (c: ModelConfig) => {
    const shapes = parameterShapes(c);
    return bf16HoldableParams(projectionParams(c)).reduce((n, k) => n + shapes[k].reduce((a, b) => a * b, 1), 0);
  };

  it('counts what the model holds as bf16', () => {
    const m = adapted(QWEN2, true);
    expect(frozenBf16Bytes(m)).toBe(2 * held(QWEN2));
    m.dispose();
  });

  it('counts the frozen projections at 2 bytes outside the heap, one layer of them widened in it', () => {
    const params = parameterCount(QWEN05),
      bf16 = held(QWEN05);
    const base = {
      kind: 'grpo',
      backend: 'wasm',
      params,
      matrixParams: params - QWEN05.num_hidden_layers * 2 * QWEN05.hidden_size - QWEN05.hidden_size,
      trainable: 8_798_208,
      lora: true,
      microBatch: 1,
      seqLength: 192,
      beta: 0.04,
      generationBatch: 4,
    } as const;
    const f32 = planMemory(QWEN05, base),
      bf = planMemory(QWEN05, { ...base, frozenBf16Params: bf16 });
    const oneLayer = Math.ceil(bf16 / QWEN05.num_hidden_layers);
    expect(bf.main.weights).toBe(f32.main.weights - 4 * (bf16 - oneLayer));
    expect(bf.main.packed).toBe(f32.main.packed - 4 * (bf16 - oneLayer));
    expect(bf.outside).toBe(2 * bf16);
    expect(f32.outside).toBe(0);
    expect(bf.total).toBe(bf.mainTotal + bf.outside);
    // The float32 plan does not fit the heap and names the bf16 setting among its fixes; bf16 alone
    // (on XNNPACK) still leaves the embedding's packed copy and the activations to fit.
    const limits = { heapBytes: WASM_HEAP_BYTES, machineBytes: 24 * 2 ** 30 };
    expect(planProblems(f32, base, limits).join()).toMatch(/frozen_dtype: bfloat16/);
    expect(planProblems(bf, { ...base, frozenBf16Params: bf16 }, limits).join()).not.toMatch(/frozen_dtype/);
    expect(bf.mainTotal).toBeLessThan(f32.mainTotal - 2 ** 30);
  });
});
