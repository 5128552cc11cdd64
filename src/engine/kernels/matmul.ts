// Fast paths for BatchMatMul on the wasm backend. Where the machine's BLAS loads (blas.ts), every
// float32 product (any transpose flags, batch, or one side broadcast) is one sgemm per matrix
// straight on the heap. Otherwise, XNNPACK: its own kernel is fast only for a plain 2-D
// product (XNNPACK, ~15-18 GFLOP/s); transpose flags or a real batch drop it to ~1.5. So:
//   - one matrix each side (any rank, batch 1) with transpose flags: transpose explicitly, then
//     the plain kernel;
//   - a batched A against one broadcast B: fold the batch into A's rows, one plain product;
//   - a real batch: our SIMD kernel (kernels/assembly/matmul.ts), operands transposed first.
// Anything else (non-float32, batch shapes broadcasting both ways) goes to the original kernel.
// XNNPACK packs each weight matrix into a copy of its own; when the heap cannot hold that copy,
// tfjs-backend-wasm only prints a warning and returns the output unwritten. Every product that
// reaches the original kernel is therefore checked (checkedOriginal) and stops the run instead.
import * as tf from '@tensorflow/tfjs-core';
import { UserError } from '../../errors.ts';
import { loadBlas, sgemmBatch, type Blas } from './blas.ts';
import { addr, kernelModule, type KernelArgs, type WasmBackend } from './wasm.ts';

let path: 'blas' | 'xnnpack' = 'xnnpack';

/** Chooses the path of matrix products on this thread's wasm backend ('blas' needs the library
 * loaded: see blas.ts's resolveMatmul). */
export function setMatmulPath(p: 'blas' | 'xnnpack'): void {
  if (p === 'blas' && !loadBlas().loaded) throw new Error('setMatmulPath: the BLAS library is not loaded');
  path = p;
}

/** The path matrix products take now on this thread. */
export function matmulPath(): 'blas' | 'xnnpack' {
  return path;
}

const heapBase = new WeakMap<object, { buffer: ArrayBufferLike; base: number }>();

/** Native address of the wasm heap, looked up again after the heap grows (a new buffer). */
export function heapAddress(backend: WasmBackend, blas: Blas): number {
  const buffer = backend.wasm.asm.memory.buffer;
  const cur = heapBase.get(backend);
  if (cur && cur.buffer === buffer) return cur.base;
  const base = blas.addressOf(buffer);
  heapBase.set(backend, { buffer, base });
  return base;
}

/** The product on BLAS: op(A) [batchA, M, K] x op(B) [batchB, K, N], one side possibly broadcast. */
function blasProduct(
  backend: WasmBackend,
  blas: Blas,
  a: tf.TensorInfo,
  b: tf.TensorInfo,
  batchA: number,
  batchB: number,
  M: number,
  K: number,
  N: number,
  transposeA: boolean,
  transposeB: boolean,
): tf.TensorInfo {
  const batch = Math.max(batchA, batchB);
  const out = backend.makeOutput([batch, M, N], 'float32');
  if (batch * M * N === 0) return out;
  if (K === 0) {
    backend.wasm.HEAPF32.fill(0, addr(backend, out) >>> 2, (addr(backend, out) >>> 2) + batch * M * N);
    return out;
  }
  sgemmBatch(
    blas,
    heapAddress(backend, blas),
    addr(backend, a),
    addr(backend, b),
    addr(backend, out),
    batch,
    M,
    N,
    K,
    transposeA,
    transposeB,
    batchA === 1 ? 0 : M * K,
    batchB === 1 ? 0 : K * N,
  );
  return out;
}

type MatmulModule = {
  bmm(a: number, b: number, c: number, batch: number, M: number, K: number, N: number, aStride: number, bStride: number): void;
};

/** Materialised transpose of the last two dims of `x` viewed as [batch, rows, cols]. */
function transposeLast(backend: WasmBackend, x: tf.TensorInfo, batch: number, rows: number, cols: number): tf.TensorInfo {
  const transpose = tf.getKernel('Transpose', 'wasm')!.kernelFunc;
  const view = { dataId: x.dataId, shape: [batch, rows, cols], dtype: x.dtype };
  return transpose({ inputs: { x: view }, backend: backend as unknown as tf.KernelBackend, attrs: { perm: [0, 2, 1] } }) as tf.TensorInfo;
}

/** Bits of a signalling NaN: arithmetic only ever produces quiet NaNs, so an output element still
 * holding these after the product was never written. */
export const UNWRITTEN = 0x7fbadbad;

/** The product did not run: XNNPACK could not make (pack) its operator, almost always because the
 * WebAssembly heap had no room for the packed copy of B. */
export function unwrittenProductError(backend: WasmBackend, a: readonly number[], b: readonly number[]): UserError {
  const K = b[b.length - 2],
    N = b[b.length - 1];
  const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
  return new UserError(
    `XNNPACK could not pack the [${K}, ${N}] matrix of the product [${a.join(', ')}] x [${b.join(', ')}] (its packed copy needs about ` +
      `${mib(K * N * 4)}): the WebAssembly heap ran out of memory (${mib(backend.wasm.HEAPF32.buffer.byteLength)} of its 4096 MiB in use), ` +
      'and the product was not computed. Install OpenBLAS (apt-get install libopenblas0-pthread) so products need no packed copies, ' +
      'or train a smaller model, LoRA adapters or shorter sequences (npx r1 recipe FILE prints the memory plan)',
    1,
  );
}

/** Runs the original (XNNPACK) kernel with its output's first element marked UNWRITTEN, and throws
 * when the mark survives: the kernel skipped the product. */
export function checkedOriginal(original: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const backend = (args as unknown as KernelArgs).backend;
    const own = Object.getOwnPropertyDescriptor(backend, 'makeOutput');
    const make = backend.makeOutput;
    let marked: number | null = null;
    backend.makeOutput = (shape: number[], dtype: tf.DataType) => {
      const out = make.call(backend, shape, dtype);
      if (marked === null && dtype === 'float32' && tf.util.sizeFromShape(shape) > 0) {
        marked = addr(backend, out);
        new Uint32Array(backend.wasm.HEAPF32.buffer)[marked >>> 2] = UNWRITTEN;
      }
      return out;
    };
    let result: tf.TensorInfo;
    try {
      result = original(args) as tf.TensorInfo;
    } finally {
      if (own) Object.defineProperty(backend, 'makeOutput', own);
      else delete (backend as { makeOutput?: unknown }).makeOutput;
    }
    if (marked !== null && new Uint32Array(backend.wasm.HEAPF32.buffer)[marked >>> 2] === UNWRITTEN) {
      backend.disposeData(result.dataId);
      const { a, b } = (args as unknown as KernelArgs).inputs;
      throw unwrittenProductError(backend, a.shape, b.shape);
    }
    return result;
  };
}

export function patchBatchMatMul(unchecked: tf.KernelFunc): tf.KernelFunc {
  const original = checkedOriginal(unchecked);
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
    const transposeA = attrs.transposeA as boolean,
      transposeB = attrs.transposeB as boolean;
    const ra = a.shape.length,
      rb = b.shape.length;
    if (a.dtype !== 'float32' || b.dtype !== 'float32' || ra < 2 || rb < 2) return original(args);
    const M = transposeA ? a.shape[ra - 1] : a.shape[ra - 2],
      K = transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
    const Kb = transposeB ? b.shape[rb - 1] : b.shape[rb - 2],
      N = transposeB ? b.shape[rb - 2] : b.shape[rb - 1];
    const outerA = a.shape.slice(0, -2),
      outerB = b.shape.slice(0, -2);
    const batchA = tf.util.sizeFromShape(outerA),
      batchB = tf.util.sizeFromShape(outerB);
    if (K !== Kb || (batchA !== batchB && batchA !== 1 && batchB !== 1)) return original(args);
    if (batchA !== 1 && batchB !== 1 && !tf.util.arraysEqual(outerA, outerB)) return original(args);
    const outShape = [...(outerA.length >= outerB.length ? outerA : outerB), M, N];
    if (path === 'blas') {
      const s = loadBlas();
      if (s.loaded) return { ...blasProduct(backend, s.blas, a, b, batchA, batchB, M, K, N, transposeA, transposeB), shape: outShape };
    }
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
