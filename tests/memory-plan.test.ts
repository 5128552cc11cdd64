// The memory plan (src/train/memory-plan.ts): held against the peak a real training step reaches,
// and refusing what cannot fit with the settings that would make it fit.
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/engine/backend.ts';
import { type ModelConfig, parameterCount } from '../src/model/config.ts';
import { Transformer } from '../src/model/transformer.ts';
import { AdamW } from '../src/train/adamw.ts';
import { lmLoss, windowBatch } from '../src/train/lm-loss.ts';
import { WASM_HEAP_BYTES, planMemory, planProblems } from '../src/train/memory-plan.ts';
import { disposeGrads, lossAndGrads } from '../src/train/step.ts';
import { QWEN25_05B_CONFIG } from '../scripts/make-random-qwen.ts';

const TINY: ModelConfig = {
  vocab_size: 512,
  hidden_size: 128,
  num_hidden_layers: 4,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  intermediate_size: 352,
  max_position_embeddings: 128,
  rope_theta: 10000,
  rms_norm_eps: 1e-6,
  tie_word_embeddings: true,
};
/** Qwen2.5-0.5B's config (494 M parameters), as its config.json ships it. */
const QWEN05: ModelConfig = QWEN25_05B_CONFIG;
const matrices = (c: ModelConfig) => parameterCount(c) - c.num_hidden_layers * 2 * c.hidden_size - c.hidden_size;
/** LoRA r = 16 on the seven projections of every layer. */
const loraParams = (c: ModelConfig, r = 16) => {
  const C = c.hidden_size,
    D = C / c.num_attention_heads,
    q = c.num_attention_heads * D,
    kv = c.num_key_value_heads * D,
    F = c.intermediate_size;
  return c.num_hidden_layers * r * (C + q + 2 * (C + kv) + (q + C) + 2 * (C + F) + (F + C));
};

beforeAll(async () => {
  await initBackend('wasm');
});

describe('memory plan', () => {
  // WebAssembly's fused kernels and the composed ops (cpu, and webgpu's kernels) hold different
  // intermediates; checkpointing recomputes a layer in the backward.
  it.each([
    ['wasm', false],
    ['wasm', true],
    ['cpu', false],
    ['cpu', true],
  ] as const)(
    'is within a factor of 1.3 of the tensor peak a full training step reaches on %s (checkpointing %s)',
    async (backend, checkpointing) => {
      await initBackend(backend);
      const before = tf.memory().numBytes; // tensors of earlier tests, on any backend
      const model = Transformer.init(TINY, 0),
        B = backend === 'cpu' ? 4 : 8, // the plain-JavaScript backend is slow
        T = 64;
      model.gradientCheckpointing = checkpointing;
      const windows = Array.from({ length: B }, (_, b) => Array.from({ length: T + 1 }, (_, t) => (b * 31 + t * 7) % 512));
      const opt = new AdamW(model.params);
      const info = await tf.profile(() => {
        const { grads } = lossAndGrads(model.params, () => lmLoss(model, windowBatch(windows, T, B * T)));
        opt.apply(grads, 1e-3);
        disposeGrads(grads);
      });
      const plan = planMemory(TINY, {
        kind: 'pretrain',
        backend,
        blas: true,
        gradientCheckpointing: checkpointing,
        params: parameterCount(TINY),
        matrixParams: matrices(TINY),
        trainable: parameterCount(TINY),
        lora: false,
        microBatch: B,
        seqLength: T,
        beta: 0,
      });
      const ratio = plan.mainTotal / (info.peakBytes - before);
      expect(ratio).toBeGreaterThan(1 / 1.3);
      expect(ratio).toBeLessThan(1.3);
      opt.dispose();
      model.dispose();
      await initBackend('wasm');
    },
  );

  it('refuses a full GRPO fine-tune of Qwen2.5-0.5B on WebAssembly, naming the parts and LoRA as the fix', () => {
    const p = {
      kind: 'grpo',
      backend: 'wasm',
      params: parameterCount(QWEN05),
      matrixParams: matrices(QWEN05),
      trainable: parameterCount(QWEN05),
      lora: false,
      microBatch: 4,
      seqLength: 192,
      beta: 0.04,
      generationBatch: 4,
    } as const;
    const plan = planMemory(QWEN05, p);
    expect(plan.main.optimizer).toBeCloseTo(2 * 4 * parameterCount(QWEN05), -3);
    expect(plan.main.reference).toBeGreaterThan(plan.main.weights - 1);
    const problems = planProblems(plan, p, { heapBytes: WASM_HEAP_BYTES, machineBytes: 24 * 2 ** 30 });
    expect(problems[0]).toMatch(/over its 4.00 GiB .*optimizer .*train LoRA adapters \(lora: \{ r: 16 \}\)/);
  });

  it('with LoRA the same step drops the optimizer, gradients and reference copy; the packed copies, then the sequence length, decide the rest', () => {
    const base = {
      kind: 'grpo',
      backend: 'wasm',
      params: parameterCount(QWEN05),
      matrixParams: matrices(QWEN05),
      trainable: loraParams(QWEN05),
      lora: true,
      microBatch: 1,
      seqLength: 192,
      beta: 0.04,
      generationBatch: 4,
    } as const;
    const xnn = planMemory(QWEN05, base);
    expect(xnn.main.reference).toBe(0);
    expect(xnn.main.optimizer).toBe(2 * 4 * loraParams(QWEN05));
    expect(planProblems(xnn, base, { heapBytes: WASM_HEAP_BYTES, machineBytes: 24 * 2 ** 30 }).join()).toMatch(/install OpenBLAS/);
    // With BLAS (no packed copies) and the logits in row slices, a 192-token row fits; the frozen
    // weights (1.98 GB) and one 512-token row's activations still pass 4 GiB: the plan names the length.
    const blas = planMemory(QWEN05, { ...base, blas: true });
    expect(blas.mainTotal).toBeCloseTo(xnn.mainTotal - xnn.main.packed, -3);
    expect(blas.main.logits).toBe(6 * Math.floor(2 ** 24 / 151936) * 151936 * 4);
    expect(planProblems(blas, { ...base, blas: true }, { heapBytes: WASM_HEAP_BYTES, machineBytes: 24 * 2 ** 30 })).toEqual([]);
    const long = { ...base, blas: true, seqLength: 512 };
    expect(planProblems(planMemory(QWEN05, long), long, { heapBytes: WASM_HEAP_BYTES, machineBytes: 24 * 2 ** 30 }).join()).toMatch(
      /activations .*shorten the sequences/,
    );
    const short = { ...base, blas: true, seqLength: 96 };
    expect(planProblems(planMemory(QWEN05, short), short, { heapBytes: WASM_HEAP_BYTES, machineBytes: 24 * 2 ** 30 })).toEqual([]);
  });
});
