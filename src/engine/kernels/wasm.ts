// Reaching the TF.js WebAssembly backend from our kernels: tensor addresses in its heap, scratch
// space, and our AssemblyScript modules (kernels/build/*.wasm), which import that heap as their
// own memory so kernels read and write tensors in place.
import * as tf from '@tensorflow/tfjs-core';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { UserError } from '../../errors.ts';

// The project compiles without the DOM library, so the WebAssembly JS API is typed here, as used.
type WasmMemory = { buffer: ArrayBufferLike };
const WA = (
  globalThis as unknown as {
    WebAssembly: {
      Module: new (bytes: Uint8Array) => object;
      Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
      Memory: abstract new (...args: never[]) => WasmMemory;
    };
  }
).WebAssembly;

/** The parts of the wasm backend (tfjs-backend-wasm's BackendWasm) that the kernels use. */
export type WasmBackend = {
  wasm: {
    asm: { memory: WasmMemory };
    HEAPF32: Float32Array;
    _malloc(bytes: number): number;
    _free(ptr: number): void;
  };
  dataIdMap: { get(dataId: object): { memoryOffset: number } };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  disposeData(dataId: object, force?: boolean): boolean;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
};

export type KernelArgs = { inputs: Record<string, tf.TensorInfo>; backend: WasmBackend; attrs: Record<string, unknown> };

const BUILD_DIR = fileURLToPath(new URL('../../../kernels/build/', import.meta.url));

/** Byte offset of a tensor's data in the wasm heap. */
export function addr(backend: WasmBackend, t: tf.TensorInfo): number {
  return backend.dataIdMap.get(t.dataId).memoryOffset;
}

const instances = new WeakMap<object, Map<string, Record<string, unknown>>>();

/** Exports of kernels/build/<name>.wasm, instantiated once per backend over its heap. */
export function kernelModule<T>(backend: WasmBackend, name: string): T {
  let byName = instances.get(backend);
  if (!byName) instances.set(backend, (byName = new Map()));
  let exports = byName.get(name);
  if (!exports) {
    const file = BUILD_DIR + `${name}.wasm`;
    if (!existsSync(file)) {
      throw new UserError(`WebAssembly kernel ${file} is missing: run \`npm install\` (its prepare script builds kernels/build)`);
    }
    const memory = backend.wasm.asm.memory;
    const module = new WA.Module(readFileSync(file));
    exports = new WA.Instance(module, { env: { memory } }).exports;
    byName.set(name, exports);
  }
  return exports as T;
}

/** True when the wasm kernels can run here: an unshared heap (the multi-threaded build shares its
 * memory, and our modules import an unshared one). */
export function heapUsable(backend: WasmBackend): boolean {
  const memory = backend.wasm?.asm?.memory;
  return memory instanceof WA.Memory && !(memory.buffer instanceof SharedArrayBuffer);
}

const scratchSpace = new WeakMap<object, { ptr: number; bytes: number }>();

/** Heap space of at least `bytes` owned by this module, reused across calls (kernels run one at a
 * time). Allocating can grow the heap, so call it before taking typed-array views. */
export function scratch(backend: WasmBackend, bytes: number): number {
  const cur = scratchSpace.get(backend);
  if (cur && cur.bytes >= bytes) return cur.ptr;
  if (cur) backend.wasm._free(cur.ptr);
  const size = Math.max(bytes, 2 * (cur?.bytes ?? 0), 1 << 16);
  const ptr = backend.wasm._malloc(size) >>> 0;
  scratchSpace.set(backend, { ptr, bytes: size });
  return ptr;
}

export function wasmBackend(): WasmBackend | null {
  return tf.getBackend() === 'wasm' ? (tf.backend() as unknown as WasmBackend) : null;
}
