// No silent wrong product: when XNNPACK cannot pack a matrix (the WebAssembly heap has no room for
// its packed copy), tfjs-backend-wasm only warns and leaves the output unwritten; r1kit's BatchMatMul
// patch (engine/kernels/matmul.ts) must stop with an error naming what ran out instead.
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/engine/backend.ts';
import { resolveMatmul } from '../src/engine/kernels/blas.ts';
import { setMatmulPath } from '../src/engine/kernels/index.ts';
import { UNWRITTEN, checkedOriginal } from '../src/engine/kernels/matmul.ts';
import { type KernelArgs, addr, wasmBackend } from '../src/engine/kernels/wasm.ts';

/** WebAssembly's addressable heap (tfjs-backend-wasm's getHeapMax). */
const HEAP_MAX = 4294901760;

beforeAll(async () => {
  await initBackend('wasm');
  setMatmulPath('xnnpack');
});
afterAll(() => setMatmulPath(resolveMatmul()));

describe('a product XNNPACK skips is an error', () => {
  it('a real one: with the heap nearly full, packing a 64 MiB matrix fails and the run stops naming the heap', () => {
    const backend = wasmBackend()!;
    const a = tf.ones([1, 1024]),
      b = tf.ones([1024, 16384]); // B: 64 MiB
    const small = tf.matMul(tf.ones([2, 3]), tf.ones([3, 4]));
    expect(Array.from(small.dataSync())).toEqual(new Array(8).fill(3)); // products still work before the heap fills
    // Reserve (never touch, so never resident) all but 32 MiB of the heap: room for the output, not for B's packed copy.
    const used = backend.wasm.HEAPF32.buffer.byteLength;
    const filler = backend.wasm._malloc(HEAP_MAX - used - 32 * 2 ** 20);
    expect(filler).not.toBe(0);
    try {
      expect(() => tf.matMul(a, b)).toThrow(
        /XNNPACK could not pack the \[1024, 16384\] matrix of the product \[1, 1024\] x \[1024, 16384\] .*64 MiB.*WebAssembly heap ran out of memory .*product was not computed.*OpenBLAS/,
      );
    } finally {
      backend.wasm._free(filler);
    }
    // With the room back the same product runs, and is right.
    const c = tf.matMul(a, b);
    expect(c.dataSync()[0]).toBe(1024);
    expect(c.dataSync()[16383]).toBe(1024);
    tf.dispose([a, b, small, c]);
  });

  it('a mocked one: a kernel that returns its output unwritten throws; one that writes it passes, even a NaN', () => {
    const backend = wasmBackend()!;
    const args = (a: tf.Tensor, b: tf.Tensor) =>
      ({ inputs: { a, b }, backend, attrs: { transposeA: false, transposeB: false } }) as unknown as tf.NamedTensorInfoMap & KernelArgs;
    const a = tf.ones([2, 3]),
      b = tf.ones([3, 4]);
    const skipping = checkedOriginal((x) => (x as unknown as KernelArgs).backend.makeOutput([2, 4], 'float32'));
    expect(() => skipping(args(a, b) as never)).toThrow(/XNNPACK could not pack the \[3, 4\] matrix/);
    const writing = (value: number) =>
      checkedOriginal((x) => {
        const be = (x as unknown as KernelArgs).backend,
          out = be.makeOutput([2, 4], 'float32');
        be.wasm.HEAPF32.fill(value, addr(be, out) >>> 2, (addr(be, out) >>> 2) + 8);
        return out;
      });
    for (const v of [3, Number.NaN]) {
      const out = writing(v)(args(a, b) as never) as tf.TensorInfo;
      const t = tf.engine().makeTensorFromTensorInfo(out);
      expect(Number.isNaN(v) ? Number.isNaN(t.dataSync()[0]) : t.dataSync()[0] === v).toBe(true);
      t.dispose();
    }
    // The mark is a signalling NaN, which arithmetic never writes.
    expect(new Uint32Array(new Float32Array([Number.NaN, 0 / 0]).buffer).every((bits) => bits !== UNWRITTEN)).toBe(true);
    tf.dispose([a, b]);
  });
});
