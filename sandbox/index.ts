// The sandbox: runs untrusted programs against test cases. Each language has its own pool of
// sandbox processes (process.ts), each a separate Node process walled in by the layers of launch.ts,
// running JavaScript in isolated-vm isolates and Python in pyodide (sandbox/child/). A process gets
// one program at a time, with the tests' inputs only; its reports are untrusted and every verdict is
// made here. Every program starts from a clean interpreter (a fresh isolate; pyodide's memory
// snapshot), a process that ignores its limits is killed and replaced, and processes are recycled
// after a number of programs, so even a breach of the in-language layer stays in one process for a
// bounded time.
import { availableParallelism } from 'node:os';
import { UserError } from '../src/errors.ts';
import { announceOnce, describeLayers, layersFor, type Isolation, type Layers } from './launch.ts';
import { DEFAULT_LIMITS, type Language, type Limits } from './protocol.ts';
import { DEPTH, SandboxProcess } from './process.ts';
import { normalizeTests, type TestResult } from './tests.ts';

export { normalizeTests, compareOutput, deepEqual, judge } from './tests.ts';
export type { CallTest, StdioTest, Test, TestResult } from './tests.ts';
export { DEFAULT_LIMITS, type Language, type Limits } from './protocol.ts';
export { ISOLATIONS, describeLayers, layersFor, type Isolation, type Layers } from './launch.ts';

export type ProgramResult = { passed: number; total: number; results: TestResult[] };
export type Program = { language: Language; code: string; tests: unknown };
export type SandboxOptions = {
  /** Processes per language (default: one per core). */
  workers?: number;
  limits?: Partial<Limits>;
  /** strict: refuse to run without the os layer; standard (default): use it where the machine allows; process: never. */
  isolation?: Isolation;
  /** Programs a process runs before it is replaced (default: 2,000 JavaScript, 5,000 Python). */
  recycleAfter?: Partial<Record<Language, number>>;
  /** Where the one-line notice of the active layers goes (default: standard error, once per host process). */
  notice?: (line: string) => void;
};

const RECYCLE: Record<Language, number> = { javascript: 2000, python: 5000 };

export function resolveLimits(limits: Partial<Limits> = {}): Required<Limits> {
  const l = { ...DEFAULT_LIMITS, ...limits };
  for (const k of ['timeMs', 'memoryMb', 'outputBytes'] as const) {
    if (!Number.isFinite(l[k]) || l[k] <= 0) throw new UserError(`sandbox limits.${k}: a positive number, got ${l[k]}`);
  }
  return { ...l, wallMs: l.wallMs ?? 2 * l.timeMs + 250 };
}

type Waiting = { program: Program & { tests: ReturnType<typeof normalizeTests> }; resolve: (r: TestResult[]) => void };

export class SandboxPool {
  readonly workers: number;
  readonly limits: Required<Limits>;
  /** The walls every process of this pool gets. */
  readonly layers: Layers;
  private readonly processes: Record<Language, Set<SandboxProcess>> = { javascript: new Set(), python: new Set() };
  private readonly queues: Record<Language, Waiting[]> = { javascript: [], python: [] };
  private readonly recycle: Record<Language, number>;
  private nextId = 1;
  private timer: NodeJS.Timeout | null = null;
  private destroyed = false;

  constructor(opts: SandboxOptions = {}) {
    this.workers = Math.max(1, opts.workers ?? availableParallelism());
    this.limits = resolveLimits(opts.limits ?? {});
    this.layers = layersFor(opts.isolation ?? 'standard');
    this.recycle = { ...RECYCLE, ...opts.recycleAfter };
    const [, os] = describeLayers(this.layers);
    if ((opts.isolation ?? 'standard') === 'standard' && !this.layers.os) (opts.notice ?? ((l: string) => announceOnce(l)))(`r1 sandbox: ${os}; programs run behind the process layer only`);
  }

  /** Runs every test of the program; resolves with one result per test whatever the program does.
   * Rejects only on bad input (unknown language, malformed tests). */
  async run(program: Program): Promise<ProgramResult> {
    if (program.language !== 'javascript' && program.language !== 'python') throw new UserError(`language: javascript or python, got ${JSON.stringify(program.language)}`);
    if (typeof program.code !== 'string') throw new UserError('code: a string');
    if (this.destroyed) throw new Error('the sandbox pool was destroyed');
    const tests = normalizeTests(program.tests);
    if (!tests.length) return { passed: 0, total: 0, results: [] };
    const results = await new Promise<TestResult[]>((resolve) => {
      this.queues[program.language].push({ program: { ...program, tests }, resolve });
      this.pump(program.language);
    });
    return { passed: results.filter((r) => r.status === 'pass').length, total: results.length, results };
  }

  async destroy(): Promise<void> {
    this.destroyed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    for (const lang of ['javascript', 'python'] as const) {
      for (const w of this.queues[lang].splice(0)) w.resolve(w.program.tests.map(() => ({ status: 'error', detail: 'the sandbox pool was destroyed' })));
      for (const p of this.processes[lang]) p.kill('stopped: the pool was destroyed');
      this.processes[lang].clear();
    }
  }

  /** Starts processes up to `workers` and gives each idle, ready one the next program. */
  private pump(language: Language): void {
    if (this.destroyed) return;
    const procs = this.processes[language], queue = this.queues[language];
    while (procs.size < this.workers && queue.length) {
      const p = new SandboxProcess(language, this.layers, this.limits, (dead) => this.exited(dead));
      procs.add(p);
      p.ready.then(() => this.pump(language), () => {});
    }
    // Round by round, so two programs go to two processes before one waits behind another.
    for (let load = 0; load < DEPTH && queue.length; load++) {
      for (const p of procs) {
        if (!queue.length || !p.free || p.load !== load) continue;
        const w = queue.shift()!;
        void p.run({ id: this.nextId++, code: w.program.code, tests: [], limits: this.limits }, w.program.tests).then((results) => {
          if (results !== null) w.resolve(results);
          else if (this.destroyed) w.resolve(w.program.tests.map(() => ({ status: 'error', detail: 'the sandbox pool was destroyed' })));
          else queue.unshift(w); // the process ended before it began: run it elsewhere
          if (p.idle && p.retired) p.kill(p.retired);
          this.pump(language);
        });
        if (p.programs + p.load >= this.recycle[language]) p.retired ??= 'recycled';
      }
    }
    this.tick();
  }

  /** A process ended. One that never got ready fails the waiting programs (starting another would
   * fail the same way); any other is replaced at once if work is waiting. */
  private exited(p: SandboxProcess): void {
    const procs = this.processes[p.language];
    procs.delete(p);
    if (p.startError !== null && ![...procs].some((q) => q.isReady)) {
      for (const w of this.queues[p.language].splice(0)) w.resolve(w.program.tests.map(() => ({ status: 'error', detail: p.startError! })));
      return;
    }
    queueMicrotask(() => this.pump(p.language));
  }

  /** The clock that kills processes past their limits runs while any process is busy or starting. */
  private tick(): void {
    const any = () => [...this.processes.javascript, ...this.processes.python].length > 0;
    if (this.timer || !any()) return;
    this.timer = setInterval(() => {
      const now = performance.now();
      for (const lang of ['javascript', 'python'] as const) for (const p of this.processes[lang]) p.check(now);
      if (!any() && this.timer) {
        clearInterval(this.timer);
        this.timer = null;
      }
    }, 10);
    this.timer.unref();
  }
}
