// Host memory a software GPU adapter frees, given back to the system.
//
// On a software adapter (Mesa's llvmpipe) every GPU buffer is a block of the C heap (malloc). glibc
// serves blocks under its mmap threshold from its heaps, and each time a mapped block is freed it
// raises that threshold to the block's size (up to 32 MiB): after the first few buffers of a
// backward pass are freed, the rest (a few MiB each) come from the heaps, and freed heap memory stays
// with the process. Measured on recipes/grpo-tiny.yaml's first GRPO step on llvmpipe: after the
// update freed its 2.2 GB of buffers, the process still held 2.7-2.9 GB through the eval, with 80 MB
// of GPU buffers allocated. A fixed threshold (mallopt(M_MMAP_THRESHOLD), which also turns the
// raising off) makes each block of 128 KiB or more its own mapping, unmapped when freed: the same run
// then held 0.5 GB after the update (see README, "Host memory").
import { loadKoffi } from './ffi.ts';

/** glibc's mallopt parameter for the mmap threshold (malloc.h). */
const M_MMAP_THRESHOLD = -3;
/** Blocks of this size or more are mapped on their own and unmapped when freed (glibc's initial
 * threshold, here kept from rising). */
export const MMAP_THRESHOLD_BYTES = 128 * 1024;

export type HostMemoryStatus = { fixed: true } | { fixed: false; reason: string };

let status: HostMemoryStatus | null = null;

/** What returnFreedBlocks did, or null before it was asked (no software adapter in this process). */
export function freedBlocksStatus(): HostMemoryStatus | null {
  return status;
}

/** Fixes the C heap's mmap threshold for the whole process (once; every thread shares the heap).
 * Where it cannot (not glibc, or the optional package koffi missing) freed GPU buffers of a
 * software adapter may stay in the process: says why, and nothing else changes. */
export function returnFreedBlocks(): HostMemoryStatus {
  if (status) return status;
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
  if (!header?.glibcVersionRuntime) return (status = { fixed: false, reason: 'the C library is not glibc' });
  const ffi = loadKoffi();
  if (!('koffi' in ffi)) return (status = { fixed: false, reason: ffi.reason });
  try {
    const mallopt = ffi.koffi.load('libc.so.6').func('int mallopt(int, int)') as (param: number, value: number) => number;
    if (mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) !== 1) return (status = { fixed: false, reason: 'mallopt refused the threshold' });
  } catch (e) {
    return (status = { fixed: false, reason: `libc.so.6 does not load: ${(e as Error).message.split('\n')[0]}` });
  }
  return (status = { fixed: true });
}
