// Copy kernels for the wasm backend. Its Slice (and SplitV) first copies the whole input out of the
// heap (readSync) on every call, its GatherV2 computes every element's address (~8 us per 128-float
// row), its Transpose runs ~8 ns per element. Here: heap-to-heap memory.copy per contiguous run or
// gathered row, and 4 x 4 register blocks for swapping the last two dims. Other cases (strings,
// boxes above rank 4 after merging contiguous dims, other permutations) go to the original kernels.
import * as tf from '@tensorflow/tfjs-core';
import { addr, kernelModule, type KernelArgs, type WasmBackend } from './wasm.ts';

type SliceModule = {
  copyBox(x: number, out: number, n0: number, n1: number, n2: number, run: number, s0: number, s1: number, s2: number): void;
  gatherRows(x: number, idx: number, out: number, batch: number, outer: number, dim: number, n: number, row: number): void;
  transpose(x: number, out: number, batch: number, R: number, C: number): void;
};

const BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1 };

/** The box as at most three strided loops around one contiguous run (in elements), or null. */
export function boxPlan(shape: number[], begin: number[], size: number[]): { offset: number; dims: [number, number][] } | null {
  if (shape.length === 0) return { offset: 0, dims: [[1, 1]] };
  const strides = [...tf.util.computeStrides(shape), 1];
  let offset = 0;
  const dims: [number, number][] = []; // [count, stride], outermost first
  for (let i = 0; i < shape.length; i++) {
    offset += begin[i] * strides[i];
    if (size[i] !== 1) dims.push([size[i], strides[i]]);
  }
  // Merge a dim into the next inner one when that one spans exactly its stride.
  for (let i = dims.length - 2; i >= 0; i--) {
    const [n, s] = dims[i],
      [m, t] = dims[i + 1];
    if (s === m * t) dims.splice(i, 2, [n * m, t]);
  }
  if (dims.length === 0 || dims[dims.length - 1][1] !== 1) dims.push([1, 1]);
  return dims.length > 4 ? null : { offset, dims };
}

function copySlice(backend: WasmBackend, x: tf.TensorInfo, begin: number[], size: number[]): tf.TensorInfo | null {
  const bytes = BYTES[x.dtype];
  const plan = bytes ? boxPlan(x.shape, begin, size) : null;
  if (!plan) return null;
  const out = backend.makeOutput(size, x.dtype);
  if (tf.util.sizeFromShape(size) === 0) return out;
  const d = [...Array(4 - plan.dims.length).fill([1, 0]), ...plan.dims] as [number, number][];
  kernelModule<SliceModule>(backend, 'slice').copyBox(
    addr(backend, x) + plan.offset * bytes,
    addr(backend, out),
    d[0][0],
    d[1][0],
    d[2][0],
    d[3][0] * bytes,
    d[0][1] * bytes,
    d[1][1] * bytes,
    d[2][1] * bytes,
  );
  return out;
}

export function patchSlice(original: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const { inputs, backend, attrs } = args as unknown as KernelArgs;
    const x = inputs.x;
    const [begin, size] = tf.slice_util.parseSliceParams(x as tf.Tensor, attrs.begin as number[], attrs.size as number[]);
    return copySlice(backend, x, begin, size) ?? original(args);
  };
}

export function patchSplitV(original: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const { inputs, backend, attrs } = args as unknown as KernelArgs;
    const x = inputs.x;
    if (!BYTES[x.dtype]) return original(args);
    const axis = tf.util.parseAxisParam(attrs.axis as number, x.shape)[0];
    const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, attrs.numOrSizeSplits as number[], axis);
    const begin = new Array(x.shape.length).fill(0);
    const outs: tf.TensorInfo[] = [];
    for (const s of sizes) {
      const size = x.shape.slice();
      size[axis] = s;
      const out = copySlice(backend, x, begin.slice(), size);
      if (!out) {
        for (const o of outs) backend.disposeData(o.dataId);
        return original(args);
      }
      outs.push(out);
      begin[axis] += s;
    }
    return outs;
  };
}

export function patchGatherV2(original: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const { inputs, backend, attrs } = args as unknown as KernelArgs;
    const { x, indices } = inputs;
    const bytes = BYTES[x.dtype];
    if (!bytes || indices.dtype !== 'int32') return original(args);
    const axis = tf.util.parseAxisParam(attrs.axis as number, x.shape)[0];
    const info = tf.backend_util.segment_util.collectGatherOpShapeInfo(
      x as tf.Tensor,
      indices as tf.Tensor,
      axis,
      attrs.batchDims as number,
    );
    const ids = backend.typedArrayFromHeap(indices),
      n = ids.length,
      dim = x.shape[axis];
    for (let i = 0; i < n; i++) {
      if (ids[i] < 0 || ids[i] >= dim) throw new Error(`GatherV2: the index value ${ids[i]} is not in [0, ${dim - 1}]`);
    }
    const out = backend.makeOutput(info.outputShape, x.dtype); // may grow the heap: `ids` is stale after
    if (tf.util.sizeFromShape(info.outputShape) === 0) return out;
    kernelModule<SliceModule>(backend, 'slice').gatherRows(
      addr(backend, x),
      addr(backend, indices),
      addr(backend, out),
      info.batchSize,
      info.outerSize,
      info.dimSize,
      n / info.batchSize,
      info.sliceSize * bytes,
    );
    return out;
  };
}

/** Transposes that swap the last two dims (matMul's operands, a tied LM head) of 4-byte data. */
export function patchTranspose(original: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const { inputs, backend, attrs } = args as unknown as KernelArgs;
    const x = inputs.x,
      perm = attrs.perm as number[],
      r = x.shape.length;
    const swapsLast = r >= 2 && perm[r - 2] === r - 1 && perm[r - 1] === r - 2 && perm.slice(0, -2).every((p, i) => p === i);
    if (!swapsLast || BYTES[x.dtype] !== 4) return original(args);
    const R = x.shape[r - 2],
      C = x.shape[r - 1];
    const out = backend.makeOutput([...x.shape.slice(0, -2), C, R], x.dtype);
    if (R * C === 0) return out;
    kernelModule<SliceModule>(backend, 'slice').transpose(
      addr(backend, x),
      addr(backend, out),
      tf.util.sizeFromShape(x.shape) / (R * C),
      R,
      C,
    );
    return out;
  };
}
