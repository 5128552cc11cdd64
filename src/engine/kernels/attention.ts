// Causal multi-head attention with grouped-query heads, in the [batch, time, heads, head_dim]
// layout the projections produce, so the model needs no transposes around it.
// On the wasm backend (with installWasmPatches) it runs as fused SIMD kernels (attention-wasm.ts),
// forward and backward; elsewhere it is composed of TensorFlow.js ops.
import * as tf from '@tensorflow/tfjs-core';
import { ATTENTION, CACHED_ATTENTION } from './attention-wasm.ts';
import { taping } from './fused.ts';
import { addr, wasmBackend, type WasmBackend } from './wasm.ts';

/** The wasm backend, when our kernels are registered there and fit head size D. */
function fastPath(kernelName: string, D: number): WasmBackend | null {
  const backend = wasmBackend();
  return backend && D % 4 === 0 && tf.getKernel(kernelName, 'wasm') ? backend : null;
}

function checkShapes(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D): void {
  const [B, T, H, D] = q.shape,
    [Bk, S, Hkv, Dk] = k.shape;
  if (Bk !== B || Dk !== D || H % Hkv !== 0 || S < T || !tf.util.arraysEqual(k.shape, v.shape)) {
    throw new Error(
      `attention: shapes q [${q.shape}], k [${k.shape}], v [${v.shape}] do not fit ` +
        '(want q [B,T,H,D], k = v [B,S,Hkv,D], H a multiple of Hkv, S >= T)',
    );
  }
}

/** q: [B, T, H, D]; k, v: [B, S, Hkv, D] with H a multiple of Hkv and S >= T. Query t sits at
 * position S - T + t and sees keys 0..S-T+t. Returns [B, T, H, D]. Differentiable. */
export function attention(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, scale: number): tf.Tensor4D {
  checkShapes(q, k, v);
  if (!fastPath(ATTENTION, q.shape[3])) return composedAttention(q, k, v, scale);
  const [out, lse] = tf.engine().runKernel(ATTENTION, { q, k, v }, { scale }) as tf.Tensor[];
  lse.dispose(); // kept by the tape when a gradient is recorded
  return out as tf.Tensor4D;
}

/** The portable version, composed of TF.js ops (the reference for the kernels' tests, and what runs
 * where they do not apply). Query heads are grouped by the key/value head they read (head h reads
 * h / rep), so each group is one plain product with its keys and values: no copy of them per query
 * head (tf.tile on wasm took 90% of a decoding step). `mask` (additive, [B, 1, T, S]: 0 where a query
 * may see a key, -1e9 where not) replaces the causal mask, e.g. for packed rows, causal within each
 * document only (the fused kernels are causal-only and take no mask). The values may have a head
 * size of their own (MLA's v_head_dim): the result is [B, T, H, Dv]. */
export function composedAttention(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, scale: number, mask?: tf.Tensor4D): tf.Tensor4D {
  const [B, T, H, D] = q.shape;
  const [, S, Hkv] = k.shape;
  const rep = H / Hkv,
    Dv = v.shape[3];
  /** [B, n, H', d] -> [B, H', n, d]: heads first, so each group's rows are one matrix. */
  const headsFirst = (x: tf.Tensor4D) => tf.transpose(x, [0, 2, 1, 3]);
  const group = (x: tf.Tensor4D, d: number) => tf.reshape(headsFirst(x), [B, Hkv, rep * T, d]);
  const ungroup = (x: tf.Tensor, d: number) => headsFirst(tf.reshape(x, [B, H, T, d]) as tf.Tensor4D);
  // The gradient is written out so the tape keeps the probabilities alone of the [B, H, T, S]
  // tensors (autodiff of these ops kept the scores, the masked scores and the probabilities, and
  // the backward made as many again); q, k and v are kept by the ops that made them.
  /** [the output [B, T, H, Dv], the probabilities [B, Hkv, rep * T, S]]. */
  const forward = (qi: tf.Tensor4D, ki: tf.Tensor4D, vi: tf.Tensor4D): [tf.Tensor4D, tf.Tensor] => {
    const scores = tf.matMul(group(tf.mul(qi, scale), D), headsFirst(ki), false, true); // [B, Hkv, rep * T, S]
    const masked = mask
      ? tf.reshape(tf.add(tf.reshape(scores, [B, H, T, S]), mask), [B, Hkv, rep * T, S]) // head h = group h / rep, row h % rep
      : tf.add(scores, causalMask(rep, T, S));
    const p = tf.softmax(masked);
    return [ungroup(tf.matMul(p, headsFirst(vi)), Dv), p];
  };
  if (!taping()) return tf.tidy(() => forward(q, k, v)[0]);
  const run = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [qi, ki, vi] = args as tf.Tensor4D[];
    const save = args[3] as tf.GradSaveFunc;
    const [out, probs] = tf.tidy(() => forward(qi, ki, vi));
    save([qi, ki, vi, probs]);
    return {
      value: out,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [qs, ks, vs, p] = saved as tf.Tensor4D[];
        const dOut = group(dy as tf.Tensor4D, Dv); // [B, Hkv, rep * T, Dv]
        const dValues = tf.matMul(p, dOut, true, false); // [B, Hkv, S, Dv]
        const dp = tf.matMul(dOut, headsFirst(vs), false, true); // [B, Hkv, rep * T, S]
        // Softmax's vector-Jacobian product, times the scale the scores carry.
        const dScores = tf.mul(tf.mul(p, tf.sub(dp, tf.sum(tf.mul(dp, p), -1, true))), scale);
        const dq = ungroup(tf.matMul(dScores, headsFirst(ks)), D);
        const dk = headsFirst(tf.matMul(dScores, group(qs, D), true, false) as tf.Tensor4D);
        return [dq, dk, headsFirst(dValues as tf.Tensor4D)];
      },
    };
  });
  return run(q, k, v) as tf.Tensor4D;
}

/** [rep * T, S]: 0 where query t (at position S - T + t) may see key s, -1e9 where it may not. */
function causalMask(rep: number, T: number, S: number): tf.Tensor2D {
  const mask = new Float32Array(rep * T * S);
  for (let r = 0; r < rep; r++) for (let t = 0; t < T; t++) mask.fill(-1e9, (r * T + t) * S + S - T + t + 1, (r * T + t + 1) * S);
  return tf.tensor2d(mask, [rep * T, S]);
}

/** Keys and values of earlier positions for incremental decoding, one entry per layer.
 * On the wasm backend each layer holds a preallocated [B, capacity, Hkv, D] buffer that the
 * kernel writes in place (the capacity doubles when exceeded); elsewhere `keys`/`values` hold
 * exactly `length` positions and grow by concatenation. */
export class KVCache {
  readonly keys: (tf.Tensor4D | null)[];
  readonly values: (tf.Tensor4D | null)[];
  private buffers: ({ k: tf.Tensor4D; v: tf.Tensor4D } | null)[];
  private lengths: number[];

  /** `capacity`: positions to allocate up front on the wasm backend (prompt + new tokens). */
  constructor(
    readonly layers: number,
    public capacity = 256,
  ) {
    this.keys = new Array(layers).fill(null);
    this.values = new Array(layers).fill(null);
    this.buffers = new Array(layers).fill(null);
    this.lengths = new Array(layers).fill(0);
  }

  /** Number of positions held. */
  get length(): number {
    return this.lengths[0] ?? 0;
  }

  /** Forgets every position but keeps the buffers, to decode a new batch of the same size. */
  reset(): void {
    for (const t of [...this.keys, ...this.values]) t?.dispose();
    this.keys.fill(null);
    this.values.fill(null);
    this.lengths.fill(0);
  }

  dispose(): void {
    this.reset();
    for (const b of this.buffers) {
      b?.k.dispose();
      b?.v.dispose();
    }
    this.buffers.fill(null);
  }

  /** Layer's buffer pair with room for `needed` positions of [B, ., Hkv, D], grown by copying. */
  buffer(backend: WasmBackend, layer: number, shape: [number, number, number], needed: number): { k: tf.Tensor4D; v: tf.Tensor4D } {
    const [B, Hkv, D] = shape;
    const old = this.buffers[layer];
    if (old && (old.k.shape[0] !== B || old.k.shape[2] !== Hkv || old.k.shape[3] !== D)) {
      if (this.lengths[layer] > 0) {
        throw new Error(
          `KVCache: layer ${layer} holds batch ${old.k.shape[0]} x ${old.k.shape[2]} heads x ${old.k.shape[3]}, ` +
            `got ${B} x ${Hkv} x ${D}; call reset() before decoding a different batch`,
        );
      }
      this.buffers[layer] = null;
      old.k.dispose();
      old.v.dispose();
    }
    const cur = this.buffers[layer];
    if (cur && cur.k.shape[1] >= needed) return cur;
    let cap = this.capacity;
    while (cap < needed) cap *= 2;
    this.capacity = cap;
    // Uninitialised heap memory: positions are written before they are read.
    const alloc = () => tf.keep(tf.engine().makeTensorFromTensorInfo(backend.makeOutput([B, cap, Hkv, D], 'float32'))) as tf.Tensor4D;
    const next = { k: alloc(), v: alloc() };
    if (cur) {
      const heap = backend.wasm.HEAPF32,
        row = Hkv * D,
        used = this.lengths[layer] * row,
        oldCap = cur.k.shape[1];
      for (const [from, to] of [
        [cur.k, next.k],
        [cur.v, next.v],
      ] as const) {
        const src = addr(backend, from) >> 2,
          dst = addr(backend, to) >> 2;
        for (let b = 0; b < B; b++) heap.copyWithin(dst + b * cap * row, src + b * oldCap * row, src + b * oldCap * row + used);
      }
      cur.k.dispose();
      cur.v.dispose();
    }
    this.buffers[layer] = next;
    return next;
  }

  /** Positions held by one layer (layers fill in turn during a forward pass). */
  lengthOf(layer: number): number {
    return this.lengths[layer];
  }

  /** Records that `layer` now holds `n` positions. */
  setLength(layer: number, n: number): void {
    this.lengths[layer] = n;
  }
}

/** Appends kNew, vNew ([B, T, Hkv, D]) to layer `layer` of the cache, then attends q ([B, T, H, D])
 * over every cached position. Inference only (no gradient). */
export function cachedAttention(
  q: tf.Tensor4D,
  kNew: tf.Tensor4D,
  vNew: tf.Tensor4D,
  cache: KVCache,
  layer: number,
  scale: number,
): tf.Tensor4D {
  const [B, T, , D] = q.shape,
    Hkv = kNew.shape[2];
  const backend = fastPath(CACHED_ATTENTION, D);
  const pos = cache.lengthOf(layer);
  if (backend && !cache.keys[layer]) {
    checkShapes(q, kNew, vNew);
    const { k, v } = cache.buffer(backend, layer, [B, Hkv, D], pos + T);
    const out = tf.engine().runKernel(CACHED_ATTENTION, { q, kNew, vNew, kCache: k, vCache: v }, { pos, scale }) as tf.Tensor4D;
    cache.setLength(layer, pos + T);
    return out;
  }
  const prevK = cache.keys[layer],
    prevV = cache.values[layer];
  const k = prevK ? tf.concat([prevK, kNew], 1) : tf.clone(kNew);
  const v = prevV ? tf.concat([prevV, vNew], 1) : tf.clone(vNew);
  prevK?.dispose();
  prevV?.dispose();
  cache.keys[layer] = tf.keep(k);
  cache.values[layer] = tf.keep(v);
  cache.setLength(layer, k.shape[1]);
  return attention(q, k, v, scale);
}
