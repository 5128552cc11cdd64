// Attention as custom TF.js kernels on the wasm backend, computed by kernels/assembly/attention.ts
// in place on the heap. One op forward (outputs: out and the log-sum-exp per query, which the
// backward pass needs to recompute probabilities without storing them), one op backward.
import * as tf from '@tensorflow/tfjs-core';
import { addr, kernelModule, scratch, type KernelArgs, type WasmBackend } from './wasm.ts';

export const ATTENTION = 'R1Attention';
export const ATTENTION_GRAD = 'R1AttentionGrad';
export const CACHED_ATTENTION = 'R1CachedAttention';

type AttentionModule = {
  forward(q: number, k: number, v: number, out: number, lse: number, scratch: number,
    B: number, T: number, S: number, H: number, Hkv: number, D: number, kvStride: number, scale: number): void;
  backward(q: number, k: number, v: number, out: number, lse: number, dout: number, dq: number, dk: number, dv: number,
    scratch: number, B: number, T: number, S: number, H: number, Hkv: number, D: number, scale: number): void;
  cached(q: number, kNew: number, vNew: number, kCache: number, vCache: number, out: number, scratch: number,
    B: number, T: number, H: number, Hkv: number, D: number, pos: number, cap: number, scale: number): void;
};

const mod = (backend: WasmBackend) => kernelModule<AttentionModule>(backend, 'attention');

function forward({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo[] {
  const { q, k, v } = inputs;
  const [B, T, H, D] = q.shape, [, S, Hkv] = k.shape;
  const out = backend.makeOutput([B, T, H, D], 'float32');
  const lse = backend.makeOutput([B, H, T], 'float32');
  const sc = scratch(backend, 4 * (S * D + T * S + S + 8));
  mod(backend).forward(addr(backend, q), addr(backend, k), addr(backend, v), addr(backend, out), addr(backend, lse), sc,
    B, T, S, H, Hkv, D, S * Hkv * D, attrs.scale as number);
  return [out, lse];
}

function backward({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo[] {
  const { q, k, v, out, lse, dy } = inputs;
  const [B, T, H, D] = q.shape, [, S, Hkv] = k.shape;
  const dq = backend.makeOutput(q.shape, 'float32');
  const dk = backend.makeOutput(k.shape, 'float32');
  const dv = backend.makeOutput(v.shape, 'float32');
  const sc = scratch(backend, 4 * (2 * S * D + 2 * T * S + 8));
  mod(backend).backward(addr(backend, q), addr(backend, k), addr(backend, v), addr(backend, out), addr(backend, lse),
    addr(backend, dy), addr(backend, dq), addr(backend, dk), addr(backend, dv), sc, B, T, S, H, Hkv, D, attrs.scale as number);
  return [dq, dk, dv];
}

/** Inputs q, kNew, vNew, kCache, vCache ([B, capacity, Hkv, D], written in place at attrs.pos). */
function cached({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const { q, kNew, vNew, kCache, vCache } = inputs;
  const [B, T, H, D] = q.shape, [, cap, Hkv] = kCache.shape;
  const pos = attrs.pos as number;
  const out = backend.makeOutput([B, T, H, D], 'float32');
  const S = pos + T;
  const sc = scratch(backend, 4 * (S * D + T * S + S + 8));
  mod(backend).cached(addr(backend, q), addr(backend, kNew), addr(backend, vNew), addr(backend, kCache), addr(backend, vCache),
    addr(backend, out), sc, B, T, H, Hkv, D, pos, cap, attrs.scale as number);
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
    const [dq, dk, dv] = tf.engine().runKernel(ATTENTION_GRAD, { q, k, v, out, lse, dy }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
    return { q: () => dq, k: () => dk, v: () => dv };
  },
};
