// The process's peak memory over each logged step, as `memory/peak_rss_gib` in metrics.jsonl (verl logs
// the same as perf/cpu_memory_used_gb): what a step really needs beside the memory plan's estimate of
// its tensors. Every thread of r1kit (gradient and rollout workers, the GPU thread, whose buffers are
// host memory on a software adapter) is in the one process, so this counts them all.
import { readFileSync, writeFileSync } from 'node:fs';

const GIB = 2 ** 30;

/** Whether the peak can be reset (Linux, where /proc/self/clear_refs takes '5'): null until tried. */
let resettable: boolean | null = null;

/** The process's peak resident memory in GiB since the last call, then starts a new window. On
 * Linux: VmHWM of /proc/self/status, reset by writing 5 to /proc/self/clear_refs. Elsewhere, or where
 * the reset is refused, the peak since the process started. */
export function peakRssSinceLast(): number {
  let peak: number;
  try {
    const kib = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    peak = kib ? (Number(kib[1]) * 1024) / GIB : (process.resourceUsage().maxRSS * 1024) / GIB;
  } catch {
    peak = (process.resourceUsage().maxRSS * 1024) / GIB;
  }
  if (resettable !== false) {
    try {
      writeFileSync('/proc/self/clear_refs', '5');
      resettable = true;
    } catch {
      resettable = false;
    }
  }
  return peak;
}

/** Whether peakRssSinceLast gives each window's own peak (true) or the peak since the start (false). */
export function peakRssResets(): boolean {
  if (resettable === null) peakRssSinceLast();
  return resettable === true;
}
