// Kernel patches for the TF.js WebAssembly backend, installed once by engine/backend.ts.
import * as tf from '@tensorflow/tfjs-core';
import { attentionGradient, attentionKernels } from './attention-wasm.ts';
import { patchBatchMatMul } from './matmul.ts';
import { unsortedSegmentSumConfig } from './segment-sum.ts';
import { heapUsable, kernelModule, wasmBackend } from './wasm.ts';

export { attention, cachedAttention, composedAttention, KVCache } from './attention.ts';

const PATCHED = Symbol.for('r1kit.patched');

/** Registers the missing UnsortedSegmentSum, the BatchMatMul fast paths and the attention kernels
 * on the active wasm backend. Idempotent; a no-op where the wasm heap cannot be shared (the
 * multi-threaded build), leaving the portable versions. */
export function installWasmPatches(): void {
  const backend = wasmBackend();
  if (!backend || !heapUsable(backend)) return;
  // Load both modules now so a missing build fails here, with the message to run `npm install`.
  kernelModule(backend, 'attention');
  kernelModule(backend, 'matmul');
  if (!tf.getKernel('UnsortedSegmentSum', 'wasm')) tf.registerKernel(unsortedSegmentSumConfig);
  const matmul = tf.getKernel('BatchMatMul', 'wasm') as (tf.KernelConfig & { [PATCHED]?: true }) | undefined;
  if (matmul && !matmul[PATCHED]) {
    tf.unregisterKernel('BatchMatMul', 'wasm');
    tf.registerKernel({ ...matmul, kernelFunc: patchBatchMatMul(matmul.kernelFunc), [PATCHED]: true } as tf.KernelConfig);
  }
  for (const k of attentionKernels) if (!tf.getKernel(k.kernelName, 'wasm')) tf.registerKernel(k);
  if (!tf.getGradient(attentionGradient.kernelName)) tf.registerGradient(attentionGradient);
}
