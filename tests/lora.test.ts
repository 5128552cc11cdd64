// LoRA adapters (src/model/lora.ts) and their PEFT folders (checkpoint.ts): a fresh adapter leaves the
// model unchanged, a trained one equals its merged weights, only the adapters get gradients, the
// base view is the model without them, and PEFT's layout goes out and comes back in exactly.
import * as tf from '@tensorflow/tfjs-core';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/engine/backend.ts';
import { readSafetensors, writeSafetensors } from '../src/engine/safetensors.ts';
import type { ModelConfig } from '../src/model/config.ts';
import { isAdapterDir, loadModel, mergeAdapters, projectionParams, saveModel } from '../src/model/checkpoint.ts';
import { LoraAdapters, loraScale, resolveLoraConfig } from '../src/model/lora.ts';
import { Transformer } from '../src/model/transformer.ts';
import { lossAndGrads, disposeGrads } from '../src/train/step.ts';
import { DEEPSEEK_MICRO, LLAMA_MICRO, QWEN2_MICRO } from './micro-configs.ts';

const BACKEND = process.env.R1_TEST_BACKEND ?? 'wasm';
const LLAMA = LLAMA_MICRO;
const QWEN2 = QWEN2_MICRO;
const DS = DEEPSEEK_MICRO;
const IDS = [
  [1, 5, 9, 3, 7, 2],
  [4, 4, 8, 1, 0, 6],
];

const logits = (m: Transformer) => tf.tidy(() => m.forward(tf.tensor2d(IDS, [2, 6], 'int32')).dataSync() as Float32Array);
const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);

/** Random values in every B (a fresh B is zero, which would hide a wrong layout). */
function randomiseB(lora: LoraAdapters, seed = 1): void {
  let s = seed;
  const next = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31 - 0.5) * 0.4;
  for (const slot of lora.slots.values()) for (const b of slot.b) b.assign(tf.tensor(Float32Array.from({ length: b.size }, next), b.shape));
}

function withLora(c: ModelConfig, raw: Parameters<typeof LoraAdapters.init>[2] = { r: 4 }): Transformer {
  const m = Transformer.init(c, 3);
  m.attachAdapters(LoraAdapters.init(m.config, projectionParams(m.config), raw, 'base', 7));
  return m;
}

beforeAll(async () => {
  await initBackend(BACKEND);
});

describe('LoRA adapters', () => {
  it('scale is alpha / r, alpha / sqrt(r) with rsLoRA, alpha defaulting to 2r', () => {
    expect(loraScale({ r: 8, alpha: 16, use_rslora: false })).toBe(2);
    expect(loraScale({ r: 16, alpha: 16, use_rslora: true })).toBe(4);
    expect(loraScale({ r: 4, alpha: undefined, use_rslora: false })).toBe(2);
  });

  it("targets every block projection by default, in PEFT's module names", () => {
    const m = withLora(LLAMA);
    const modules = [...m.adapters!.slots.values()].flatMap((s) => s.targets.map((t) => t.module));
    expect(modules).toHaveLength(2 * 7);
    expect(modules).toContain('model.layers.1.self_attn.v_proj');
    expect(modules).toContain('model.layers.0.mlp.down_proj');
    m.dispose();
  });

  it('A is Kaiming-uniform within 1/sqrt(in), B is zero: a fresh adapter changes nothing', () => {
    const base = Transformer.init(LLAMA, 3),
      m = withLora(LLAMA);
    for (const s of m.adapters!.slots.values()) {
      const a = s.a.dataSync() as Float32Array;
      expect(Math.max(...a.map(Math.abs))).toBeLessThanOrEqual(1 / Math.sqrt(s.in));
      expect(Math.max(...a.map(Math.abs))).toBeGreaterThan(0.5 / Math.sqrt(s.in));
      for (const b of s.b) expect(Math.max(...(b.dataSync() as Float32Array).map(Math.abs))).toBe(0);
    }
    expect(maxDiff(logits(m), logits(base))).toBeLessThan(1e-6);
    base.dispose();
    m.dispose();
  });

  const partial = {
    llama: ['q_proj', 'v_proj', 'o_proj', 'up_proj', 'down_proj'],
    deepseek_v3: ['q_b_proj', 'kv_a_proj_with_mqa', 'o_proj', 'up_proj', 'down_proj'],
  };
  for (const [name, c, targets] of [
    ['llama', LLAMA, partial.llama],
    ['qwen2', QWEN2, partial.llama],
    ['deepseek_v3', DS, partial.deepseek_v3],
    ['deepseek_v3 (defaults)', DS, undefined],
  ] as const) {
    it(`${name}: the adapted model equals its merged weights (W + s B A), and the base view equals the base`, () => {
      const m = withLora(c, { r: 4, alpha: 8, target_modules: targets && [...targets] });
      randomiseB(m.adapters!);
      const adapted = logits(m),
        base = logits(m.baseView());
      const before = Transformer.init(c, 3);
      expect(maxDiff(base, logits(before))).toBeLessThan(1e-6);
      expect(maxDiff(adapted, base)).toBeGreaterThan(1e-3);
      mergeAdapters(m);
      expect(m.adapters).toBeNull();
      expect(maxDiff(logits(m), adapted)).toBeLessThan(1e-5);
      before.dispose();
      m.dispose();
    });
  }

  it('only the adapters get gradients; the frozen weights get none', () => {
    const m = withLora(LLAMA);
    randomiseB(m.adapters!);
    const loss = () => tf.tidy(() => tf.mean(tf.square(m.forward(tf.tensor2d(IDS, [2, 6], 'int32')))) as tf.Scalar);
    const { grads } = lossAndGrads(m.trainableParams(), loss);
    expect(Object.keys(grads).sort()).toEqual(Object.keys(m.adapters!.params()).sort());
    for (const g of Object.values(grads)) expect(Math.max(...(g.dataSync() as Float32Array).map(Math.abs))).toBeGreaterThan(0);
    expect(Object.values(m.params).every((v) => !v.trainable)).toBe(true);
    disposeGrads(grads);
    m.dispose();
  });

  it('unknown, untargetable and malformed settings are refused by name', () => {
    expect(() => withLora(LLAMA, { r: 4, target_modules: ['q_proj', 'qkv'] })).toThrow(/lora.target_modules: qkv matches no module/);
    const ds = { r: 4, target_modules: ['kv_b_proj'] };
    expect(() => resolveLoraConfig(LLAMA, ds, 'stages.grpo.lora')).toThrow(/stages.grpo.lora.target_modules: kv_b_proj cannot be adapted/);
    expect(() => resolveLoraConfig(LLAMA, { r: 0 }, 'stages.grpo.lora')).toThrow(/stages.grpo.lora.r/);
  });
});

describe("PEFT's adapter folder", () => {
  it('saves adapter_config.json and adapter_model.safetensors in PEFT names and shapes, and loads back exactly', () => {
    const root = mkdtempSync(join(tmpdir(), 'r1-lora-')),
      baseDir = join(root, 'base'),
      out = join(root, 'adapter');
    const base = Transformer.init(QWEN2, 3);
    saveModel(baseDir, base);
    const m = loadModel(baseDir);
    m.attachAdapters(LoraAdapters.init(m.config, projectionParams(m.config), { r: 4, alpha: 16, use_rslora: true }, baseDir, 7));
    randomiseB(m.adapters!);
    const want = logits(m);
    saveModel(out, m);
    expect(isAdapterDir(out)).toBe(true);
    const cfg = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8'));
    expect(cfg).toMatchObject({ peft_type: 'LORA', r: 4, lora_alpha: 16, use_rslora: true, base_model_name_or_path: baseDir });
    const { tensors } = readSafetensors(join(out, 'adapter_model.safetensors'));
    expect(tensors['base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight'].shape).toEqual([4, 16]);
    expect(tensors['base_model.model.model.layers.0.self_attn.k_proj.lora_B.weight'].shape).toEqual([8, 4]);
    expect(tensors['base_model.model.model.layers.1.mlp.gate_proj.lora_B.weight'].shape).toEqual([24, 4]);
    const back = loadModel(out);
    expect(back.adapters).not.toBeNull();
    expect(maxDiff(logits(back), want)).toBe(0);
    for (const x of [base, m, back]) x.dispose();
  });

  it("loads an adapter written in PEFT's layout by hand: merged weight = W + (alpha / r) B A", () => {
    // The fixture's arithmetic in plain JS, independent of lora.ts: one adapter on layer 0's q_proj.
    const root = mkdtempSync(join(tmpdir(), 'r1-peft-')),
      baseDir = join(root, 'base'),
      out = join(root, 'adapter');
    const base = Transformer.init(LLAMA, 3);
    saveModel(baseDir, base);
    mkdirSync(out);
    const r = 2,
      alpha = 6,
      C = 16,
      Q = 16; // q_proj: [H * D, C] = [16, 16]
    const A = Float32Array.from({ length: r * C }, (_, i) => Math.sin(i) * 0.3);
    const B = Float32Array.from({ length: Q * r }, (_, i) => Math.cos(i) * 0.3);
    writeSafetensors(join(out, 'adapter_model.safetensors'), {
      'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight': { shape: [r, C], data: A },
      'base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight': { shape: [Q, r], data: B },
    });
    writeFileSync(
      join(out, 'adapter_config.json'),
      JSON.stringify({ peft_type: 'LORA', r, lora_alpha: alpha, target_modules: ['q_proj'], base_model_name_or_path: '../base' }),
    );
    const adapted = loadModel(out);
    // The same model with W_q + (alpha / r) B A written into the base checkpoint's q_proj.
    const hf = readSafetensors(join(baseDir, 'model.safetensors')).tensors;
    const wq = hf['model.layers.0.self_attn.q_proj.weight'].data; // [out 16, in 16]
    for (let o = 0; o < Q; o++)
      for (let i = 0; i < C; i++) {
        let s = 0;
        for (let k = 0; k < r; k++) s += B[o * r + k] * A[k * C + i];
        wq[o * C + i] += (alpha / r) * s;
      }
    writeSafetensors(join(baseDir, 'model.safetensors'), hf);
    const merged = loadModel(baseDir);
    expect(maxDiff(logits(adapted), logits(merged))).toBeLessThan(1e-5);
    for (const x of [base, adapted, merged]) x.dispose();
  });

  it('a broken adapter folder is an error naming the file and the tensor', () => {
    const root = mkdtempSync(join(tmpdir(), 'r1-peft-bad-')),
      baseDir = join(root, 'base'),
      out = join(root, 'adapter');
    const base = Transformer.init(LLAMA, 3);
    saveModel(baseDir, base);
    base.dispose();
    mkdirSync(out);
    const write = (tensors: Parameters<typeof writeSafetensors>[1], cfg: Record<string, unknown> = {}) => {
      writeSafetensors(join(out, 'adapter_model.safetensors'), tensors);
      writeFileSync(
        join(out, 'adapter_config.json'),
        JSON.stringify({ peft_type: 'LORA', r: 2, lora_alpha: 4, target_modules: ['q_proj'], base_model_name_or_path: baseDir, ...cfg }),
      );
    };
    const a = { shape: [2, 16], data: new Float32Array(32) },
      b = { shape: [16, 2], data: new Float32Array(32) };
    write({
      'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight': { shape: [3, 16], data: new Float32Array(48) },
      'base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight': b,
    });
    expect(() => loadModel(out)).toThrow(/adapter_model\.safetensors: .*q_proj\.lora_A\.weight has shape \[3,16\], expected \[2, 16\]/);
    write({ 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight': a });
    expect(() => loadModel(out)).toThrow(/q_proj\.lora_A\.weight has no .*lora_B\.weight/);
    write({
      'base_model.model.model.layers.9.self_attn.q_proj.lora_A.weight': a,
      'base_model.model.model.layers.9.self_attn.q_proj.lora_B.weight': b,
    });
    expect(() => loadModel(out)).toThrow(/adapts model\.layers\.9\.self_attn\.q_proj, which this base model does not have/);
    write(
      {
        'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight': a,
        'base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight': b,
      },
      { peft_type: 'IA3' },
    );
    expect(() => loadModel(out)).toThrow(/adapter_config\.json: peft_type "IA3"/);
  });
});
