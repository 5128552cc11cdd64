// Kernel patches for the TF.js WebAssembly backend, installed once by engine/backend.ts.
import * as tf from '@tensorflow/tfjs-core';
import { attentionGradient, attentionKernels } from './attention-wasm.ts';
import { fusedGradients, fusedKernels } from './fused.ts';
import { patchBatchMatMul } from './matmul.ts';
import { unsortedSegmentSumConfig } from './segment-sum.ts';
import { heapUsable, kernelModule, wasmBackend } from './wasm.ts';

export { attention, cachedAttention, composedAttention, KVCache } from './attention.ts';
export { rmsNorm, rope } from './fused.ts';

const PATCHED = Symbol.for('r1kit.patched');

/** Registers the missing UnsortedSegmentSum, the BatchMatMul fast paths, a copy-free Identity, the
 * attention kernels and the fused RMSNorm and rotary embedding on the active wasm backend. Idempotent; a no-op where the
 * wasm heap cannot be shared (the multi-threaded build), leaving the portable versions. */
export function installWasmPatches(): void {
  const backend = wasmBackend();
  if (!backend || !heapUsable(backend)) return;
  // Load the modules now so a missing build fails here, with the message to run `npm install`.
  kernelModule(backend, 'attention');
  kernelModule(backend, 'matmul');
  kernelModule(backend, 'fused');
  if (!tf.getKernel('UnsortedSegmentSum', 'wasm')) tf.registerKernel(unsortedSegmentSumConfig);
  const matmul = tf.getKernel('BatchMatMul', 'wasm') as (tf.KernelConfig & { [PATCHED]?: true }) | undefined;
  if (matmul && !matmul[PATCHED]) {
    tf.unregisterKernel('BatchMatMul', 'wasm');
    tf.registerKernel({ ...matmul, kernelFunc: patchBatchMatMul(matmul.kernelFunc), [PATCHED]: true } as tf.KernelConfig);
  }
  // Identity (tf.clone, and the copies the tape keeps of every tensor saved for a gradient) copies
  // the data on wasm; tensors are immutable, so share it by reference count, as the cpu backend does.
  const identity = tf.getKernel('Identity', 'wasm') as (tf.KernelConfig & { [PATCHED]?: true }) | undefined;
  if (identity && !identity[PATCHED]) {
    tf.unregisterKernel('Identity', 'wasm');
    tf.registerKernel({ ...identity, kernelFunc: shareIdentity(identity.kernelFunc), [PATCHED]: true } as tf.KernelConfig);
  }
  for (const k of [...attentionKernels, ...fusedKernels]) if (!tf.getKernel(k.kernelName, 'wasm')) tf.registerKernel(k);
  for (const g of [attentionGradient, ...fusedGradients]) if (!tf.getGradient(g.kernelName)) tf.registerGradient(g);
}

function shareIdentity(original: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    if (x.dtype === 'string') return original(args);
    (args.backend as unknown as { incRef(dataId: object): void }).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  };
}
