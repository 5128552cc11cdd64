// A software GPU adapter's buffers are blocks of the C heap; returnFreedBlocks (engine/host-memory.ts)
// fixes glibc's mmap threshold so freed ones go back to the system. Checked in child processes (the
// setting is process-wide) the way llvmpipe uses the heap: one large block freed (which raises glibc's
// threshold), then many 1 MiB buffers written and freed while small blocks allocated between them stay.
// Without the fix the process keeps the freed buffers; with it, it gives them back. Needs glibc and
// the optional package koffi: skipped with one line where they are missing, failed then under CI=true.
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { MMAP_THRESHOLD_BYTES, returnFreedBlocks } from '../src/engine/host-memory.ts';
import { optionalPresent } from './optional.ts';

const MODULE = fileURLToPath(new URL('../src/engine/host-memory.ts', import.meta.url));
const BUFFERS = 256; // of 1 MiB: 256 MiB written, then freed

function missing(): string | null {
  if (!(process.report?.getReport() as { header?: { glibcVersionRuntime?: string } }).header?.glibcVersionRuntime)
    return 'the C library is not glibc';
  try {
    createRequire(import.meta.url)('koffi');
    return null;
  } catch {
    return 'the optional package koffi is not installed';
  }
}

/** Resident MiB of a child process before the buffers, with them, and after freeing them. */
function residentAfterFree(fix: boolean): { before: number; held: number; after: number; fixed: string } {
  const script = `
    import { createRequire } from 'node:module';
    import { readFileSync } from 'node:fs';
    import { returnFreedBlocks } from ${JSON.stringify(MODULE)};
    const fixed = ${fix} ? JSON.stringify(returnFreedBlocks()) : 'not asked';
    const libc = createRequire(import.meta.url)('koffi').load('libc.so.6');
    const malloc = libc.func('uintptr_t malloc(size_t)'), free = libc.func('void free(uintptr_t)');
    const memset = libc.func('uintptr_t memset(uintptr_t, int, size_t)');
    const rss = () => Number(readFileSync('/proc/self/statm', 'utf8').split(' ')[1]) * 4096 / 2 ** 20;
    free(memset(malloc(8 * 2 ** 20), 1, 8 * 2 ** 20)); // a large block freed raises glibc's threshold
    const before = rss();
    const buffers = [], pins = [];
    for (let i = 0; i < ${BUFFERS}; i++) {
      buffers.push(memset(malloc(2 ** 20), 1, 2 ** 20));
      pins.push(malloc(65536)); // smaller blocks that stay, between the buffers (as a device's bookkeeping does)
    }
    const held = rss();
    for (const b of buffers) free(b);
    console.log(JSON.stringify({ before, held, after: rss(), fixed }));
  `;
  const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').pop()!);
}

const present = optionalPresent('host-memory tests', missing(), 'glibc (Linux) and npm install koffi');

describe.runIf(present)('freed host memory of a software GPU adapter', () => {
  it('fixes the threshold once and says so', () => {
    expect(MMAP_THRESHOLD_BYTES).toBe(128 * 1024);
    expect(returnFreedBlocks()).toEqual({ fixed: true });
    expect(returnFreedBlocks()).toEqual({ fixed: true });
  });

  it('without the fix the freed buffers stay in the process (the behaviour the fix is for)', () => {
    const r = residentAfterFree(false);
    expect(r.held - r.before).toBeGreaterThan(BUFFERS * 0.9);
    expect(r.after - r.before).toBeGreaterThan(BUFFERS * 0.9);
  }, 30_000);

  it('with the fix they go back to the system when freed', () => {
    const r = residentAfterFree(true);
    expect(r.fixed).toBe('{"fixed":true}');
    expect(r.held - r.before).toBeGreaterThan(BUFFERS * 0.9);
    expect(r.after - r.before).toBeLessThan(BUFFERS * 0.1);
  }, 30_000);
});
