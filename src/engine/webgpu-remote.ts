// tfjs's WebGPU backend for Node, run from a worker thread. In Node a GPU buffer can only be read
// asynchronously (mapAsync resolves on the event loop of the thread that owns the device), and
// tfjs's WebGPU backend reads synchronously (dataSync, which training and generation use) only
// through a browser's OffscreenCanvas. So the device lives in a worker (webgpu-worker.js) and the
// 'webgpu' backend of this thread forwards every kernel there; a synchronous read blocks on shared
// memory (Atomics.wait) while the worker's event loop completes the GPU read. The model's maths
// is tfjs's WebGPU kernels unchanged; only where they run moves.
import * as tf from '@tensorflow/tfjs-core';
import { createRequire } from 'node:module';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Worker } from 'node:worker_threads';

const require = createRequire(import.meta.url);

type Remote = { id: number; shape: number[]; dtype: tf.DataType; refCount: number };
/** The device's size limits, in bytes: one binding of a kernel, one buffer. */
export type BufferLimits = { maxStorageBufferBindingSize: number; maxBufferSize: number };
type Wire = { id: number; shape: number[]; dtype: tf.DataType };
const TIMEOUT_MS = 600_000;
const decoder = new TextDecoder();

export class RemoteWebGPUBackend extends tf.KernelBackend {
  private readonly data = new Map<object, Remote>();
  private readonly byId = new Map<number, object>();
  private nextId = 1;
  private seq = 0;
  private readonly pending = new Map<number, { resolve: (v: tf.backend_util.BackendValues) => void; reject: (e: Error) => void }>();
  /** [status (0 waiting, 1 done, 2 failed), reply length, the call's number]. */
  private readonly ctl = new Int32Array(new SharedArrayBuffer(12));
  private calls = 0;
  private readonly buf = new SharedArrayBuffer(1 << 20);
  private asyncError: string | null = null;

  private constructor(
    private readonly worker: Worker,
    readonly adapterInfo: Record<string, string>,
    /** The device's limits as the adapter gives them (a lowered limit for tests: setBindingLimit). */
    readonly limits: BufferLimits,
  ) {
    super();
    worker.on('message', (m: { op: string; seq?: number; values?: tf.backend_util.BackendValues; error?: string }) => {
      if (m.op === 'read') {
        const p = this.pending.get(m.seq!);
        this.pending.delete(m.seq!);
        if (m.error) p?.reject(new Error(m.error));
        else p?.resolve(m.values!);
      } else if (m.op === 'error') this.asyncError = m.error ?? 'unknown error';
    });
    worker.unref();
  }

  /** Starts the worker on the adapter Dawn finds through `via`. */
  static async start(via: 'default' | 'opengles'): Promise<RemoteWebGPUBackend> {
    const worker = new Worker(new URL('./webgpu-worker.js', import.meta.url), { workerData: { via } });
    const ready = await new Promise<{ info?: Record<string, string>; limits?: BufferLimits; error?: string }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    if (ready.error) {
      await worker.terminate();
      throw new Error(ready.error);
    }
    return new RemoteWebGPUBackend(worker, ready.info ?? {}, ready.limits!);
  }

  /** Posts a message and blocks until the worker answers in shared memory; returns its text. */
  private call(message: Record<string, unknown>, data?: SharedArrayBuffer): string {
    this.check();
    const call = ++this.calls;
    Atomics.store(this.ctl, 0, 0);
    this.worker.postMessage({ ...message, call, ctl: this.ctl, buf: this.buf, data });
    // Wait until the status is set, not merely until woken: the GPU thread sets the status, then
    // notifies; when it answered before this thread began to wait, that notify can land in the
    // next call's wait, which would then read the previous answer as its own (outputs mapped to
    // the wrong tensors: shape errors at best, wrong numbers at worst).
    const deadline = Date.now() + TIMEOUT_MS;
    while (Atomics.load(this.ctl, 0) === 0) {
      const left = deadline - Date.now();
      if (left <= 0 || Atomics.wait(this.ctl, 0, 0, left) === 'timed-out')
        throw new Error(`webgpu: no answer from the GPU thread to ${String(message.op)}`);
    }
    if (this.ctl[2] !== call)
      throw new Error(
        `webgpu ${String(message.op)} ${String(message.name ?? '')}: the GPU thread answered call ${this.ctl[2]}, not this one (${call})`,
      );
    const text = decoder.decode(new Uint8Array(this.buf, 0, this.ctl[1]).slice());
    if (this.ctl[0] === 2) throw new Error(`webgpu ${String(message.op)} ${String(message.name ?? '')}: ${text}`);
    return text;
  }

  private check(): void {
    if (this.asyncError) {
      const e = this.asyncError;
      this.asyncError = null;
      throw new Error(`webgpu: ${e}`);
    }
  }

  private remote(dataId: object): Remote {
    const r = this.data.get(dataId);
    if (!r) throw new Error('webgpu: tensor data not on this backend');
    return r;
  }

  private wire(t: tf.TensorInfo): Wire {
    const r = this.remote(t.dataId);
    return { id: r.id, shape: t.shape, dtype: t.dtype };
  }

  override write(values: tf.backend_util.BackendValues, shape: number[], dtype: tf.DataType): object {
    const dataId = {};
    this.move(dataId, values, shape, dtype, 1);
    return dataId;
  }

  override move(dataId: object, values: tf.backend_util.BackendValues, shape: number[], dtype: tf.DataType, refCount: number): void {
    const id = this.nextId++;
    this.data.set(dataId, { id, shape, dtype, refCount });
    this.byId.set(id, dataId);
    const shared = shareable(values);
    this.worker.postMessage({ op: 'write', id, values: shared, shape, dtype, refCount });
    if (shared !== values) this.collectAfter((values as ArrayBufferView).byteLength);
  }

  private sharedSinceCollect = 0;

  /** Values passed in shared memory are garbage on both threads once uploaded, but a thread that
   * allocates little collects late: loading a 0.5 B model left 1.9 GB of them alive after the main
   * thread's own collection. So every COLLECT_BYTES of them, both threads collect. */
  private collectAfter(bytes: number): void {
    this.sharedSinceCollect += bytes;
    if (this.sharedSinceCollect < COLLECT_BYTES) return;
    this.sharedSinceCollect = 0;
    this.worker.postMessage({ op: 'collect' });
    collectGarbage();
  }

  /** Runs kernel `name` on the GPU thread; outputs that share an input's data share its dataId. */
  runRemote(name: string, inputs: tf.NamedTensorInfoMap | tf.TensorInfo[], attrs: unknown): tf.TensorInfo | tf.TensorInfo[] {
    const array = Array.isArray(inputs);
    const wired = array
      ? (inputs as tf.TensorInfo[]).map((t) => this.wire(t))
      : Object.fromEntries(Object.entries(inputs).map(([k, t]) => [k, this.wire(t!)]));
    const { array: many, list } = JSON.parse(this.call({ op: 'kernel', name, inputs: wired, array, attrs })) as {
      array: boolean;
      list: Wire[];
    };
    const outs = list.map((o) => {
      let dataId = this.byId.get(o.id);
      if (dataId) this.data.get(dataId)!.refCount++;
      else {
        dataId = {};
        this.byId.set(o.id, dataId);
        this.data.set(dataId, { id: o.id, shape: o.shape, dtype: o.dtype, refCount: 1 });
      }
      return { dataId, shape: o.shape, dtype: o.dtype };
    });
    return many ? outs : outs[0];
  }

  override readSync(dataId: object): tf.backend_util.BackendValues {
    const r = this.remote(dataId);
    if (r.dtype === 'string' || r.dtype === 'complex64') throw new Error(`webgpu: cannot read ${r.dtype} tensors synchronously`);
    const n = r.shape.reduce((a, b) => a * b, 1);
    const shared = new SharedArrayBuffer(Math.max(4, n * 4));
    const { kind, length } = JSON.parse(this.call({ op: 'read', id: r.id }, shared)) as { kind: string; length: number };
    const Ctor = { Float32Array, Int32Array, Uint8Array }[kind as 'Float32Array'] ?? Float32Array;
    const out = new Ctor(length);
    new Uint8Array(out.buffer).set(new Uint8Array(shared, 0, out.byteLength));
    return out;
  }

  override read(dataId: object): Promise<tf.backend_util.BackendValues> {
    this.check();
    const r = this.remote(dataId);
    const seq = this.seq++;
    return new Promise((resolve, reject) => {
      this.pending.set(seq, { resolve, reject });
      this.worker.ref(); // keep the process alive until the answer comes
      this.worker.postMessage({ op: 'read', id: r.id, seq });
    }).finally(() => {
      if (!this.pending.size) this.worker.unref();
    }) as Promise<tf.backend_util.BackendValues>;
  }

  override refCount(dataId: object): number {
    return this.data.get(dataId)?.refCount ?? 0;
  }

  override incRef(dataId: object): void {
    const r = this.remote(dataId);
    r.refCount++;
    this.worker.postMessage({ op: 'incRef', id: r.id });
  }

  override disposeData(dataId: object, force = false): boolean {
    const r = this.data.get(dataId);
    if (!r) return true;
    r.refCount = force ? 0 : r.refCount - 1;
    this.worker.postMessage({ op: 'dispose', id: r.id, force });
    if (r.refCount > 0) return false;
    this.data.delete(dataId);
    this.byId.delete(r.id);
    return true;
  }

  /** Makes the GPU thread refuse any binding over `bytes` as if the adapter's limit were that
   * (null: the adapter's own), so tests run the split paths and the refusal on a tiny model. */
  setBindingLimit(bytes: number | null): void {
    this.call({ op: 'limit', bytes });
  }

  override numDataIds(): number {
    return this.data.size;
  }

  override memory(): { unreliable: boolean } {
    return { unreliable: true, ...(JSON.parse(this.call({ op: 'memory' })) as object) };
  }

  override async time(f: () => void): Promise<tf.BackendTimingInfo> {
    const t0 = performance.now();
    f();
    return { kernelMs: performance.now() - t0, wallMs: performance.now() - t0 } as tf.BackendTimingInfo;
  }

  override floatPrecision(): 32 {
    return 32;
  }

  override epsilon(): number {
    return 1e-7;
  }

  override dispose(): void {
    void this.worker.terminate();
  }
}

/** Values to post to the GPU thread: a large typed array as a copy in shared memory, which the
 * message passes by reference (a plain typed array is cloned into the message and cloned again
 * out of it: for the weights of a 0.5 B model, 4 GB more at once). The GPU thread uploads it and
 * lets it go. */
function shareable(values: tf.backend_util.BackendValues | null): unknown {
  if (!ArrayBuffer.isView(values) || values.byteLength < SHARE_BYTES) return values;
  const shared = new SharedArrayBuffer(values.byteLength);
  new Uint8Array(shared).set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
  return { shared, kind: values.constructor.name };
}
const SHARE_BYTES = 1 << 20;
const COLLECT_BYTES = 512 * 2 ** 20;

let gc: (() => void) | null = null;
/** V8's full collection, made callable at run time (as --expose-gc would). */
export function collectGarbage(): void {
  if (!gc) {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as () => void;
  }
  gc();
}

/** Kernel names of tfjs's WebGPU backend; each registered here as a forwarder to the GPU thread. */
let kernelsInstalled = false;
export function installRemoteKernels(): void {
  if (kernelsInstalled) return;
  kernelsInstalled = true;
  // Registers the package's kernels under 'webgpu' (its backend factory only where navigator.gpu
  // exists, which this thread does not set); each is replaced by a forwarder.
  require('@tensorflow/tfjs-backend-webgpu');
  for (const k of tf.getKernelsForBackend('webgpu')) {
    tf.unregisterKernel(k.kernelName, 'webgpu');
    tf.registerKernel({
      kernelName: k.kernelName,
      backendName: 'webgpu',
      kernelFunc: ({ inputs, backend, attrs }) => (backend as unknown as RemoteWebGPUBackend).runRemote(k.kernelName, inputs, attrs),
    });
  }
}
