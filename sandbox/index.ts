// The sandbox: runs untrusted programs against test cases in worker threads (piscina), JavaScript
// in isolated-vm isolates and Python in pyodide, one pool per language started on first use. Each
// test execution gets its own time, memory and output limits. The pool watches every running test
// through a shared control block: a Python test past its time limit is interrupted, and any test
// past its wall-clock limit has its worker killed and replaced, so a hostile program costs its own
// time budget and never the pool.
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import { UserError } from '../src/errors.ts';
import { CURRENT, DEFAULT_LIMITS, FIRST_STATUS, INTERRUPT, STATUS_CODES, controlBlock, type Language, type Limits, type WorkerJob } from './protocol.ts';
import { normalizeTests, type TestResult } from './tests.ts';

export { normalizeTests, compareOutput, deepEqual } from './tests.ts';
export type { CallTest, StdioTest, Test, TestResult } from './tests.ts';
export { DEFAULT_LIMITS, type Language, type Limits } from './protocol.ts';

export type ProgramResult = { passed: number; total: number; results: TestResult[] };
export type Program = { language: Language; code: string; tests: unknown };
export type SandboxOptions = { workers?: number; limits?: Partial<Limits> };

const ENTRIES: Record<Language, URL> = {
  javascript: new URL('./js-worker-entry.js', import.meta.url),
  python: new URL('./py-worker-entry.js', import.meta.url),
};
/** A worker that has not started its first test after this long (pyodide loads in seconds) is stuck. */
const START_MS = 120_000;
/** Written to a Python test's interrupt slot: pyodide raises KeyboardInterrupt. */
const SIGINT = 2;
/** A JS test's own watchdog acts at wallMs; the pool steps in only if that failed. */
const JS_GRACE_MS = 500;

type Watched = { language: Language; control: Int32Array; limits: Required<Limits>; abort: AbortController; current: number; since: number; interrupts: number };

export function resolveLimits(limits: Partial<Limits> = {}): Required<Limits> {
  const l = { ...DEFAULT_LIMITS, ...limits };
  for (const k of ['timeMs', 'memoryMb', 'outputBytes'] as const) {
    if (!Number.isFinite(l[k]) || l[k] <= 0) throw new UserError(`sandbox limits.${k}: a positive number, got ${l[k]}`);
  }
  return { ...l, wallMs: l.wallMs ?? 2 * l.timeMs + 250 };
}

export class SandboxPool {
  readonly workers: number;
  readonly limits: Required<Limits>;
  private readonly pools: Partial<Record<Language, Piscina<WorkerJob, TestResult[]>>> = {};
  private readonly watched = new Set<Watched>();
  private timer: NodeJS.Timeout | null = null;

  constructor(opts: SandboxOptions = {}) {
    this.workers = Math.max(1, opts.workers ?? availableParallelism());
    this.limits = resolveLimits(opts.limits ?? {});
  }

  private pool(language: Language): Piscina<WorkerJob, TestResult[]> {
    return (this.pools[language] ??= new Piscina({
      filename: ENTRIES[language].href,
      minThreads: language === 'javascript' ? this.workers : 0,
      maxThreads: this.workers,
      idleTimeout: 60_000,
      // Deep recursion unwinds through the thread's stack; pyodide dies when it runs out (py-runner.py).
      resourceLimits: language === 'python' ? { stackSizeMb: 256 } : undefined,
      // Workers wait for tasks on their event loop, so the isolate watchdog's timers still fire.
      atomics: 'disabled',
    }));
  }

  /** Runs every test of the program; resolves with one result per test whatever the program does.
   * Rejects only on bad input (unknown language, malformed tests). */
  async run(program: Program): Promise<ProgramResult> {
    if (program.language !== 'javascript' && program.language !== 'python') throw new UserError(`language: javascript or python, got ${JSON.stringify(program.language)}`);
    if (typeof program.code !== 'string') throw new UserError('code: a string');
    const tests = normalizeTests(program.tests);
    if (!tests.length) return { passed: 0, total: 0, results: [] };
    const shared = controlBlock(tests.length);
    const w: Watched = { language: program.language, control: new Int32Array(shared), limits: this.limits, abort: new AbortController(), current: 0, since: performance.now(), interrupts: 0 };
    this.watch(w);
    let results: TestResult[] | null = null;
    try {
      for (let attempt = 1; !results; attempt++) {
        try {
          results = await this.pool(program.language).run({ code: program.code, tests, limits: this.limits, control: shared }, { signal: w.abort.signal });
        } catch (e) {
          // A worker that left before starting (a retired Python worker) costs a retry, not a result.
          const started = Atomics.load(w.control, CURRENT) > 0;
          if (!started && !w.abort.signal.aborted && attempt < 3) continue;
          results = recover(w.control, tests.length, w.abort.signal.aborted ? null : e);
        }
      }
    } finally {
      this.unwatch(w);
    }
    return { passed: results.filter((r) => r.status === 'pass').length, total: results.length, results };
  }

  async destroy(): Promise<void> {
    for (const w of this.watched) w.abort.abort();
    this.watched.clear();
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    const pools = Object.values(this.pools);
    for (const k of Object.keys(this.pools) as Language[]) delete this.pools[k];
    await Promise.all(pools.map((p) => p.destroy()));
  }

  private watch(w: Watched): void {
    this.watched.add(w);
    if (!this.timer) {
      this.timer = setInterval(() => this.check(), 10);
      this.timer.unref();
    }
  }

  private unwatch(w: Watched): void {
    this.watched.delete(w);
    if (!this.watched.size && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  /** Every 10 ms: interrupt a Python test past its time (again every 50 ms, a program may swallow
   * one), kill the worker of any test past its wall-clock limit. */
  private check(): void {
    const now = performance.now();
    for (const w of this.watched) {
      const current = Atomics.load(w.control, CURRENT);
      if (current !== w.current) Object.assign(w, { current, since: now, interrupts: 0 });
      const elapsed = now - w.since;
      if (current === 0) {
        if (elapsed > START_MS) w.abort.abort();
        continue;
      }
      if (Atomics.load(w.control, FIRST_STATUS + current - 1) !== 0) continue;
      const { timeMs, wallMs } = w.limits;
      if (w.language === 'python' && elapsed > timeMs + 50 * w.interrupts) {
        Atomics.store(w.control, INTERRUPT, SIGINT);
        w.interrupts++;
      }
      if (elapsed > wallMs + (w.language === 'javascript' ? JS_GRACE_MS : 0)) w.abort.abort();
    }
  }
}

/** Results from the control block after the worker was killed (error = null) or crashed: finished
 * tests keep their status, the running one failed, the rest were not run. */
function recover(control: Int32Array, n: number, error: unknown): TestResult[] {
  const running = Atomics.load(control, CURRENT) - 1;
  const crash = error instanceof Error ? error.message : String(error);
  return Array.from({ length: n }, (_, i): TestResult => {
    const code = Atomics.load(control, FIRST_STATUS + i);
    if (code > 0) return { status: STATUS_CODES[code - 1] };
    if (i === running || (running < 0 && i === 0)) {
      if (error === null) return { status: 'timeout', detail: 'ignored its time limit; the worker was stopped and replaced' };
      return { status: /out of memory|ERR_WORKER_OUT_OF_MEMORY/i.test(crash) ? 'memory' : 'error', detail: `the worker crashed and was replaced: ${crash.split('\n')[0]}` };
    }
    return { status: 'error', detail: 'not run: an earlier test had to be stopped' };
  });
}
