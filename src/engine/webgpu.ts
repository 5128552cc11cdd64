// WebGPU in Node: tfjs's WebGPU backend (@tensorflow/tfjs-backend-webgpu) on Google's Dawn
// through the `webgpu` npm package. Hardware adapters come from Dawn's default backends (Vulkan,
// Metal, D3D12); a software adapter (Mesa's llvmpipe through Dawn's OpenGL ES backend, in
// WebGPU's compatibility mode) is found too but used only when asked for: it is slower than
// WebAssembly and serves to test the WebGPU path on machines without a GPU.
import * as tf from '@tensorflow/tfjs-core';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { returnFreedBlocks } from './host-memory.ts';
import { installRemoteKernels, RemoteWebGPUBackend } from './webgpu-remote.ts';

const require = createRequire(import.meta.url);

/** Environment variable that allows a software adapter (as `allow_software_gpu: true` does). */
export const SOFTWARE_GPU_ENV = 'R1_ALLOW_SOFTWARE_GPU';

export type AdapterReport = {
  /** Dawn's backend that found it: 'default' (Vulkan / Metal / D3D12) or 'opengles'. */
  via: 'default' | 'opengles';
  name: string;
  vendor: string;
  architecture: string;
  description: string;
  software: boolean;
};

export type WebGPUProbe = {
  /** The packages load (webgpu with its prebuilt Dawn for this platform, tfjs-backend-webgpu). */
  packages: boolean;
  /** Why the packages do not load, when they do not. */
  packageError?: string;
  adapters: AdapterReport[];
};

type Gpu = { requestAdapter(options?: Record<string, unknown>): Promise<GpuAdapter | null> };
type GpuAdapter = {
  info?: Record<string, string>;
  isFallbackAdapter?: boolean;
  features: Set<string>;
  limits: Record<string, number>;
  requestDevice(desc?: unknown): Promise<unknown>;
};
type Dawn = { create(options: string[]): Gpu; globals: Record<string, unknown> };

const SOFTWARE = /llvmpipe|lavapipe|softpipe|swiftshader|software|basic render/i;

let dawn: Promise<Dawn> | null = null;
function loadDawn(): Promise<Dawn> {
  // Dawn's OpenGL ES backend opens an EGL display: with no X or Wayland display, Mesa's
  // surfaceless platform (no window system) is the one that works.
  if (!process.env.DISPLAY && !process.env.WAYLAND_DISPLAY && !process.env.EGL_PLATFORM) process.env.EGL_PLATFORM = 'surfaceless';
  dawn ??= import('webgpu') as unknown as Promise<Dawn>;
  return dawn;
}

function report(adapter: GpuAdapter, via: AdapterReport['via']): AdapterReport {
  const info = adapter.info ?? {};
  const s = (k: string) => String(info[k] ?? '').trim();
  const name = s('device') || s('description') || '(unnamed)';
  const text = [s('vendor'), s('architecture'), s('device'), s('description')].join(' ');
  const software = Boolean(adapter.isFallbackAdapter || (info as { isFallbackAdapter?: boolean }).isFallbackAdapter) || SOFTWARE.test(text);
  return {
    via,
    name: name.replace(/-+$/, ''),
    vendor: s('vendor'),
    architecture: s('architecture'),
    description: s('description'),
    software,
  };
}

type Found = { report: AdapterReport; adapter: GpuAdapter; gpu: Gpu };
const probes = new Map<AdapterReport['via'], Promise<Found | null>>();

/** Dawn on Linux reaches hardware through Vulkan only: without the loader (libvulkan.so.1) its
 * default backends find nothing, and say so on stderr; skip them then. */
function vulkanLoaderPresent(): boolean {
  if (process.platform !== 'linux') return true;
  const dirs = [
    ...(process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean),
    '/usr/lib/x86_64-linux-gnu',
    '/usr/lib/aarch64-linux-gnu',
    '/lib/x86_64-linux-gnu',
    '/lib/aarch64-linux-gnu',
    '/usr/lib64',
    '/usr/lib',
    '/usr/local/lib',
  ];
  return dirs.some((d) => existsSync(join(d, 'libvulkan.so.1')));
}

function probeVia(d: Dawn, via: AdapterReport['via']): Promise<Found | null> {
  let p = probes.get(via);
  if (!p) {
    p = (async () => {
      if (via === 'default' && !vulkanLoaderPresent()) return null;
      try {
        const gpu = d.create(via === 'default' ? [] : ['backend=opengles']);
        const adapter = await gpu.requestAdapter(
          via === 'default' ? { powerPreference: 'high-performance' } : { featureLevel: 'compatibility' },
        );
        return adapter ? { report: report(adapter, via), adapter, gpu } : null;
      } catch {
        return null;
      }
    })();
    probes.set(via, p);
  }
  return p;
}

async function probeFound(software: boolean): Promise<{ probe: WebGPUProbe; found: Found[] }> {
  let d: Dawn;
  try {
    require.resolve('@tensorflow/tfjs-backend-webgpu');
    d = await loadDawn();
  } catch (e) {
    return { probe: { packages: false, packageError: (e as Error).message.split('\n')[0], adapters: [] }, found: [] };
  }
  const found: Found[] = [];
  const hw = await probeVia(d, 'default');
  if (hw) found.push(hw);
  // The software adapter is looked for only when it could be used (or reported): Dawn's OpenGL ES
  // backend prints warnings on stderr while it opens.
  if (software) {
    const sw = await probeVia(d, 'opengles');
    if (sw) found.push(sw);
  }
  return { probe: { packages: true, adapters: found.map((f) => f.report) }, found };
}

/** The WebGPU adapters Dawn finds on this machine (each path once per process); the software
 * path (OpenGL ES) only with `software`. */
export async function probeWebGPU(software = true): Promise<WebGPUProbe> {
  return (await probeFound(software)).probe;
}

/** Whether a software adapter is allowed by the environment (tests, scripts/gpu-check.sh). */
export function softwareAllowedByEnv(): boolean {
  const v = process.env[SOFTWARE_GPU_ENV];
  return v !== undefined && v !== '' && v !== '0' && v !== 'false';
}

/** What is missing for `backend: webgpu`, in words a user can act on; null when an adapter fits. */
export function webgpuMissing(probe: WebGPUProbe, allowSoftware: boolean): string | null {
  if (!probe.packages) {
    return `the WebGPU packages do not load (${probe.packageError ?? 'unknown error'}): run npm install (they are webgpu and @tensorflow/tfjs-backend-webgpu)`;
  }
  if (probe.adapters.some((a) => !a.software)) return null;
  const soft = probe.adapters.find((a) => a.software);
  if (soft && allowSoftware) return null;
  if (soft) {
    return (
      `no hardware GPU adapter; only the software adapter '${soft.name}' (${soft.description || soft.via}), which is slower than WebAssembly: ` +
      `set allow_software_gpu: true in the recipe (or ${SOFTWARE_GPU_ENV}=1) to use it anyway, or backend: auto / wasm`
    );
  }
  return (
    "no WebGPU adapter: Dawn needs a GPU driver with Vulkan (the vendor driver's Vulkan ICD and libvulkan1; NVIDIA: the proprietary driver) " +
    "- or, with no GPU, Mesa's OpenGL ES through EGL for the software adapter (apt-get install libegl1 libegl-mesa0 libgles2 libgl1-mesa-dri) with allow_software_gpu: true"
  );
}

let registered: AdapterReport | null = null;

/** Registers tfjs's 'webgpu' backend on the best adapter (hardware first; software only when
 * allowed). Returns the adapter, or throws an Error saying what is missing. `explicit` (the user
 * asked for webgpu, not auto) also looks for the software adapter, to name it in the error. */
export async function registerWebGPU(allowSoftware: boolean, explicit = true): Promise<AdapterReport> {
  const { probe, found } = await probeFound(allowSoftware || explicit);
  const missing = webgpuMissing(probe, allowSoftware);
  if (missing) throw new Error(missing);
  const pick = found.find((f) => !f.report.software) ?? found.find((f) => f.report.software)!;
  if (registered) return registered;
  // A software adapter's buffers are host memory: give the freed ones back (host-memory.ts).
  if (pick.report.software) returnFreedBlocks();
  // The device lives in a worker thread (see webgpu-remote.ts): synchronous reads need it.
  installRemoteKernels();
  if (tf.findBackendFactory('webgpu')) tf.removeBackend('webgpu');
  tf.registerBackend('webgpu', () => RemoteWebGPUBackend.start(pick.report.via), 1);
  registered = pick.report;
  return registered;
}

/** The adapter tfjs's 'webgpu' backend runs on, once registered. */
export function webgpuAdapter(): AdapterReport | null {
  return registered;
}
