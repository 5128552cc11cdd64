// Backend choice: the only place that knows which TensorFlow.js backend runs the maths.
import * as tf from '@tensorflow/tfjs-core';
import { createRequire } from 'node:module';
import { UserError } from '../errors.ts';
import { installWasmPatches, matmulPath } from './kernels/index.ts';
import { loadBlas, MATMUL_CHOICES, MATMUL_ENV, type MatmulChoice } from './kernels/blas.ts';
import { registerWebGPU, SOFTWARE_GPU_ENV, softwareAllowedByEnv, webgpuAdapter, type AdapterReport } from './webgpu.ts';
import type { RemoteWebGPUBackend } from './webgpu-remote.ts';

export const BACKENDS = ['auto', 'tensorflow', 'webgpu', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKENDS)[number];

/** Whether a backend's tensors live on one device (a GPU): every thread beyond the main one would
 * open a device of its own, with its own copy of the weights, and compete for the same GPU, so
 * `auto` trains and samples on the main thread alone there. */
export function onOneDevice(backend: string): boolean {
  return backend === 'webgpu' || backend === 'tensorflow';
}

export type BackendOptions = {
  /** Allow WebGPU on a software adapter (llvmpipe): only for `webgpu` asked by name, never `auto`.
   * Also allowed by the environment variable R1_ALLOW_SOFTWARE_GPU=1. */
  allowSoftwareGpu?: boolean;
  /** Matrix products on the wasm backend: `auto` (the machine's OpenBLAS where it loads, else
   * XNNPACK), `blas` (fail without it) or `xnnpack`. Default: the environment variable R1_MATMUL,
   * else auto. Worker threads follow the choice. */
  matmul?: MatmulChoice;
};

const require = createRequire(import.meta.url);

type Provider = { name: Exclude<BackendName, 'auto'>; pkg: string; tfName: string };

/** Packages that provide each concrete backend, in the order `auto` tries them: TensorFlow's CUDA
 * build, WebGPU on a hardware adapter, TensorFlow's CPU build, WebAssembly, plain JavaScript. */
export const PROVIDERS: Provider[] = [
  { name: 'tensorflow', pkg: '@tensorflow/tfjs-node-gpu', tfName: 'tensorflow' },
  { name: 'webgpu', pkg: '@tensorflow/tfjs-backend-webgpu', tfName: 'webgpu' },
  { name: 'tensorflow', pkg: '@tensorflow/tfjs-node', tfName: 'tensorflow' },
  { name: 'wasm', pkg: '@tensorflow/tfjs-backend-wasm', tfName: 'wasm' },
  { name: 'cpu', pkg: '@tensorflow/tfjs-backend-cpu', tfName: 'cpu' },
];

/** Loads a package; the error message when it does not load. */
export function loadError(pkg: string): string | null {
  try {
    require(pkg);
    return null;
  } catch (e) {
    return (e as Error).message.split('\n')[0];
  }
}

let active: string | null = null;

/** Selects and initialises a backend. `auto` takes the CUDA build of TensorFlow, then WebGPU on a
 * hardware adapter, then the native CPU build of TensorFlow, when installed and loadable, else
 * WebAssembly, else plain JavaScript. `webgpu` by name fails, saying what is missing, when there
 * is no adapter (or only a software one and `allowSoftwareGpu` is off). Idempotent. */
export async function initBackend(name: string = 'auto', opts: BackendOptions = {}): Promise<string> {
  if (!(BACKENDS as readonly string[]).includes(name)) {
    throw new UserError(`unknown backend '${name}'; valid backends: ${BACKENDS.join(', ')}`);
  }
  // tfjs-core's Node build registers no gradient functions; the union package's build does.
  require('@tensorflow/tfjs');
  // PROD silences TF.js's console advice and skips debug-only checks.
  tf.env().set('PROD', true);
  const allowSoftware = Boolean(opts.allowSoftwareGpu) || softwareAllowedByEnv();
  // Worker threads (rollouts, gradients) start from this process's environment: they follow.
  if (opts.allowSoftwareGpu) process.env[SOFTWARE_GPU_ENV] = '1';
  if (opts.matmul) {
    if (!(MATMUL_CHOICES as readonly string[]).includes(opts.matmul)) {
      throw new UserError(`unknown matmul path '${opts.matmul}'; valid: ${MATMUL_CHOICES.join(', ')}`);
    }
    process.env[MATMUL_ENV] = opts.matmul;
  }
  const wanted = PROVIDERS.filter((p) => name === 'auto' || p.name === name);
  let why = '';
  for (const p of wanted) {
    if (p.tfName === 'webgpu') {
      if (active === 'webgpu' && tf.getBackend() === 'webgpu') return active;
      try {
        await registerWebGPU(name === 'webgpu' && allowSoftware, name === 'webgpu');
      } catch (e) {
        if (name === 'webgpu') throw new UserError(`backend 'webgpu' is not available: ${(e as Error).message}`);
        continue;
      }
    } else if (loadError(p.pkg)) continue;
    if (active === p.tfName && tf.getBackend() === p.tfName) {
      if (p.tfName === 'wasm' && opts.matmul) installWasmPatches(); // a new matmul choice
      return active;
    }
    if (!(await tf.setBackend(p.tfName))) {
      why = ` (${p.tfName} did not initialise)`;
      continue;
    }
    await tf.ready();
    if (p.tfName === 'wasm') installWasmPatches();
    if (p.tfName === 'webgpu' && lowered !== null) (tf.backend() as unknown as RemoteWebGPUBackend).setBindingLimit(lowered);
    tf.env().set('DEBUG', false);
    active = p.tfName;
    return active;
  }
  const pkgs = wanted.map((p) => p.pkg).join(' or ');
  throw new UserError(
    `backend '${name}' is not available${why}: install ${pkgs}` +
      (name === 'tensorflow' ? ' (npm install @tensorflow/tfjs-node-gpu for CUDA, @tensorflow/tfjs-node for CPU)' : ''),
  );
}

export function activeBackend(): string {
  return active ?? tf.getBackend();
}

/** What runs matrix products: 'blas (<library>, <threads> thread)' or 'xnnpack' on the wasm
 * backend; the backend's name elsewhere. */
export function matmulEngine(): string {
  if (activeBackend() !== 'wasm') return activeBackend();
  if (matmulPath() !== 'blas') return 'xnnpack';
  const s = loadBlas();
  return s.loaded ? `blas (${s.blas.library}, ${s.blas.threads} thread${s.blas.threads === 1 ? '' : 's'})` : 'xnnpack';
}

/** Environment variable that lowers the largest tensor one kernel may bind, in bytes, on every
 * backend: the split paths (model/vocab-split.ts) then run on a tiny model, and on WebGPU a kernel
 * binding more is refused as the adapter would refuse it at its own limit. */
export const BINDING_LIMIT_ENV = 'R1_BINDING_LIMIT';
let lowered: number | null = null;

function envBindingLimit(): number | null {
  const raw = process.env[BINDING_LIMIT_ENV];
  if (raw === undefined || raw === '') return null;
  const bytes = Number(raw);
  if (!Number.isInteger(bytes) || bytes < 4) throw new UserError(`${BINDING_LIMIT_ENV}=${raw}: want a whole number of bytes, at least 4`);
  return bytes;
}

/** Lowers the binding limit to `bytes` (null: back to the backend's own); tests use it. */
export function setBindingLimit(bytes: number | null): void {
  if (bytes !== null && !(Number.isInteger(bytes) && bytes >= 4))
    throw new Error(`binding limit: want a whole number of bytes, at least 4, got ${bytes}`);
  lowered = bytes;
  if (activeBackend() === 'webgpu') (tf.backend() as unknown as RemoteWebGPUBackend).setBindingLimit(bytes ?? envBindingLimit());
}

/** The largest tensor, in bytes, one kernel may read or write whole: on WebGPU the adapter's
 * maxStorageBufferBindingSize and maxBufferSize (128 MiB and 2 GiB on Mesa's llvmpipe; Dawn caps
 * NVIDIA's binding at 2 GiB); Infinity on the other backends. Lowered by setBindingLimit or
 * R1_BINDING_LIMIT. Tensors over it are split by the callers that can (model/vocab-split.ts). */
export function bindingLimit(): number {
  let limit = lowered ?? envBindingLimit() ?? Infinity;
  if (activeBackend() === 'webgpu') {
    const l = (tf.backend() as unknown as RemoteWebGPUBackend).limits;
    limit = Math.min(limit, l.maxStorageBufferBindingSize, l.maxBufferSize);
  }
  return limit;
}

/** The WebGPU adapter in use when the active backend is webgpu. */
export function activeAdapter(): AdapterReport | null {
  return activeBackend() === 'webgpu' ? webgpuAdapter() : null;
}

export { tf };
