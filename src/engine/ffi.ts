// koffi, an optional npm dependency with prebuilt binaries, calls C functions from JavaScript: the
// machine's BLAS (kernels/blas.ts) and glibc's mallopt (host-memory.ts) are reached through it.
import { createRequire } from 'node:module';

export type Koffi = {
  load(path: string): { func(signature: string): (...args: unknown[]) => unknown };
};

const require = createRequire(import.meta.url);

/** koffi, or why it does not load. */
export function loadKoffi(): { koffi: Koffi } | { reason: string } {
  try {
    return { koffi: require('koffi') as Koffi };
  } catch (e) {
    return { reason: `the optional package koffi does not load (npm install koffi): ${(e as Error).message.split('\n')[0]}` };
  }
}
