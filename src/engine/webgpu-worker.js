// The thread that owns the WebGPU device (see webgpu-remote.ts): tfjs's WebGPU backend on Dawn,
// running the kernels the main thread forwards. Reads from a GPU complete asynchronously (a
// mapAsync that this thread's event loop resolves), so a main thread blocked in a synchronous
// read (dataSync) gets its values from here, through shared memory.
import { createRequire } from 'node:module';
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

function reply(ctl, buf, status, text) {
  const bytes = new Uint8Array(buf);
  const { written } = encoder.encodeInto(text, bytes);
  ctl[1] = written;
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
        const dataId = backend.write(m.values, m.shape, m.dtype);
        byId.set(m.id, dataId);
        ids.set(dataId, m.id);
        if (m.refCount > 1) for (let i = 1; i < m.refCount; i++) backend.incRef(dataId);
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
        const out = m.name === 'AddN' ? addN(config, inputs) : config.kernelFunc({ inputs, backend, attrs: m.attrs });
        if (gpuError) throw new Error(`the GPU refused a kernel (${gpuError.split('\n')[0]})`);
        const list = (Array.isArray(out) ? out : [out]).map((o) => ({ id: idOf(o.dataId), shape: o.shape, dtype: o.dtype }));
        reply(m.ctl, m.buf, 1, JSON.stringify({ array: Array.isArray(out), list }));
        break;
      }
      case 'read': {
        const values = await backend.read(byId.get(m.id));
        if (m.ctl) {
          const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
          new Uint8Array(m.data).set(bytes.subarray(0, m.data.byteLength));
          reply(m.ctl, m.buf, 1, JSON.stringify({ kind: values.constructor.name, length: values.length }));
        } else {
          parentPort.postMessage({ op: 'read', seq: m.seq, values });
        }
        break;
      }
      case 'memory':
        reply(m.ctl, m.buf, 1, JSON.stringify(backend.memory()));
        break;
      default:
        throw new Error(`webgpu worker: unknown op ${m.op}`);
    }
  } catch (e) {
    const msg = e instanceof Error ? `${e.message}` : String(e);
    if (m.ctl) reply(m.ctl, m.buf, 2, msg);
    else if (m.op === 'read') parentPort.postMessage({ op: 'read', seq: m.seq, error: msg });
    else parentPort.postMessage({ op: 'error', error: `${m.op}: ${msg}` });
  }
});

start().then(
  () => parentPort.postMessage({ op: 'ready', info: { ...backend.adapterInfo } }),
  (e) => parentPort.postMessage({ op: 'ready', error: e instanceof Error ? e.message : String(e) }),
);
