// Backend choice: the only place that knows which TensorFlow.js backend runs the maths.
import * as tf from '@tensorflow/tfjs-core';
import { createRequire } from 'node:module';
import { UserError } from '../errors.ts';
import { installWasmPatches } from './kernels/index.ts';

export const BACKENDS = ['auto', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKENDS)[number];

const require = createRequire(import.meta.url);

/** Packages that provide each concrete backend, in the order `auto` tries them. */
const PROVIDERS: { name: Exclude<BackendName, 'auto'>; pkg: string; tfName: string }[] = [
  { name: 'tensorflow', pkg: '@tensorflow/tfjs-node-gpu', tfName: 'tensorflow' },
  { name: 'tensorflow', pkg: '@tensorflow/tfjs-node', tfName: 'tensorflow' },
  { name: 'wasm', pkg: '@tensorflow/tfjs-backend-wasm', tfName: 'wasm' },
  { name: 'cpu', pkg: '@tensorflow/tfjs-backend-cpu', tfName: 'cpu' },
];

function tryLoad(pkg: string): boolean {
  try {
    require(pkg);
    return true;
  } catch {
    return false;
  }
}

let active: string | null = null;

/** Selects and initialises a backend. `auto` takes the CUDA build of TensorFlow, then the native
 * CPU build, when installed and loadable, else WebAssembly, else plain JavaScript. Idempotent. */
export async function initBackend(name: string = 'auto'): Promise<string> {
  if (!(BACKENDS as readonly string[]).includes(name)) {
    throw new UserError(`unknown backend '${name}'; valid backends: ${BACKENDS.join(', ')}`);
  }
  // tfjs-core's Node build registers no gradient functions; the union package's build does.
  require('@tensorflow/tfjs');
  // PROD silences TF.js's console advice and skips debug-only checks.
  tf.env().set('PROD', true);
  const wanted = PROVIDERS.filter((p) => name === 'auto' || p.name === name);
  for (const p of wanted) {
    if (!tryLoad(p.pkg)) continue;
    if (active === p.tfName && tf.getBackend() === p.tfName) return active;
    if (!(await tf.setBackend(p.tfName))) continue;
    await tf.ready();
    if (p.tfName === 'wasm') installWasmPatches();
    tf.env().set('DEBUG', false);
    active = p.tfName;
    return active;
  }
  const pkgs = wanted.map((p) => p.pkg).join(' or ');
  throw new UserError(
    `backend '${name}' is not available: install ${pkgs}` +
      (name === 'tensorflow' ? ' (npm install @tensorflow/tfjs-node-gpu for CUDA, @tensorflow/tfjs-node for CPU)' : ''),
  );
}

export function activeBackend(): string {
  return active ?? tf.getBackend();
}

export { tf };
