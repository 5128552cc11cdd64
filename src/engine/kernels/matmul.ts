// Fast paths for BatchMatMul on the wasm backend. Its own kernel is fast only for a plain 2-D
// product (XNNPACK, ~15-18 GFLOP/s); transpose flags or a real batch drop it to ~1.5. So:
//   - one matrix each side (any rank, batch 1) with transpose flags: transpose explicitly, then
//     the plain kernel;
//   - a batched A against one broadcast B: fold the batch into A's rows, one plain product;
//   - a real batch: our SIMD kernel (kernels/assembly/matmul.ts), operands transposed first.
// Anything else (non-float32, batch shapes broadcasting both ways) goes to the original kernel.
import * as tf from '@tensorflow/tfjs-core';
import { addr, kernelModule, type KernelArgs, type WasmBackend } from './wasm.ts';

type MatmulModule = { bmm(a: number, b: number, c: number, batch: number, M: number, K: number, N: number, aStride: number, bStride: number): void };

/** Materialised transpose of the last two dims of `x` viewed as [batch, rows, cols]. */
function transposeLast(backend: WasmBackend, x: tf.TensorInfo, batch: number, rows: number, cols: number): tf.TensorInfo {
  const transpose = tf.getKernel('Transpose', 'wasm')!.kernelFunc;
  const view = { dataId: x.dataId, shape: [batch, rows, cols], dtype: x.dtype };
  return transpose({ inputs: { x: view }, backend: backend as unknown as tf.KernelBackend, attrs: { perm: [0, 2, 1] } }) as tf.TensorInfo;
}

export function patchBatchMatMul(original: tf.KernelFunc): tf.KernelFunc {
  const plain = (backend: WasmBackend, a: tf.TensorInfo, b: tf.TensorInfo, M: number, K: number, N: number): tf.TensorInfo =>
    original({
      inputs: { a: { ...a, shape: [M, K] }, b: { ...b, shape: [K, N] } },
      backend: backend as unknown as tf.KernelBackend,
      attrs: { transposeA: false, transposeB: false },
    }) as tf.TensorInfo;

  return (args) => {
    const { inputs, attrs } = args as unknown as KernelArgs;
    const backend = (args as unknown as KernelArgs).backend;
    const { a, b } = inputs;
    const transposeA = attrs.transposeA as boolean, transposeB = attrs.transposeB as boolean;
    const ra = a.shape.length, rb = b.shape.length;
    if (a.dtype !== 'float32' || b.dtype !== 'float32' || ra < 2 || rb < 2) return original(args);
    const M = transposeA ? a.shape[ra - 1] : a.shape[ra - 2], K = transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
    const Kb = transposeB ? b.shape[rb - 1] : b.shape[rb - 2], N = transposeB ? b.shape[rb - 2] : b.shape[rb - 1];
    const outerA = a.shape.slice(0, -2), outerB = b.shape.slice(0, -2);
    const batchA = tf.util.sizeFromShape(outerA), batchB = tf.util.sizeFromShape(outerB);
    if (K !== Kb || (batchA !== batchB && batchA !== 1 && batchB !== 1)) return original(args);
    if (batchA !== 1 && batchB !== 1 && !tf.util.arraysEqual(outerA, outerB)) return original(args);
    const outShape = [...(outerA.length >= outerB.length ? outerA : outerB), M, N];
    if (batchA === 1 && batchB === 1 && !transposeA && !transposeB && ra === 2 && rb === 2) return original(args);

    // Operands in [batch, M, K] and [batch, K, N] layout; temporaries are freed at the end.
    const temps: tf.TensorInfo[] = [];
    const A = transposeA ? transposeLast(backend, a, batchA, K, M) : a;
    const B = transposeB ? transposeLast(backend, b, batchB, N, K) : b;
    if (transposeA) temps.push(A);
    if (transposeB) temps.push(B);
    let out: tf.TensorInfo;
    if (batchB === 1) {
      out = plain(backend, A, B, batchA * M, K, N); // covers the batch-1 case too
    } else {
      const batch = Math.max(batchA, batchB);
      out = backend.makeOutput([batch, M, N], 'float32');
      const mm = kernelModule<MatmulModule>(backend, 'matmul');
      mm.bmm(addr(backend, A), addr(backend, B), addr(backend, out), batch, M, K, N, batchA === 1 ? 0 : M * K, K * N);
    }
    for (const t of temps) backend.disposeData(t.dataId);
    return { ...out, shape: outShape };
  };
}
