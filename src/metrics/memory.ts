// The process's memory at each logged step, in metrics.jsonl: `memory/rss_gib` (resident now) and
// `memory/max_rss_gib` (the peak since the process started), to set beside the memory plan's
// estimate of a step's tensors. Every thread of r1kit (gradient and rollout workers, the GPU thread,
// whose buffers are host memory on a software adapter) is in the one process, so both count them
// all. The peak is not reset per step: Linux can (clear_refs), but that would also reset what
// /usr/bin/time and every other tool reads as the process's peak.
const GIB = 2 ** 30;

/** Resident memory now and the peak since the process started, in GiB. */
export function processMemory(): { rss: number; maxRss: number } {
  const rss = process.memoryUsage.rss() / GIB;
  const maxRss = (process.resourceUsage().maxRSS * 1024) / GIB; // maxRSS is in KiB
  return { rss, maxRss: Math.max(maxRss, rss) };
}
