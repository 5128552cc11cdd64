// `r1 bench kernels`: the wasm kernel patches at the reference model's shapes (batch 16 x 128,
// 4 heads, 2 KV heads, head dim 32; decoding batch 64), one JSON line per kernel with ms per call
// and GFLOP/s, each on the matrix-product path in use (`matmul`); where the machine's BLAS loads,
// the products and attention run on both paths back to back, for their ratio. Numbers on a shared
// 2-core machine are noisy: compare runs side by side.
import * as tf from '@tensorflow/tfjs-core';
import type { BenchOptions } from '../commands/bench.ts';
import { initBackend } from '../../engine/backend.ts';
import { attention, cachedAttention, composedAttention, KVCache, matmulPath, setMatmulPath } from '../../engine/kernels/index.ts';

/** Median ms of `reps` calls of f (each call's tensors disposed). */
function time(f: () => tf.Tensor | tf.Tensor[], reps: number): number {
  const once = () => {
    const t0 = performance.now();
    tf.dispose(tf.tidy(f));
    return performance.now() - t0;
  };
  once();
  const ms = Array.from({ length: reps }, once).sort((a, b) => a - b);
  return ms[reps >> 1];
}

const line = (kernel: string, ms: number, flops: number, extra: Record<string, unknown> = {}) => ({
  bench: 'kernels',
  kernel,
  ms: +ms.toFixed(2),
  gflops: +(flops / ms / 1e6).toFixed(2),
  ...extra,
});

export async function run(opts: BenchOptions): Promise<Record<string, unknown>[]> {
  const backend = await initBackend(opts.backend);
  const reps = opts.quick ? 3 : 15;
  const B = 16,
    T = 128,
    H = 4,
    Hkv = 2,
    D = 32,
    scale = 1 / Math.sqrt(D);
  const q = tf.randomNormal([B, T, H, D]) as tf.Tensor4D;
  const k = tf.randomNormal([B, T, Hkv, D]) as tf.Tensor4D,
    v = tf.randomNormal([B, T, Hkv, D]) as tf.Tensor4D;
  const pairs = (T * (T + 1)) / 2; // causal query-key pairs per (batch, head)
  const fwdFlops = 4 * B * H * D * pairs;
  const out: Record<string, unknown>[] = [];
  const chosen = backend === 'wasm' ? matmulPath() : null;
  // Both matrix-product paths where BLAS is the one in use (it loaded), else the one there is.
  const paths = chosen === 'blas' ? (['blas', 'xnnpack'] as const) : [chosen];
  const onEachPath = (measure: (extra: Record<string, unknown>) => void) => {
    for (const p of paths) {
      if (p) setMatmulPath(p);
      measure({ backend, ...(p && { matmul: p }) });
    }
    if (chosen) setMatmulPath(chosen);
  };

  const grad = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
    tf.sum(attention(a as tf.Tensor4D, b as tf.Tensor4D, c as tf.Tensor4D, scale)),
  );
  onEachPath((extra) => {
    out.push(
      line(
        'attention.forward',
        time(() => attention(q, k, v, scale), reps),
        fwdFlops,
        extra,
      ),
    );
    out.push(
      line(
        'attention.forward+backward',
        time(() => grad([q, k, v]), reps),
        3.5 * fwdFlops,
        extra,
      ),
    );
    out.push(
      line(
        'attention.composed.forward',
        time(() => composedAttention(q, k, v, scale), reps),
        fwdFlops,
        extra,
      ),
    );
  });

  // One decoding step of the generate benchmark: batch 64, one new token at position 71 of 128.
  const Bg = 64,
    pos = 71;
  const cache = new KVCache(1, 128);
  const kv0 = tf.randomNormal([Bg, pos, Hkv, D]) as tf.Tensor4D;
  tf.dispose(cachedAttention(tf.randomNormal([Bg, pos, H, D]) as tf.Tensor4D, kv0, kv0, cache, 0, scale));
  const q1 = tf.randomNormal([Bg, 1, H, D]) as tf.Tensor4D,
    k1 = tf.randomNormal([Bg, 1, Hkv, D]) as tf.Tensor4D;
  const step = () => {
    cache.setLength(0, pos); // rewrite the same position every call
    return cachedAttention(q1, k1, k1, cache, 0, scale);
  };
  out.push(line('attention.cached_step', time(step, reps), 4 * Bg * H * D * (pos + 1), { backend, batch: Bg, positions: pos + 1 }));
  cache.dispose();

  // Batched products at the shapes of composed attention (B*H = 64 matrices of 128 x 32 x 128),
  // and the transposed 2-D products of linear-layer gradients.
  const a3 = tf.randomNormal([B * H, T, D]),
    b3 = tf.randomNormal([B * H, D, T]);
  const x = tf.randomNormal([B * T, 128]),
    dy = tf.randomNormal([B * T, 704]),
    w = tf.randomNormal([128, 704]);
  onEachPath((extra) => {
    out.push(
      line(
        'batchMatMul [64,128,32]x[64,32,128]',
        time(() => tf.matMul(a3, b3), reps),
        2 * B * H * T * D * T,
        extra,
      ),
    );
    out.push(
      line(
        'matMul [2048,128]^T x [2048,704]',
        time(() => tf.matMul(x, dy, true, false), reps),
        2 * B * T * 128 * 704,
        extra,
      ),
    );
    out.push(
      line(
        'matMul [2048,704] x [128,704]^T',
        time(() => tf.matMul(dy, w, false, true), reps),
        2 * B * T * 128 * 704,
        extra,
      ),
    );
    out.push(
      line(
        'matMul [2048,128] x [128,704]',
        time(() => tf.matMul(x, w), reps),
        2 * B * T * 128 * 704,
        extra,
      ),
    );
  });
  tf.dispose([q, k, v, kv0, q1, k1, a3, b3, x, dy, w]);
  return out;
}
