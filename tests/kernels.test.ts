// The wasm kernel patches against the plain JS `cpu` backend on random inputs: values and gradients.
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/engine/backend.ts';
import { attention, cachedAttention, composedAttention, KVCache, rmsNorm, rope, swiglu } from '../src/engine/kernels/index.ts';
import { Rng } from '../src/engine/rng.ts';

type Arrays = Float32Array[];

function randn(rng: Rng, n: number): Float32Array {
  return Float32Array.from({ length: n }, () => rng.normal());
}

/** Runs fn on a backend with fresh tensors made from the same arrays; returns copies of the results. */
async function on(backend: string, fn: () => tf.Tensor[]): Promise<Arrays> {
  await initBackend(backend);
  return tf.tidy(fn).map((t) => {
    const a = t.dataSync() as Float32Array;
    t.dispose();
    return Float32Array.from(a);
  });
}

/** Same computation on cpu and wasm; results must agree to `tol` relative to each result's scale. */
async function agree(fn: () => tf.Tensor[], tol = 1e-4): Promise<void> {
  const want = await on('cpu', fn);
  const got = await on('wasm', fn);
  expect(got.length).toBe(want.length);
  want.forEach((w, i) => {
    expect(got[i].length).toBe(w.length);
    const scale = Math.max(1e-3, ...w.map(Math.abs));
    let worst = 0;
    for (let j = 0; j < w.length; j++) worst = Math.max(worst, Math.abs(got[i][j] - w[j]));
    expect(worst / scale, `output ${i}`).toBeLessThan(tol);
  });
}

const tensor = (data: Float32Array, shape: number[]) => tf.tensor(data, shape, 'float32');

beforeAll(async () => {
  await initBackend('wasm');
});

describe('wasm kernel patches', () => {
  it('registers the kernels once, idempotently', async () => {
    await initBackend('wasm');
    const { installWasmPatches } = await import('../src/engine/kernels/index.ts');
    const before = tf.getKernel('BatchMatMul', 'wasm');
    installWasmPatches();
    installWasmPatches();
    expect(tf.getKernel('BatchMatMul', 'wasm')).toBe(before);
    for (const k of ['UnsortedSegmentSum', 'R1Attention', 'R1AttentionGrad', 'R1CachedAttention']) {
      expect(tf.getKernel(k, 'wasm'), k).toBeDefined();
    }
  });

  it('clone shares data by reference count: values survive disposing either side, memory is freed once', async () => {
    await initBackend('wasm');
    const before = tf.memory().numDataBuffers;
    const a = tf.tensor1d([1, 2, 3]);
    const b = tf.clone(a);
    expect(tf.memory().numDataBuffers - before).toBe(1); // one buffer for both
    a.dispose();
    expect(Array.from(b.dataSync())).toEqual([1, 2, 3]);
    const c = tf.add(b, 1);
    b.dispose();
    expect(Array.from(c.dataSync())).toEqual([2, 3, 4]);
    c.dispose();
    expect(tf.memory().numDataBuffers).toBe(before);
  });

  it('slice matches cpu for float32, int32 and bool boxes of every rank', async () => {
    const rng = new Rng(11);
    const x = randn(rng, 3 * 4 * 5 * 6 * 2);
    const boxes: [number[], number[], number[]][] = [
      [[7], [2], [4]],
      [
        [5, 8],
        [1, 2],
        [3, 5],
      ],
      [
        [5, 8],
        [0, 0],
        [5, 3],
      ],
      [
        [4, 6, 8],
        [1, 0, 3],
        [2, 6, 1],
      ], // a strided single column
      [
        [4, 6, 8],
        [0, 0, 0],
        [4, 6, 8],
      ],
      [
        [3, 4, 5, 6],
        [1, 1, 0, 2],
        [2, 3, 5, 4],
      ],
      [
        [3, 4, 5, 6, 2],
        [0, 1, 1, 2, 0],
        [3, 2, 3, 3, 2],
      ],
      [
        [3, 4, 5, 6, 2],
        [1, 1, 1, 1, 1],
        [2, 2, 2, 2, 1],
      ], // five strided dims: the original kernel
    ];
    await agree(() =>
      boxes.flatMap(([sh, b, sz]) => {
        const t = tensor(x.subarray(0, tf.util.sizeFromShape(sh)), sh);
        return [
          tf.slice(t, b, sz),
          tf.cast(tf.slice(tf.cast(t, 'int32'), b, sz), 'float32'),
          tf.cast(tf.slice(tf.greater(t, 0), b, sz), 'float32'),
        ];
      }),
    );
  });

  it('split (SplitV) matches cpu along each axis', async () => {
    const x = randn(new Rng(12), 4 * 6 * 10);
    await agree(() => {
      const t = tensor(x, [4, 6, 10]);
      return [...tf.split(t, [1, 3], 0), ...tf.split(t, [2, 2, 2], 1), ...tf.split(t, [7, 3], 2), ...tf.split(t, 2, 2)];
    });
  });

  it('gather matches cpu on each axis, with batch dims and int32 values, and rejects bad indices', async () => {
    const rng = new Rng(13);
    const x = randn(rng, 3 * 5 * 4);
    const ids = Int32Array.from([4, 0, 2, 2]),
      small = Int32Array.from([1, 0, 3]);
    await agree(() => {
      const t = tensor(x, [3, 5, 4]);
      return [
        tf.gather(
          t,
          tf.tensor1d(
            ids.map((i) => i % 3),
            'int32',
          ),
          0,
        ),
        tf.gather(t, tf.tensor2d(ids, [2, 2], 'int32'), 1),
        tf.gather(t, tf.tensor1d(small, 'int32'), 2),
        tf.cast(tf.gather(tf.cast(t, 'int32'), tf.tensor1d(ids, 'int32'), 1), 'float32'),
        tf.gather(
          t,
          tf.tensor2d(
            [
              [1, 0],
              [4, 4],
              [2, 3],
            ],
            [3, 2],
            'int32',
          ),
          1,
          1,
        ), // batchDims 1
      ];
    });
    expect(() => tf.gather(tf.ones([3, 2]), tf.tensor1d([3], 'int32'))).toThrow(/index value 3/);
  });

  it('transpose matches cpu (last two dims swapped: the fast path, with leftover rows and columns; others)', async () => {
    const x = randn(new Rng(14), 2 * 3 * 9 * 7);
    await agree(() => {
      const t = tensor(x, [2, 3, 9, 7]);
      return [
        tf.transpose(t, [0, 1, 3, 2]),
        tf.transpose(tf.reshape(t, [54, 7])),
        tf.transpose(tf.slice(tf.reshape(t, [6, 63]), [0, 0], [4, 8])),
        tf.cast(tf.transpose(tf.cast(tf.reshape(t, [54, 7]), 'int32')), 'float32'),
        tf.transpose(t, [2, 0, 3, 1]),
      ];
    });
  });

  it('gather stays right when allocating its output grows the heap', async () => {
    await initBackend('wasm');
    const heap = () => (tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm.HEAPU8.byteLength;
    const before = heap(),
      rows = Math.ceil((before + (16 << 20)) / 64); // output rows of 16 floats outgrow the heap
    const ids = tf.tensor1d(
      Int32Array.from({ length: rows }, (_, i) => i % 3),
      'int32',
    );
    const out = tf.gather(
      tf.tensor2d(
        Float32Array.from({ length: 48 }, (_, i) => i),
        [3, 16],
      ),
      ids,
    );
    expect(heap()).toBeGreaterThan(before);
    const last = tf.slice(out, [rows - 1, 0], [1, 16]).dataSync();
    expect(Array.from(last)).toEqual(Array.from({ length: 16 }, (_, i) => ((rows - 1) % 3) * 16 + i));
    tf.dispose([ids, out]);
  });

  it('UnsortedSegmentSum matches cpu, dropping out-of-range ids', async () => {
    const rng = new Rng(1);
    const x = randn(rng, 7 * 5),
      ids = Int32Array.from([0, 3, 3, -1, 2, 9, 0]);
    await agree(() => [tf.unsortedSegmentSum(tensor(x, [7, 5]), tf.tensor1d(ids, 'int32'), 4)]);
  });

  it('the gradient of gather (an embedding) matches cpu', async () => {
    const rng = new Rng(2);
    const table = randn(rng, 11 * 6),
      w = randn(rng, 3 * 4 * 6);
    const ids = Int32Array.from({ length: 12 }, () => rng.int(11));
    await agree(() => {
      const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.gather(t, tf.tensor2d(ids, [3, 4], 'int32')), tensor(w, [3, 4, 6]))));
      return [g(tensor(table, [11, 6]))];
    });
  });

  // Every transpose combination, for 2-D, batch-1 rank-3, batch broadcast on either side, a real
  // batch (rank 4), and odd sizes that exercise the kernel's leftover rows and columns.
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
      [4, 16, 16],
      [4, 16, 16],
    ],
  ];
  for (const [sa, sb] of cases) {
    for (const [ta, tb] of [
      [false, false],
      [true, false],
      [false, true],
      [true, true],
    ]) {
      it(`matMul ${JSON.stringify(sa)} x ${JSON.stringify(sb)} transposeA=${ta} transposeB=${tb} matches cpu, with gradients`, async () => {
        const rng = new Rng(sa.length * 100 + sb[sb.length - 1] + (ta ? 1 : 0) + (tb ? 2 : 0));
        const swap = (s: number[], t: boolean) => (t ? [...s.slice(0, -2), s[s.length - 1], s[s.length - 2]] : s);
        const shA = swap(sa, ta),
          shB = swap(sb, tb);
        const a = randn(rng, tf.util.sizeFromShape(shA)),
          b = randn(rng, tf.util.sizeFromShape(shB));
        await agree(() => {
          const A = tensor(a, shA),
            B = tensor(b, shB);
          const out = tf.matMul(A, B, ta, tb);
          const dy = tf.randomNormal(out.shape, 0, 1, 'float32', 7);
          // TF.js's own matMul gradient cannot reduce a broadcast batch over a lower-rank operand.
          if (shA.length !== shB.length) return [out];
          const [dA, dB] = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(tf.matMul(x, y, ta, tb), dy)))([A, B]);
          return [out, dA, dB];
        });
      });
    }
  }
});

describe('attention kernels', () => {
  // [B, T, S, H, Hkv, D]: GQA, plain MHA, T < S (a continued sequence), odd sizes for the tiles'
  // leftovers; T < 8 takes the row-by-row forward (decoding), T >= 8 the tiled one.
  const shapes = [
    [2, 9, 9, 4, 2, 8],
    [1, 7, 7, 2, 2, 4],
    [1, 8, 8, 2, 1, 4],
    [2, 5, 11, 4, 1, 12],
    [2, 10, 13, 4, 2, 12],
    [3, 16, 16, 4, 2, 32],
    [2, 3, 10, 4, 2, 64], // row-by-row with q and the output held in registers, 32 floats at a time
    [1, 1, 7, 2, 1, 32],
  ];
  for (const [B, T, S, H, Hkv, D] of shapes) {
    it(`forward and gradients match cpu for B=${B} T=${T} S=${S} H=${H} Hkv=${Hkv} D=${D}`, async () => {
      const rng = new Rng(B * 1000 + T * 10 + S);
      const q = randn(rng, B * T * H * D),
        k = randn(rng, B * S * Hkv * D),
        v = randn(rng, B * S * Hkv * D);
      const w = randn(rng, B * T * H * D);
      const scale = 1 / Math.sqrt(D);
      await agree(() => {
        const Q = tensor(q, [B, T, H, D]) as tf.Tensor4D,
          K = tensor(k, [B, S, Hkv, D]) as tf.Tensor4D;
        const V = tensor(v, [B, S, Hkv, D]) as tf.Tensor4D,
          W = tensor(w, [B, T, H, D]);
        const loss = (x: tf.Tensor, y: tf.Tensor, z: tf.Tensor) =>
          tf.sum(tf.mul(attention(x as tf.Tensor4D, y as tf.Tensor4D, z as tf.Tensor4D, scale), W));
        return [attention(Q, K, V, scale), ...tf.grads(loss)([Q, K, V])];
      });
    });
  }

  it('runs as one fused op forward and one backward on wasm', async () => {
    await initBackend('wasm');
    const x = tf.ones([1, 8, 2, 8]) as tf.Tensor4D;
    const info = await tf.profile(() => tf.grad((a: tf.Tensor) => tf.sum(attention(a as tf.Tensor4D, x, x, 0.5)))(x));
    const names = info.kernels.map((k) => k.name);
    expect(names.filter((n) => n === 'R1Attention').length).toBe(1);
    expect(names.filter((n) => n === 'R1AttentionGrad').length).toBe(1);
    expect(names).not.toContain('BatchMatMul');
  });

  it('is causal: a query ignores keys after its position', async () => {
    await initBackend('wasm');
    const rng = new Rng(5);
    const [B, T, H, D] = [1, 6, 2, 8];
    const q = tensor(randn(rng, B * T * H * D), [B, T, H, D]) as tf.Tensor4D;
    const k = randn(rng, B * T * H * D),
      v = randn(rng, B * T * H * D);
    const k2 = k.slice(),
      v2 = v.slice();
    for (let i = 3 * H * D; i < k2.length; i++) k2[i] = v2[i] = 100; // change positions 3..5
    const a = attention(q, tensor(k, [B, T, H, D]) as tf.Tensor4D, tensor(v, [B, T, H, D]) as tf.Tensor4D, 0.3).arraySync();
    const b = attention(q, tensor(k2, [B, T, H, D]) as tf.Tensor4D, tensor(v2, [B, T, H, D]) as tf.Tensor4D, 0.3).arraySync();
    expect(b[0].slice(0, 3)).toEqual(a[0].slice(0, 3));
    expect(b[0][3]).not.toEqual(a[0][3]);
  });

  it('cached decoding equals full attention over the same sequence, across a capacity growth', async () => {
    const [B, T0, steps, H, Hkv, D] = [3, 9, 9, 4, 2, 8];
    const S = T0 + steps,
      rng = new Rng(9);
    const q = randn(rng, B * S * H * D),
      k = randn(rng, B * S * Hkv * D),
      v = randn(rng, B * S * Hkv * D);
    const run = () => {
      const Q = tensor(q, [B, S, H, D]) as tf.Tensor4D,
        K = tensor(k, [B, S, Hkv, D]) as tf.Tensor4D,
        V = tensor(v, [B, S, Hkv, D]) as tf.Tensor4D;
      const part = (x: tf.Tensor4D, t0: number, n: number) => tf.slice(x, [0, t0, 0, 0], [B, n, x.shape[2], D]) as tf.Tensor4D;
      const cache = new KVCache(2, 4); // capacity 4: grows to 16 for the prompt, then to 32 by copying
      const outs: tf.Tensor[] = [];
      for (const layer of [0, 1]) outs.push(cachedAttention(part(Q, 0, T0), part(K, 0, T0), part(V, 0, T0), cache, layer, 0.35));
      for (let t = T0; t < S; t++) {
        for (const layer of [0, 1]) outs.push(cachedAttention(part(Q, t, 1), part(K, t, 1), part(V, t, 1), cache, layer, 0.35));
      }
      expect(cache.length).toBe(S);
      cache.dispose();
      // Layer 0's outputs, stitched along time, against one full pass.
      const stitched = tf.concat(
        outs.filter((_, i) => i % 2 === 0),
        1,
      );
      return [
        stitched,
        attention(Q, K, V, 0.35),
        tf.concat(
          outs.filter((_, i) => i % 2 === 1),
          1,
        ),
      ];
    };
    const [cached, full, layer1] = await on('wasm', run);
    for (let i = 0; i < full.length; i++) {
      expect(Math.abs(cached[i] - full[i])).toBeLessThan(1e-5);
      expect(layer1[i]).toBe(cached[i]);
    }
    await agree(run);
  });

  it('KVCache: reset reuses buffers, dispose frees them, and no tensors leak per step', async () => {
    await initBackend('wasm');
    const [B, H, D] = [2, 2, 8];
    const x = () => tf.ones([B, 1, H, D]) as tf.Tensor4D;
    const cache = new KVCache(1, 4);
    const step = () => tf.tidy(() => void cachedAttention(x(), x(), x(), cache, 0, 1));
    step();
    const live = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) step(); // within capacity: nothing new allocated
    expect(tf.memory().numTensors).toBe(live);
    cache.reset();
    expect(cache.length).toBe(0);
    step();
    expect(cache.length).toBe(1);
    expect(tf.memory().numTensors).toBe(live);
    cache.dispose();
    expect(tf.memory().numTensors).toBe(live - 2);
  });
});

describe('composed attention (cpu, webgpu): gradient written out', () => {
  /** The same maths left to autodiff: the readable reference. */
  function autodiffAttention(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, scale: number, mask: tf.Tensor4D): tf.Tensor4D {
    const rep = q.shape[2] / k.shape[2];
    const kvHead = tf.tensor1d(
      Array.from({ length: q.shape[2] }, (_, h) => Math.floor(h / rep)),
      'int32',
    ); // query head h reads h / rep
    const heads = (x: tf.Tensor) => tf.transpose(x, [0, 2, 1, 3]);
    const kk = heads(tf.gather(k, kvHead, 2)),
      vv = heads(tf.gather(v, kvHead, 2));
    const p = tf.softmax(tf.add(tf.mul(tf.matMul(heads(q), kk, false, true), scale), mask));
    return tf.transpose(tf.matMul(p, vv), [0, 2, 1, 3]) as tf.Tensor4D;
  }

  it('equals autodiff of the same maths with a mask, grouped heads and a value head size of its own, and keeps less', async () => {
    await initBackend('cpu');
    const [B, T, H, Hkv, D, Dv] = [2, 12, 4, 2, 8, 6];
    const rng = new Rng(41);
    const q = tensor(randn(rng, B * T * H * D), [B, T, H, D]) as tf.Tensor4D;
    const k = tensor(randn(rng, B * T * Hkv * D), [B, T, Hkv, D]) as tf.Tensor4D;
    const v = tensor(randn(rng, B * T * Hkv * Dv), [B, T, Hkv, Dv]) as tf.Tensor4D;
    const w = tensor(randn(rng, B * T * H * Dv), [B, T, H, Dv]);
    // Two documents packed in each row: causal within each, none across.
    const m = new Float32Array(B * T * T).fill(-1e9);
    for (let b = 0; b < B; b++) for (let i = 0; i < T; i++) for (let j = i < 5 ? 0 : 5; j <= i; j++) m[(b * T + i) * T + j] = 0;
    const mask = tf.tensor4d(m, [B, 1, T, T]);
    const lossOf = (f: typeof autodiffAttention) => (x: tf.Tensor, y: tf.Tensor, z: tf.Tensor) =>
      tf.sum(tf.mul(f(x as tf.Tensor4D, y as tf.Tensor4D, z as tf.Tensor4D, 0.3, mask), w));
    const got = tf.grads(lossOf(composedAttention))([q, k, v]);
    const want = tf.grads(lossOf(autodiffAttention))([q, k, v]);
    expect(composedAttention(q, k, v, 0.3, mask).shape).toEqual([B, T, H, Dv]);
    for (let i = 0; i < 3; i++) {
      const a = got[i].dataSync() as Float32Array,
        b = want[i].dataSync() as Float32Array;
      expect(got[i].shape).toEqual(want[i].shape);
      const worst = a.reduce((e, x, j) => Math.max(e, Math.abs(x - b[j])), 0);
      expect(worst).toBeLessThan(1e-5);
    }
    // The backward's peak: the written-out gradient holds fewer [B, H, T, T] tensors at once.
    const peak = async (f: typeof autodiffAttention) => (await tf.profile(() => tf.grads(lossOf(f))([q, k, v]))).peakBytes;
    const probs = B * H * T * T * 4;
    expect(await peak(autodiffAttention)).toBeGreaterThan((await peak(composedAttention)) + 2 * probs);
  });
});

describe('fused RMSNorm, rotary embedding and SwiGLU', () => {
  it('exp (SIMD on wasm) matches cpu to float32 rounding over the whole range, with Infinity, 0, subnormals and NaN at the ends', async () => {
    const rng = new Rng(11);
    const edges = [-Infinity, -1e9, -200, -103, -100, -88, -87.3, -50, -1e-7, 0, 1e-7, 1, 50, 88.3, 88.5, 88.72, 88.8, 1e9, Infinity];
    const xs = Float32Array.from([...edges, ...Array.from({ length: 4001 }, () => (rng.next() - 0.5) * 180)]);
    const want = await on('cpu', () => [tf.exp(tf.tensor1d(xs))]);
    const got = await on('wasm', () => [tf.exp(tf.tensor1d(xs))]);
    for (let i = 0; i < xs.length; i++) {
      const w = want[0][i],
        g = got[0][i];
      if (!Number.isFinite(w) || w === 0) expect(g, `exp(${xs[i]})`).toBe(w);
      else expect(Math.abs(g - w) / w, `exp(${xs[i]})`).toBeLessThan(w < 1.2e-38 ? 1e-3 : 1e-6); // subnormals keep fewer bits
    }
    const [nan] = await on('wasm', () => [tf.exp(tf.tensor1d([NaN]))]);
    expect(nan[0]).toBeNaN();
  });

  for (const [N, C] of [
    [6, 16],
    [5, 13],
  ]) {
    it(`rmsNorm [${N}, ${C}] and its gradients match cpu`, async () => {
      const rng = new Rng(N * C);
      const x = randn(rng, N * C),
        g = randn(rng, C),
        w = randn(rng, N * C);
      await agree(() => {
        const X = tensor(x, [N, C]),
          G = tensor(g, [C]),
          W = tensor(w, [N, C]);
        const f = (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(rmsNorm(a, b, 1e-5), W));
        return [rmsNorm(X, G, 1e-5), ...tf.grads(f)([X, G])];
      });
    });
  }

  it('rope and its gradient match cpu (cos/sin given as [1, T, 1, D])', async () => {
    const [B, T, H, D] = [2, 5, 3, 16],
      rng = new Rng(3);
    const x = randn(rng, B * T * H * D),
      w = randn(rng, B * T * H * D);
    const c = randn(rng, T * D),
      s = randn(rng, T * D); // not real tables: halves differ, which the kernel must respect
    await agree(() => {
      const X = tensor(x, [B, T, H, D]) as tf.Tensor4D,
        W = tensor(w, [B, T, H, D]);
      const cos = tensor(c, [1, T, 1, D]),
        sin = tensor(s, [1, T, 1, D]);
      const f = (a: tf.Tensor) => tf.sum(tf.mul(rope(a as tf.Tensor4D, cos, sin), W));
      return [rope(X, cos, sin), tf.grad(f)(X)];
    });
  });

  it('swiglu and its gradient match cpu, including large gate values', async () => {
    const [N, F] = [5, 12],
      rng = new Rng(4);
    const x = randn(rng, N * 2 * F).map((v, i) => (i % 7 === 0 ? v * 30 : v)),
      w = randn(rng, N * F);
    await agree(() => {
      const X = tensor(x, [N, 2 * F]) as tf.Tensor2D,
        W = tensor(w, [N, F]);
      return [swiglu(X), tf.grad((a: tf.Tensor) => tf.sum(tf.mul(swiglu(a as tf.Tensor2D), W)))(X)];
    });
  });

  it('run as single fused ops on wasm', async () => {
    await initBackend('wasm');
    const x = tf.ones([2, 3, 1, 8]) as tf.Tensor4D;
    const info = await tf.profile(() => [
      rmsNorm(x, tf.ones([8]), 1e-5),
      rope(x, tf.ones([3, 8]), tf.zeros([3, 8])),
      swiglu(tf.ones([2, 8])),
    ]);
    const names = info.kernels.map((k) => k.name);
    expect(names).toContain('R1RmsNorm');
    expect(names).toContain('R1Rope');
    expect(names).toContain('R1SwiGLU');
    expect(names).not.toContain('Rsqrt');
    expect(names).not.toContain('Sigmoid');
  });
});
