// The two paths of matrix products on the wasm backend, against each other: the machine's OpenBLAS
// (through koffi, on the heap) and XNNPACK. Products with every transpose flag and batch layout,
// their gradients, and a whole training step must agree within float32 rounding; worker threads
// must take the path the main thread chose. Skipped, with one line, where the library is absent
// (apt-get install libopenblas0-pthread); failed then when CI=true.
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, matmulEngine } from '../src/engine/backend.ts';
import { loadBlas, MATMUL_ENV, resolveMatmul } from '../src/engine/kernels/blas.ts';
import { attention, matmulPath, setMatmulPath } from '../src/engine/kernels/index.ts';
import { Rng } from '../src/engine/rng.ts';
import { TINY } from '../src/model/config.ts';
import { Transformer } from '../src/model/transformer.ts';
import { lmLoss, type LmBatch } from '../src/train/lm-loss.ts';
import { disposeGrads, lossAndGrads } from '../src/train/step.ts';

const blas = loadBlas();
if (!blas.loaded) {
  if (process.env.CI === 'true') throw new Error(`CI needs the BLAS path: ${blas.reason}`);
  console.log(`skipping the BLAS tests: ${blas.reason}`);
}

/** Results of fn on one path, copied out of the heap. */
function onPath(path: 'blas' | 'xnnpack', fn: () => tf.Tensor[]): Float32Array[] {
  setMatmulPath(path);
  return tf.tidy(fn).map((t) => {
    const a = Float32Array.from(t.dataSync() as Float32Array);
    t.dispose();
    return a;
  });
}

/** Largest difference relative to the result's scale, per output. */
function worstRelative(got: Float32Array[], want: Float32Array[]): number[] {
  expect(got.length).toBe(want.length);
  return want.map((w, i) => {
    expect(got[i].length).toBe(w.length);
    const scale = Math.max(1e-3, ...w.map(Math.abs));
    let worst = 0;
    for (let j = 0; j < w.length; j++) worst = Math.max(worst, Math.abs(got[i][j] - w[j]));
    return worst / scale;
  });
}

const randn = (rng: Rng, n: number) => Float32Array.from({ length: n }, () => rng.normal());

describe.runIf(blas.loaded)('matrix products: OpenBLAS against XNNPACK', () => {
  beforeAll(async () => {
    await initBackend('wasm');
  });
  afterAll(() => setMatmulPath(resolveMatmul()));

  it('takes the BLAS path by default where the library loads, and says so', () => {
    setMatmulPath(resolveMatmul('auto'));
    expect(matmulPath()).toBe('blas');
    expect(matmulEngine()).toMatch(/^blas \(.*libopenblas.*, 1 thread\)$/);
    expect(resolveMatmul('xnnpack')).toBe('xnnpack');
    expect(() => resolveMatmul('mkl')).toThrow(/R1_MATMUL=mkl.*valid: auto, blas, xnnpack/);
  });

  const cases: [number[], number[]][] = [
    [
      [13, 9],
      [9, 11],
    ],
    [
      [1, 13, 9],
      [9, 11],
    ],
    [
      [5, 13, 9],
      [9, 11],
    ],
    [
      [13, 9],
      [5, 9, 11],
    ],
    [
      [5, 13, 9],
      [5, 9, 11],
    ],
    [
      [2, 3, 6, 32],
      [2, 3, 32, 40],
    ],
    [
      [64, 128],
      [128, 352],
    ],
  ];
  for (const [sa, sb] of cases) {
    for (const [ta, tb] of [
      [false, false],
      [true, false],
      [false, true],
      [true, true],
    ]) {
      it(`${JSON.stringify(sa)} x ${JSON.stringify(sb)} transposeA=${ta} transposeB=${tb}: values and gradients agree`, () => {
        const rng = new Rng(sa.length * 31 + sb[sb.length - 1] + (ta ? 1 : 0) + (tb ? 2 : 0));
        const swap = (s: number[], t: boolean) => (t ? [...s.slice(0, -2), s[s.length - 1], s[s.length - 2]] : s);
        const shA = swap(sa, ta),
          shB = swap(sb, tb);
        const a = randn(rng, tf.util.sizeFromShape(shA)),
          b = randn(rng, tf.util.sizeFromShape(shB));
        const run = () => {
          const A = tf.tensor(a, shA),
            B = tf.tensor(b, shB);
          const out = tf.matMul(A, B, ta, tb);
          if (shA.length !== shB.length) return [out]; // TF.js's gradient cannot reduce a broadcast batch here
          const dy = tf.randomNormal(out.shape, 0, 1, 'float32', 7);
          const [dA, dB] = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(tf.matMul(x, y, ta, tb), dy)))([A, B]);
          return [out, dA, dB];
        };
        const viaBlas = onPath('blas', run),
          viaXnnpack = onPath('xnnpack', run);
        for (const w of worstRelative(viaBlas, viaXnnpack)) expect(w).toBeLessThan(1e-5);
      });
    }
  }

  // Causal attention's products go to sgemm per head on the BLAS path (S > T: queries see a prefix).
  for (const [B, T, S, H, Hkv, D] of [
    [2, 7, 7, 4, 2, 8],
    [1, 5, 9, 3, 1, 16],
    [2, 33, 40, 2, 2, 4],
  ]) {
    it(`attention B=${B} T=${T} S=${S} H=${H} Hkv=${Hkv} D=${D}: output and gradients agree`, () => {
      const rng = new Rng(B * 1000 + T * 10 + S);
      const q = randn(rng, B * T * H * D),
        k = randn(rng, B * S * Hkv * D),
        v = randn(rng, B * S * Hkv * D),
        dy = randn(rng, B * T * H * D);
      const run = () => {
        const Q = tf.tensor4d(q, [B, T, H, D]),
          K = tf.tensor4d(k, [B, S, Hkv, D]),
          V = tf.tensor4d(v, [B, S, Hkv, D]),
          DY = tf.tensor4d(dy, [B, T, H, D]);
        const f = (x: tf.Tensor, y: tf.Tensor, z: tf.Tensor) =>
          tf.sum(tf.mul(attention(x as tf.Tensor4D, y as tf.Tensor4D, z as tf.Tensor4D, 0.4), DY));
        return [attention(Q, K, V, 0.4), ...tf.grads(f)([Q, K, V])];
      };
      const viaBlas = onPath('blas', run),
        viaXnnpack = onPath('xnnpack', run);
      for (const w of worstRelative(viaBlas, viaXnnpack)) expect(w).toBeLessThan(1e-5);
    });
  }

  it('an empty inner dimension gives zeros, an empty output an empty tensor', () => {
    const [zeros, empty] = onPath('blas', () => [tf.matMul(tf.ones([3, 0]), tf.ones([0, 4])), tf.matMul(tf.ones([0, 5]), tf.ones([5, 2]))]);
    expect(Array.from(zeros)).toEqual(new Array(12).fill(0));
    expect(empty.length).toBe(0);
  });

  it('a training step of the tiny model (loss and every gradient) agrees between the paths', () => {
    const rng = new Rng(3);
    const B = 2,
      T = 32,
      V = TINY.vocab_size;
    const batch: LmBatch = {
      inputs: Int32Array.from({ length: B * T }, () => rng.int(V)),
      targets: Int32Array.from({ length: B * T }, () => rng.int(V)),
      weights: null,
      B,
      T,
      normaliser: B * T,
    };
    const model = Transformer.init({ ...TINY, max_position_embeddings: T }, 5);
    const step = (path: 'blas' | 'xnnpack') => {
      setMatmulPath(path);
      const { loss, grads } = lossAndGrads(model.params, () => lmLoss(model, batch));
      const names = Object.keys(grads).sort();
      const arrays = names.map((n) => Float32Array.from(grads[n].dataSync() as Float32Array));
      disposeGrads(grads);
      return { loss, names, arrays };
    };
    const viaBlas = step('blas'),
      viaXnnpack = step('xnnpack');
    model.dispose();
    expect(viaBlas.names).toEqual(viaXnnpack.names);
    expect(Math.abs(viaBlas.loss - viaXnnpack.loss)).toBeLessThan(1e-5 * Math.abs(viaXnnpack.loss));
    worstRelative(viaBlas.arrays, viaXnnpack.arrays).forEach((w, i) => expect(w, viaBlas.names[i]).toBeLessThan(1e-4));
  });

  it('the tied output layer reads the embedding transposed in place on BLAS (no copy) and equals the XNNPACK path, values and gradients', async () => {
    const model = Transformer.init({ ...TINY, tie_word_embeddings: true }, 11);
    const rng = new Rng(12);
    const hidden = tf.tensor2d(randn(rng, 6 * TINY.hidden_size), [6, TINY.hidden_size]);
    const head = (path: 'blas' | 'xnnpack') =>
      onPath(path, () => {
        const { value, grads } = tf.variableGrads(
          () => tf.sum(tf.mul(model.logits(hidden), tf.range(0, TINY.vocab_size)) as tf.Scalar),
          [model.params.embed],
        );
        return [value, grads[model.params.embed.name]];
      });
    const viaBlas = head('blas'),
      viaXnnpack = head('xnnpack');
    worstRelative(viaBlas, viaXnnpack).forEach((w) => expect(w).toBeLessThan(1e-5));
    // What each path runs: BLAS a transposeB product alone, XNNPACK an explicit transpose first.
    const kernelsOn = async (path: 'blas' | 'xnnpack') => {
      setMatmulPath(path);
      const info = await tf.profile(() => model.logits(hidden));
      if (info.result instanceof tf.Tensor) info.result.dispose();
      return info.kernels.map((k) => k.name);
    };
    expect(await kernelsOn('blas')).not.toContain('Transpose');
    expect(await kernelsOn('xnnpack')).toContain('Transpose');
    hidden.dispose();
    model.dispose();
  });

  it('worker threads take the path of the environment they start from', async () => {
    const backend = fileURLToPath(new URL('../src/engine/backend.ts', import.meta.url));
    const engineIn = (env: NodeJS.ProcessEnv) =>
      new Promise<string>((resolve, reject) => {
        const code = `const { parentPort } = require('node:worker_threads');
        import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(backend)}); })
          .then(async (m) => { await m.initBackend('wasm'); parentPort.postMessage(m.matmulEngine()); })
          .catch((e) => parentPort.postMessage('error: ' + e.message));`;
        const w = new Worker(code, { eval: true, env });
        w.once('message', (m: string) => void w.terminate().then(() => resolve(m)));
        w.once('error', reject);
      });
    expect(await engineIn({ ...process.env, [MATMUL_ENV]: 'auto' })).toMatch(/^blas \(/);
    expect(await engineIn({ ...process.env, [MATMUL_ENV]: 'xnnpack' })).toBe('xnnpack');
  }, 60_000);
});
