// UnsortedSegmentSum for the wasm backend, which lacks it; the gradient of tf.gather (embeddings)
// needs it. out[s, ...] = sum of x[i, ...] over i with segmentIds[i] == s; ids outside
// [0, numSegments) are dropped, as in TensorFlow. Plain JS over the heap: it is memory-bound and
// runs once per step.
import * as tf from '@tensorflow/tfjs-core';
import type { KernelArgs } from './wasm.ts';

function unsortedSegmentSum({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const { x, segmentIds } = inputs;
  const numSegments = attrs.numSegments as number;
  if (segmentIds.dtype !== 'int32') throw new Error(`UnsortedSegmentSum: segmentIds must be int32, got ${segmentIds.dtype}`);
  const n = tf.util.sizeFromShape(segmentIds.shape);
  const inner = n === 0 ? 0 : tf.util.sizeFromShape(x.shape) / n;
  const out = backend.makeOutput([numSegments, ...x.shape.slice(segmentIds.shape.length)], x.dtype);
  // Views only after makeOutput: allocating can grow the heap and detach earlier views.
  const xs = backend.typedArrayFromHeap(x),
    ids = backend.typedArrayFromHeap(segmentIds),
    o = backend.typedArrayFromHeap(out);
  o.fill(0);
  for (let i = 0; i < n; i++) {
    const s = ids[i];
    if (s < 0 || s >= numSegments) continue;
    const src = i * inner,
      dst = s * inner;
    for (let j = 0; j < inner; j++) o[dst + j] += xs[src + j];
  }
  return out;
}

export const unsortedSegmentSumConfig: tf.KernelConfig = {
  kernelName: 'UnsortedSegmentSum',
  backendName: 'wasm',
  kernelFunc: unsortedSegmentSum as unknown as tf.KernelFunc,
};
