// The thread that owns the WebGPU device (see webgpu-remote.ts): tfjs's WebGPU backend on Dawn,
// running the kernels the main thread forwards. Reads from a GPU complete asynchronously (a
// mapAsync that this thread's event loop resolves), so a main thread blocked in a synchronous
// read (dataSync) gets its values from here, through shared memory.
import { createRequire } from 'node:module';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { parentPort, workerData } from 'node:worker_threads';

const require = createRequire(import.meta.url);
const tf = require('@tensorflow/tfjs-core');

/** id -> this backend's dataId, and back. */
const byId = new Map();
const ids = new Map();
let backend = null;
let gpuError = null;
let madeHere = 0;
const encoder = new TextEncoder();
/** A binding limit lowered below the adapter's (R1_BINDING_LIMIT, or the main thread's 'limit'). */
let lowered = envLimit();

function envLimit() {
  const raw = process.env.R1_BINDING_LIMIT;
  return raw ? Number(raw) : null;
}

/** The largest tensor, in bytes, a kernel may bind whole. */
function bindingLimit() {
  const l = backend.device.limits;
  return Math.min(l.maxStorageBufferBindingSize, l.maxBufferSize, lowered ?? Infinity);
}

const BYTES_PER_ELEMENT = 4; // tfjs's WebGPU buffers: float32, int32, and bool as int32
const bytesOf = (t) => t.shape.reduce((a, b) => a * b, 1) * BYTES_PER_ELEMENT;
const mib = (bytes) => `${(bytes / 2 ** 20).toFixed(bytes < 2 ** 20 ? 3 : 1)} MiB`;
/** Kernels that hand back their input's data and dispatch nothing: any size passes. */
const NO_BINDING = new Set(['Reshape', 'Identity']);

/** The error for a kernel that would bind a tensor over the limit: Dawn reports such a binding as
 * a validation error on its own time (uncapturederror, after the kernel returned), and the output
 * would hold whatever the buffer held, so it is refused here, before anything runs. */
function oversize(name, t, role) {
  const l = backend.device.limits;
  const which =
    lowered !== null && lowered < Math.min(l.maxStorageBufferBindingSize, l.maxBufferSize)
      ? `the binding limit lowered to ${lowered} bytes (R1_BINDING_LIMIT)`
      : bytesOf(t) > l.maxBufferSize
        ? `this adapter's maxBufferSize (${mib(l.maxBufferSize)})`
        : `this adapter's maxStorageBufferBindingSize (${mib(l.maxStorageBufferBindingSize)})`;
  return new Error(
    `kernel ${name}: its ${role} [${t.shape.join(', ')}] ${t.dtype} is ${mib(bytesOf(t))}, over ${which}; ` +
      'the GPU cannot run it (tensors that large must be split by the caller: model/vocab-split.ts)',
  );
}

/** Elements of shape[from..]. */
const sizeFrom = (shape, from) => shape.slice(from).reduce((a, b) => a * b, 1);

/** Calls f(src, dst, n) for each contiguous run of elements a slice [begin, begin + size) of a
 * row-major `shape` is made of, offsets in elements. */
function sliceRuns(shape, begin, size, f) {
  let k = shape.length - 1; // axes after k are taken whole: a run is size[k] x the rest
  while (k > 0 && begin[k] === 0 && size[k] === shape[k]) k--;
  const inner = sizeFrom(shape, k + 1),
    run = size[k] * inner;
  const outer = size.slice(0, k).reduce((a, b) => a * b, 1);
  const index = new Array(k).fill(0);
  for (let o = 0; o < outer; o++) {
    let src = begin[k] * inner;
    for (let i = 0; i < k; i++) src += (begin[i] + index[i]) * sizeFrom(shape, i + 1);
    f(src, o * run, run);
    for (let i = k - 1; i >= 0; i--) {
      if (++index[i] < size[i]) break;
      index[i] = 0;
    }
  }
}

/** A fresh tensor on the GPU whose buffer is filled by `copy(encoder, buffer)`. */
function gpuTensor(shape, dtype, copy) {
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const buffer = backend.bufferManager.acquireBuffer(sizeFrom(shape, 0) * BYTES_PER_ELEMENT, usage);
  backend.ensureCommandEncoderReady();
  backend.endComputePassEncoder();
  copy(backend.commandEncoder, buffer);
  backend.submitQueue();
  const info = backend.makeTensorInfo(shape, dtype);
  backend.tensorMap.get(info.dataId).resource = buffer;
  return info;
}

/** Puts a tensor's data on the GPU when it fits one buffer (then tfjs drops its CPU copy); false
 * when it stays on the CPU. */
function onGpu(t) {
  const data = backend.tensorMap.get(t.dataId);
  if (data.resource) return true;
  if (bytesOf(t) > backend.device.limits.maxBufferSize) return false;
  backend.uploadToGPU(t.dataId);
  return true;
}

/** Slice of a tensor over the binding limit: no kernel (it would bind the whole input), but
 * buffer-to-buffer copies of the slice's contiguous runs (a row block of [V, C] is one run), or a
 * copy on the CPU for a tensor too large for one buffer. */
function bigSlice(x, attrs) {
  const [begin, size] = tf.slice_util.parseSliceParams(x, attrs.begin, attrs.size);
  if (bytesOf({ shape: size }) > bindingLimit()) throw oversize('Slice', { shape: size, dtype: x.dtype }, 'output');
  if (!onGpu(x)) {
    const values = backend.tensorMap.get(x.dataId).values;
    const out = new values.constructor(sizeFrom(size, 0));
    sliceRuns(x.shape, begin, size, (src, dst, n) => out.set(values.subarray(src, src + n), dst));
    return backend.makeTensorInfo(size, x.dtype, out);
  }
  const from = backend.tensorMap.get(x.dataId).resource;
  return gpuTensor(size, x.dtype, (encoder, to) =>
    sliceRuns(x.shape, begin, size, (src, dst, n) =>
      encoder.copyBufferToBuffer(from, src * BYTES_PER_ELEMENT, to, dst * BYTES_PER_ELEMENT, n * BYTES_PER_ELEMENT),
    ),
  );
}

/** Concat whose output is over the binding limit (a gradient or the logits assembled from
 * blocks): buffer-to-buffer copies, each input's part of each outer row in turn. */
function bigConcat(inputs, attrs) {
  const axis = tf.util.parseAxisParam(attrs.axis, inputs[0].shape)[0];
  const shape = inputs[0].shape.slice();
  shape[axis] = inputs.reduce((a, t) => a + t.shape[axis], 0);
  const out = { shape, dtype: inputs[0].dtype };
  if (bytesOf(out) > backend.device.limits.maxBufferSize) throw oversize('Concat', out, 'output');
  const outer = sizeFrom(shape.slice(0, axis), 0),
    row = sizeFrom(shape, axis);
  for (const t of inputs) if (!onGpu(t)) throw oversize('Concat', t, 'input');
  return gpuTensor(shape, out.dtype, (encoder, to) => {
    let at = 0;
    for (const t of inputs) {
      const part = sizeFrom(t.shape, axis),
        from = backend.tensorMap.get(t.dataId).resource;
      for (let o = 0; o < outer; o++) {
        encoder.copyBufferToBuffer(from, o * part * BYTES_PER_ELEMENT, to, (o * row + at) * BYTES_PER_ELEMENT, part * BYTES_PER_ELEMENT);
      }
      at += part;
    }
  });
}

/** Runs a kernel, splitting or refusing what exceeds the binding limit. */
function runKernel(config, name, inputs, attrs) {
  const list = Array.isArray(inputs) ? inputs : Object.values(inputs);
  const limit = bindingLimit();
  if (!NO_BINDING.has(name)) {
    const big = list.find((t) => bytesOf(t) > limit);
    if (name === 'Slice' && big && list.length === 1) return bigSlice(list[0], attrs);
    if (name === 'Concat' && list.length > 1) {
      const total = list.reduce((a, t) => a + bytesOf(t), 0);
      if (total > limit) return bigConcat(list, attrs);
    }
    if (big) throw oversize(name, big, 'input');
  }
  const out = name === 'AddN' ? addN(config, inputs) : config.kernelFunc({ inputs, backend, attrs });
  const outs = Array.isArray(out) ? out : [out];
  const bad = NO_BINDING.has(name) ? undefined : outs.find((o) => bytesOf(o) > limit);
  if (bad) {
    for (const o of outs) backend.disposeData(o.dataId);
    throw oversize(name, bad, 'output');
  }
  return out;
}

function reply(m, status, text) {
  const { ctl, buf } = m;
  const bytes = new Uint8Array(buf);
  const { written } = encoder.encodeInto(text, bytes);
  ctl[1] = written;
  ctl[2] = m.call;
  Atomics.store(ctl, 0, status);
  Atomics.notify(ctl, 0);
}

function idOf(dataId) {
  let id = ids.get(dataId);
  if (id === undefined) {
    id = --madeHere; // ids made here are negative, the main thread's positive; never reused
    ids.set(dataId, id);
    byId.set(id, dataId);
  }
  return id;
}

function info(t) {
  const dataId = byId.get(t.id);
  if (!dataId) throw new Error(`webgpu worker: unknown tensor data ${t.id}`);
  // The main thread's view of a tensor must match the data it names here (a reshape shares data
  // under another shape of the same size): a mismatch would compute on the wrong numbers.
  const held = backend.tensorMap.get(dataId);
  if (held && t.shape.reduce((a, b) => a * b, 1) !== held.shape.reduce((a, b) => a * b, 1)) {
    throw new Error(`webgpu worker: tensor ${t.id} is [${t.shape}] on the main thread but its data here is [${held.shape}]`);
  }
  return { dataId, shape: t.shape, dtype: t.dtype };
}

function forget(id) {
  const dataId = byId.get(id);
  if (dataId === undefined) return;
  byId.delete(id);
  ids.delete(dataId);
}

async function start() {
  const { create, globals } = await import('webgpu');
  for (const [k, v] of Object.entries(globals)) if (!(k in globalThis)) globalThis[k] = v;
  const gpu = create(workerData.via === 'default' ? [] : ['backend=opengles']);
  if (!globalThis.navigator) Object.defineProperty(globalThis, 'navigator', { value: {}, configurable: true, writable: true });
  if (!globalThis.navigator.gpu) Object.defineProperty(globalThis.navigator, 'gpu', { value: gpu, configurable: true, writable: true });
  const { WebGPUBackend } = require('@tensorflow/tfjs-backend-webgpu');
  if (tf.findBackendFactory('webgpu')) tf.removeBackend('webgpu');
  const adapter = await gpu.requestAdapter(
    workerData.via === 'default' ? { powerPreference: 'high-performance' } : { featureLevel: 'compatibility' },
  );
  if (!adapter) throw new Error('the WebGPU adapter is gone');
  const l = adapter.limits;
  const device = await adapter.requestDevice({
    requiredFeatures: adapter.features.has('timestamp-query') ? ['timestamp-query'] : [],
    requiredLimits: {
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
      maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxBufferSize: l.maxBufferSize,
      maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
      maxComputeWorkgroupSizeY: l.maxComputeWorkgroupSizeY,
      maxComputeWorkgroupSizeZ: l.maxComputeWorkgroupSizeZ,
      maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
      // The adapter's own maxima: tfjs's kernels bind many buffers (AddN one per input).
      maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
      maxBindGroups: l.maxBindGroups,
    },
  });
  // Validation errors (a kernel the device cannot run) are reported asynchronously: keep the
  // first, and fail the next call with it rather than compute on silently.
  device.addEventListener?.('uncapturederror', (e) => {
    gpuError ??= e.error?.message ?? String(e);
  });
  tf.registerBackend('webgpu', () => new WebGPUBackend(device, adapter.info), 1);
  tf.env().set('PROD', true);
  if (!(await tf.setBackend('webgpu'))) throw new Error('tfjs could not start its WebGPU backend');
  backend = tf.backend();
  boundPool(backend.bufferManager);
}

/** tfjs keeps a tensor's values on the CPU once read, beside its GPU buffer: the main thread has
 * its own copy by then, so a tensor that is on the GPU drops this one. */
function forgetCpuCopy(dataId) {
  const data = backend.tensorMap.get(dataId);
  if (data?.resource && data.values) data.values = null;
}

/** The most bytes of GPU buffers in use at once since the backend started (tf.memory().numBytesInGPUPeak). */
let peakBytesInUse = 0;

/** Free buffers tfjs's buffer manager may keep for reuse, in bytes, beyond a quarter of those in use. */
const POOL_FLOOR_BYTES = 64 * 2 ** 20;

/** tfjs's buffer manager keeps every freed buffer for reuse, keyed by its exact size, and never lets
 * one go: with shapes that change from call to call (rollouts of every length, log-prob passes),
 * the pool grows without end, and on a software adapter every byte of it is host memory. Here
 * the pool keeps at most max(64 MiB, a quarter of the bytes in use); a buffer past that is
 * destroyed when freed, the oldest pooled ones first when the pool is over. */
function boundPool(manager) {
  let pooled = 0;
  const order = []; // pooled buffers, oldest first
  const acquire = manager.acquireBuffer.bind(manager),
    release = manager.releaseBuffer.bind(manager);
  manager.acquireBuffer = (size, usage, mappedAtCreation = false, reuse = true) => {
    const buffer = acquire(size, usage, mappedAtCreation, reuse);
    peakBytesInUse = Math.max(peakBytesInUse, manager.numBytesUsed);
    const at = order.indexOf(buffer);
    if (at >= 0) {
      order.splice(at, 1);
      pooled -= size;
    }
    return buffer;
  };
  manager.releaseBuffer = (buffer, reuse = true) => {
    const cap = Math.max(POOL_FLOOR_BYTES, manager.numBytesUsed / 4);
    if (!reuse || buffer.size > cap || manager.freeBuffers.size === 0) return release(buffer, reuse && buffer.size <= cap);
    release(buffer, true);
    order.push(buffer);
    pooled += buffer.size;
    while (pooled > cap && order.length) {
      const old = order.shift();
      const free = manager.freeBuffers.get(`${old.size}_${old.usage}`);
      const i = free ? free.indexOf(old) : -1;
      if (i >= 0) {
        free.splice(i, 1);
        manager.numFreeBuffers--;
        manager.numBytesAllocated -= old.size;
        old.destroy();
      }
      pooled -= old.size;
    }
  };
}

/** AddN binds one storage buffer per input, and tfjs's kernel does not split (Concat does):
 * sums of at most (limit - 1) inputs, then their sum. */
function addN(config, inputs) {
  const most = Math.max(2, backend.device.limits.maxStorageBuffersPerShaderStage - 1);
  if (inputs.length <= most) return config.kernelFunc({ inputs, backend, attrs: {} });
  const partial = [];
  for (let i = 0; i < inputs.length; i += most) {
    const chunk = inputs.slice(i, i + most);
    partial.push(chunk.length === 1 ? null : config.kernelFunc({ inputs: chunk, backend, attrs: {} }));
    if (chunk.length === 1) partial[partial.length - 1] = chunk[0];
  }
  const out = addN(config, partial);
  for (const t of partial) if (!inputs.includes(t)) backend.disposeData(t.dataId);
  return out;
}

parentPort.on('message', async (m) => {
  try {
    switch (m.op) {
      case 'write': {
        const shared = m.values?.shared;
        const values = shared ? new { Float32Array, Int32Array, Uint8Array }[m.values.kind](shared) : m.values;
        const dataId = backend.write(values, m.shape, m.dtype);
        byId.set(m.id, dataId);
        ids.set(dataId, m.id);
        if (m.refCount > 1) for (let i = 1; i < m.refCount; i++) backend.incRef(dataId);
        // Large values (weights) go to the GPU now, and their CPU copy with them (tfjs would keep
        // it until a kernel first reads the tensor: all of a model's weights, twice, at load).
        if (shared && m.dtype !== 'string') onGpu({ dataId, shape: m.shape });
        break;
      }
      case 'incRef':
        backend.incRef(byId.get(m.id));
        break;
      case 'dispose': {
        const dataId = byId.get(m.id);
        if (dataId !== undefined && backend.disposeData(dataId, m.force)) forget(m.id);
        break;
      }
      case 'kernel': {
        const config = tf.getKernel(m.name, 'webgpu');
        if (!config) throw new Error(`kernel ${m.name} is not registered for the webgpu backend`);
        const inputs = m.array ? m.inputs.map(info) : Object.fromEntries(Object.entries(m.inputs).map(([k, t]) => [k, info(t)]));
        const out = runKernel(config, m.name, inputs, m.attrs);
        if (gpuError) throw new Error(`the GPU refused a kernel (${gpuError.split('\n')[0]})`);
        const list = (Array.isArray(out) ? out : [out]).map((o) => ({ id: idOf(o.dataId), shape: o.shape, dtype: o.dtype }));
        reply(m, 1, JSON.stringify({ array: Array.isArray(out), list }));
        break;
      }
      case 'read': {
        const dataId = byId.get(m.id);
        const values = await backend.read(dataId);
        forgetCpuCopy(dataId);
        if (gpuError) throw new Error(`the GPU refused a kernel (${gpuError.split('\n')[0]})`);
        if (m.ctl) {
          const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
          new Uint8Array(m.data).set(bytes.subarray(0, m.data.byteLength));
          reply(m, 1, JSON.stringify({ kind: values.constructor.name, length: values.length }));
        } else {
          parentPort.postMessage({ op: 'read', seq: m.seq, values });
        }
        break;
      }
      case 'collect':
        // The shared memory of uploaded values (see collectAfter in webgpu-remote.ts).
        setFlagsFromString('--expose-gc');
        runInNewContext('gc')();
        break;
      case 'limit':
        lowered = m.bytes;
        reply(m, 1, '{}');
        break;
      case 'memory':
        reply(m, 1, JSON.stringify({ ...backend.memory(), numBytesInGPUPeak: peakBytesInUse }));
        break;
      default:
        throw new Error(`webgpu worker: unknown op ${m.op}`);
    }
  } catch (e) {
    const msg = e instanceof Error ? `${e.message}` : String(e);
    if (m.ctl) reply(m, 2, msg);
    else if (m.op === 'read') parentPort.postMessage({ op: 'read', seq: m.seq, error: msg });
    else parentPort.postMessage({ op: 'error', error: `${m.op}: ${msg}` });
  }
});

start().then(
  () => {
    const { maxStorageBufferBindingSize, maxBufferSize } = backend.device.limits;
    parentPort.postMessage({ op: 'ready', info: { ...backend.adapterInfo }, limits: { maxStorageBufferBindingSize, maxBufferSize } });
  },
  (e) => parentPort.postMessage({ op: 'ready', error: e instanceof Error ? e.message : String(e) }),
);
