// Kernel patches for the TF.js WebAssembly backend, installed once by engine/backend.ts.
import * as tf from '@tensorflow/tfjs-core';
import { attentionGradient, attentionKernels } from './attention-wasm.ts';
import { fusedGradients, fusedKernels, patchExp } from './fused.ts';
import { resolveMatmul } from './blas.ts';
import { patchBatchMatMul, setMatmulPath } from './matmul.ts';
import { patchGatherV2, patchSlice, patchSplitV, patchTranspose } from './slice.ts';
import { unsortedSegmentSumConfig } from './segment-sum.ts';
import { heapUsable, kernelModule, wasmBackend } from './wasm.ts';

export { attention, cachedAttention, composedAttention, KVCache } from './attention.ts';
export { rmsNorm, rope, swiglu } from './fused.ts';
export { matmulPath, setMatmulPath } from './matmul.ts';

const PATCHED = Symbol.for('r1kit.patched');

/** Registers on the active wasm backend: the missing UnsortedSegmentSum, BatchMatMul fast paths
 * (the machine's BLAS where it loads and R1_MATMUL allows, else XNNPACK with fewer transposes),
 * copy-free Identity, Slice and SplitV, row-copy GatherV2, SIMD Transpose and Exp, the attention kernels,
 * fused RMSNorm, rotary embedding and SwiGLU.
 * Idempotent; a no-op where the wasm heap cannot be shared (the multi-threaded build), leaving the
 * portable versions. */
export function installWasmPatches(): void {
  const backend = wasmBackend();
  if (!backend || !heapUsable(backend)) return;
  // Load the modules now so a missing build fails here, with the message to run `npm install`.
  kernelModule(backend, 'attention');
  kernelModule(backend, 'matmul');
  kernelModule(backend, 'fused');
  kernelModule(backend, 'slice');
  kernelModule(backend, 'softmax');
  setMatmulPath(resolveMatmul());
  if (!tf.getKernel('UnsortedSegmentSum', 'wasm')) tf.registerKernel(unsortedSegmentSumConfig);
  wrapKernel('BatchMatMul', patchBatchMatMul);
  // Identity (tf.clone, and the copies the tape keeps of every tensor saved for a gradient) copies
  // the data on wasm; tensors are immutable, so share it by reference count, as the cpu backend does.
  wrapKernel('Identity', shareIdentity);
  wrapKernel('Slice', patchSlice);
  wrapKernel('SplitV', patchSplitV);
  wrapKernel('GatherV2', patchGatherV2);
  wrapKernel('Transpose', patchTranspose);
  wrapKernel('Exp', patchExp);
  for (const k of [...attentionKernels, ...fusedKernels]) if (!tf.getKernel(k.kernelName, 'wasm')) tf.registerKernel(k);
  for (const g of [attentionGradient, ...fusedGradients]) if (!tf.getGradient(g.kernelName)) tf.registerGradient(g);
}

/** Replaces a wasm kernel by a wrapper around it, once. */
function wrapKernel(name: string, wrap: (original: tf.KernelFunc) => tf.KernelFunc): void {
  const config = tf.getKernel(name, 'wasm') as (tf.KernelConfig & { [PATCHED]?: true }) | undefined;
  if (!config || config[PATCHED]) return;
  tf.unregisterKernel(name, 'wasm');
  tf.registerKernel({ ...config, kernelFunc: wrap(config.kernelFunc), [PATCHED]: true } as tf.KernelConfig);
}

function shareIdentity(original: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    if (x.dtype === 'string') return original(args);
    (args.backend as unknown as { incRef(dataId: object): void }).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  };
}
