// Attention as custom TF.js kernels on the wasm backend, computed by kernels/assembly/attention.ts
// in place on the heap. One op forward (outputs: out and the log-sum-exp per query, which the
// backward pass needs to recompute probabilities without storing them), one op backward.
// Where matrix products go to the machine's BLAS (blas.ts), training's forward and backward pass
// run each head's products as sgemm calls on the heap, with the row-wise softmax pieces in
// kernels/assembly/softmax.ts; the cached decode step (a few rows) stays on the SIMD kernel.
import * as tf from '@tensorflow/tfjs-core';
import { loadBlas, sgemmStrided, type Blas } from './blas.ts';
import { heapAddress, matmulPath } from './matmul.ts';
import { addr, kernelModule, scratch, type KernelArgs, type WasmBackend } from './wasm.ts';

export const ATTENTION = 'R1Attention';
export const ATTENTION_GRAD = 'R1AttentionGrad';
export const CACHED_ATTENTION = 'R1CachedAttention';

type AttentionModule = {
  forward(
    q: number,
    k: number,
    v: number,
    out: number,
    lse: number,
    scratch: number,
    B: number,
    T: number,
    S: number,
    H: number,
    Hkv: number,
    D: number,
    kvStride: number,
    scale: number,
  ): void;
  backward(
    q: number,
    k: number,
    v: number,
    out: number,
    lse: number,
    dout: number,
    dq: number,
    dk: number,
    dv: number,
    scratch: number,
    B: number,
    T: number,
    S: number,
    H: number,
    Hkv: number,
    D: number,
    scale: number,
  ): void;
  cached(
    q: number,
    kNew: number,
    vNew: number,
    kCache: number,
    vCache: number,
    out: number,
    scratch: number,
    B: number,
    T: number,
    H: number,
    Hkv: number,
    D: number,
    pos: number,
    cap: number,
    scale: number,
  ): void;
};

type SoftmaxModule = {
  causalSoftmax(sc: number, lse: number, T: number, S: number): void;
  causalProbs(sc: number, lse: number, T: number, S: number): void;
  softmaxGrad(p: number, dp: number, dout: number, out: number, T: number, S: number, D: number, ld: number): void;
};

const mod = (backend: WasmBackend) => kernelModule<AttentionModule>(backend, 'attention');
const softmaxMod = (backend: WasmBackend) => kernelModule<SoftmaxModule>(backend, 'softmax');

/** The BLAS library when matrix products go there now. */
function blasNow(): Blas | null {
  if (matmulPath() !== 'blas') return null;
  const s = loadBlas();
  return s.loaded ? s.blas : null;
}

/** Byte offsets of head h's first row in batch b of a [B, T, H, D] tensor at `base`. */
const headAt = (base: number, b: number, h: number, T: number, H: number, D: number) => base + 4 * ((b * T * H + h) * D);

/** Per head: scores = scale Q K^T (sgemm), causal softmax in place (saving lse), out = P V (sgemm). */
function blasForward(
  backend: WasmBackend,
  blas: Blas,
  q: tf.TensorInfo,
  k: tf.TensorInfo,
  v: tf.TensorInfo,
  out: tf.TensorInfo,
  lse: tf.TensorInfo,
  scale: number,
): void {
  const [B, T, H, D] = q.shape,
    [, S, Hkv] = k.shape,
    rep = H / Hkv;
  const sc = scratch(backend, 4 * T * S);
  const base = heapAddress(backend, blas),
    sm = softmaxMod(backend);
  const qa = addr(backend, q),
    ka = addr(backend, k),
    va = addr(backend, v),
    oa = addr(backend, out),
    la = addr(backend, lse);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const g = Math.floor(h / rep),
        kRow = headAt(ka, b, g, S, Hkv, D),
        vRow = headAt(va, b, g, S, Hkv, D);
      sgemmStrided(blas, base, false, true, T, S, D, scale, headAt(qa, b, h, T, H, D), H * D, kRow, Hkv * D, 0, sc, S);
      sm.causalSoftmax(sc, la + 4 * (b * H + h) * T, T, S);
      sgemmStrided(blas, base, false, false, T, D, S, 1, sc, S, vRow, Hkv * D, 0, headAt(oa, b, h, T, H, D), H * D);
    }
  }
}

/** Per head, with P recomputed from lse: dV += P^T dO, dS = P (dO V^T - rowsum(dO O)),
 * dQ = scale dS K, dK += scale dS^T Q. dk and dv are accumulated over the heads sharing them. */
function blasBackward(backend: WasmBackend, blas: Blas, t: Record<string, tf.TensorInfo>, scale: number): void {
  const { q, k, v, out, lse, dy, dq, dk, dv } = t;
  const [B, T, H, D] = q.shape,
    [, S, Hkv] = k.shape,
    rep = H / Hkv;
  const sc = scratch(backend, 8 * T * S),
    p = sc,
    dp = sc + 4 * T * S;
  const base = heapAddress(backend, blas),
    sm = softmaxMod(backend),
    heap = backend.wasm.HEAPF32;
  const [qa, ka, va, oa, la, ya, dqa, dka, dva] = [q, k, v, out, lse, dy, dq, dk, dv].map((x) => addr(backend, x));
  heap.fill(0, dka >>> 2, (dka >>> 2) + B * S * Hkv * D);
  heap.fill(0, dva >>> 2, (dva >>> 2) + B * S * Hkv * D);
  const qd = H * D,
    kd = Hkv * D;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const g = Math.floor(h / rep);
      const qh = headAt(qa, b, h, T, H, D),
        oh = headAt(oa, b, h, T, H, D),
        yh = headAt(ya, b, h, T, H, D),
        dqh = headAt(dqa, b, h, T, H, D);
      const kg = headAt(ka, b, g, S, Hkv, D),
        vg = headAt(va, b, g, S, Hkv, D),
        dkg = headAt(dka, b, g, S, Hkv, D),
        dvg = headAt(dva, b, g, S, Hkv, D);
      sgemmStrided(blas, base, false, true, T, S, D, scale, qh, qd, kg, kd, 0, p, S);
      sm.causalProbs(p, la + 4 * (b * H + h) * T, T, S);
      sgemmStrided(blas, base, true, false, S, D, T, 1, p, S, yh, qd, 1, dvg, kd);
      sgemmStrided(blas, base, false, true, T, S, D, 1, yh, qd, vg, kd, 0, dp, S);
      sm.softmaxGrad(p, dp, yh, oh, T, S, D, qd);
      sgemmStrided(blas, base, false, false, T, D, S, scale, dp, S, kg, kd, 0, dqh, qd);
      sgemmStrided(blas, base, true, false, S, D, T, scale, dp, S, qh, qd, 1, dkg, kd);
    }
  }
}

function forward({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo[] {
  const { q, k, v } = inputs;
  const [B, T, H, D] = q.shape,
    [, S, Hkv] = k.shape;
  const out = backend.makeOutput([B, T, H, D], 'float32');
  const lse = backend.makeOutput([B, H, T], 'float32');
  const blas = blasNow();
  if (blas) {
    blasForward(backend, blas, q, k, v, out, lse, attrs.scale as number);
    return [out, lse];
  }
  const sc = scratch(backend, 4 * (S * D + T * S + S + 8));
  mod(backend).forward(
    addr(backend, q),
    addr(backend, k),
    addr(backend, v),
    addr(backend, out),
    addr(backend, lse),
    sc,
    B,
    T,
    S,
    H,
    Hkv,
    D,
    S * Hkv * D,
    attrs.scale as number,
  );
  return [out, lse];
}

function backward({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo[] {
  const { q, k, v, out, lse, dy } = inputs;
  const [B, T, H, D] = q.shape,
    [, S, Hkv] = k.shape;
  const dq = backend.makeOutput(q.shape, 'float32');
  const dk = backend.makeOutput(k.shape, 'float32');
  const dv = backend.makeOutput(v.shape, 'float32');
  const blas = blasNow();
  if (blas) {
    blasBackward(backend, blas, { q, k, v, out, lse, dy, dq, dk, dv }, attrs.scale as number);
    return [dq, dk, dv];
  }
  const sc = scratch(backend, 4 * (2 * S * D + 2 * T * S + 8));
  mod(backend).backward(
    addr(backend, q),
    addr(backend, k),
    addr(backend, v),
    addr(backend, out),
    addr(backend, lse),
    addr(backend, dy),
    addr(backend, dq),
    addr(backend, dk),
    addr(backend, dv),
    sc,
    B,
    T,
    S,
    H,
    Hkv,
    D,
    attrs.scale as number,
  );
  return [dq, dk, dv];
}

/** Inputs q, kNew, vNew, kCache, vCache ([B, capacity, Hkv, D], written in place at attrs.pos). */
function cached({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const { q, kNew, vNew, kCache, vCache } = inputs;
  const [B, T, H, D] = q.shape,
    [, cap, Hkv] = kCache.shape;
  const pos = attrs.pos as number;
  const out = backend.makeOutput([B, T, H, D], 'float32');
  const S = pos + T;
  const sc = scratch(backend, 4 * (S * D + T * S + S + 8));
  mod(backend).cached(
    addr(backend, q),
    addr(backend, kNew),
    addr(backend, vNew),
    addr(backend, kCache),
    addr(backend, vCache),
    addr(backend, out),
    sc,
    B,
    T,
    H,
    Hkv,
    D,
    pos,
    cap,
    attrs.scale as number,
  );
  return out;
}

const kernel = (kernelName: string, f: (args: KernelArgs) => tf.TensorInfo | tf.TensorInfo[]): tf.KernelConfig => ({
  kernelName,
  backendName: 'wasm',
  kernelFunc: f as unknown as tf.KernelFunc,
});

export const attentionKernels: tf.KernelConfig[] = [
  kernel(ATTENTION, forward),
  kernel(ATTENTION_GRAD, backward),
  kernel(CACHED_ATTENTION, cached),
];

export const attentionGradient: tf.GradConfig = {
  kernelName: ATTENTION,
  inputsToSave: ['q', 'k', 'v'],
  outputsToSave: [true, true],
  gradFunc: (dys, saved, attrs) => {
    const [q, k, v, out, lse] = saved;
    const dy = (dys as tf.Tensor[])[0]; // the log-sum-exp output only serves the backward pass
    const [dq, dk, dv] = tf
      .engine()
      .runKernel(ATTENTION_GRAD, { q, k, v, out, lse, dy }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
    return { q: () => dq, k: () => dk, v: () => dv };
  },
};
