// The sandbox: runs untrusted programs against test cases. Each language (languages.ts) has its own
// pool of sandbox processes (process.ts), each a separate Node process walled in by the layers of
// launch.ts, running JavaScript in isolated-vm isolates and Python in pyodide (sandbox/child/). A process gets
// one program at a time, with the tests' inputs only; its reports are untrusted and every verdict is
// made here. Every program starts from a clean interpreter (a fresh isolate; pyodide's memory
// snapshot), a process that ignores its limits is killed and replaced, and processes are recycled
// after a number of programs, so even a breach of the in-language layer stays in one process for a
// bounded time.
//
// Replay. A program that broke out of its interpreter owns its process: it reads every job the process
// gets later and can write any message for them. With the tests' inputs only, it cannot know what
// would pass, unless the process also runs another program of the same tests: then it can replay that
// program's output (or make a sibling fail). `reuse` decides what a process may run in its life:
//   distinct (default)  never two tests with the same input and expected output: a breached process
//                       never sees a second program of a test it has seen, so it has no output of
//                       another program to replay for it, and in GRPO no sibling of its own group to
//                       sabotage. A group of G programs sharing their tests runs in G processes: the
//                       pool keeps up to `maxProcesses` alive (idle ones cost memory, not CPU).
//   never               one program per process: a verdict depends on nothing but that program's own
//                       run (processes are started ahead; each start costs ~0.15 s of CPU for
//                       JavaScript, ~2.5 s for Python).
//   any                 no rule (the layers still hold the host): for measuring what the rule costs.
import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { UserError } from '../src/errors.ts';
import { announceOnce, describeLayers, layersFor, type Entry, type Isolation, type Layers } from './launch.ts';
import { LANGUAGES, LANGUAGE_NAMES, isLanguage, languageList, perLanguage, type Language } from './languages.ts';
import { DEFAULT_LIMITS, type Limits } from './protocol.ts';
import { DEPTH, SandboxProcess, type RetireKind } from './process.ts';
import { normalizeTests, testInput, type Test, type TestResult } from './tests.ts';

export { normalizeTests, compareOutput, deepEqual, judge } from './tests.ts';
export type { CallTest, StdioTest, Test, TestResult } from './tests.ts';
export { DEFAULT_LIMITS, type Limits } from './protocol.ts';
export { LANGUAGES, LANGUAGE_NAMES, isLanguage, languageNamed, type Language } from './languages.ts';
export { ISOLATIONS, describeLayers, layersFor, type Isolation, type Layers } from './launch.ts';

export type ProgramResult = { passed: number; total: number; results: TestResult[] };
export type Program = { language: Language; code: string; tests: unknown };
export type SandboxOptions = {
  /** Processes per language (default: one per core). */
  workers?: number;
  limits?: Partial<Limits>;
  /** strict: refuse to run without the os layer; standard (default): use it where the machine allows; process: never. */
  isolation?: Isolation;
  /** Programs a process runs before it is replaced (default: each language's recycleAfter, languages.ts). */
  recycleAfter?: Partial<Record<Language, number>>;
  /** What one process may run in its life (see the header): distinct (default), never, any. */
  reuse?: Reuse;
  /** Processes kept alive per language, busy or idle (default: workers + 8); at most `workers` run at once. */
  maxProcesses?: number;
  /** Where the one-line notice of the active layers goes (default: standard error, once per host process). */
  notice?: (line: string) => void;
};

export const REUSES = ['distinct', 'never', 'any'] as const;
export type Reuse = (typeof REUSES)[number];

/** What identifies a test for the replay wall: what the process sees (the input or the call) and what
 * would pass (the expected output, compared as the judge compares it). */
function fingerprint(t: Test): string {
  const expected =
    'fn' in t
      ? JSON.stringify(t.expected ?? null)
      : t.output
          .replace(/\r\n?/g, '\n')
          .split('\n')
          .map((l) => l.trimEnd())
          .join('\n')
          .replace(/\n+$/, '');
  return createHash('sha256')
    .update(JSON.stringify(testInput(t)))
    .update('\0')
    .update(expected)
    .digest('base64')
    .slice(0, 22);
}

export function resolveLimits(limits: Partial<Limits> = {}): Required<Limits> {
  const l = { ...DEFAULT_LIMITS, ...limits };
  for (const k of ['timeMs', 'memoryMb', 'outputBytes'] as const) {
    if (!Number.isFinite(l[k]) || l[k] <= 0) throw new UserError(`sandbox limits.${k}: a positive number, got ${l[k]}`);
  }
  return { ...l, wallMs: l.wallMs ?? 2 * l.timeMs + 250 };
}

type Waiting = { program: Program & { tests: Test[] }; prints: string[]; resolve: (r: TestResult[]) => void };
/** Counts of what the pool did, per language: processes started, and why processes ended. */
export type PoolStats = Record<Language, { started: number; ended: Partial<Record<RetireKind, number>> }>;

export class SandboxPool {
  readonly workers: number;
  readonly limits: Required<Limits>;
  /** The walls every process of this pool gets. */
  readonly layers: Layers;
  private readonly processes: Record<Language, Set<SandboxProcess>> = perLanguage(() => new Set());
  private readonly queues: Record<Language, Waiting[]> = perLanguage(() => []);
  private readonly recycle: Record<Language, number>;
  readonly reuse: Reuse;
  readonly maxProcesses: number;
  readonly stats: PoolStats = perLanguage(() => ({ started: 0, ended: {} }));
  private nextId = 1;
  private timer: NodeJS.Timeout | null = null;
  private destroyed = false;

  /** `entry` is for the assume-breach tests only (sandbox/child/breach.ts); programs never choose it. */
  constructor(
    opts: SandboxOptions = {},
    private readonly entry: Entry = 'main',
  ) {
    this.workers = Math.max(1, opts.workers ?? availableParallelism());
    this.reuse = opts.reuse ?? 'distinct';
    if (!REUSES.includes(this.reuse)) throw new UserError(`sandbox reuse: one of ${REUSES.join(', ')}, got ${JSON.stringify(this.reuse)}`);
    this.maxProcesses = Math.max(this.workers, opts.maxProcesses ?? this.workers + 8);
    this.limits = resolveLimits(opts.limits ?? {});
    this.layers = layersFor(opts.isolation ?? 'standard');
    this.recycle = { ...perLanguage((l) => LANGUAGES[l].recycleAfter), ...opts.recycleAfter };
    const [, os] = describeLayers(this.layers);
    if ((opts.isolation ?? 'standard') === 'standard' && !this.layers.os)
      (opts.notice ?? ((l: string) => announceOnce(l)))(`r1 sandbox: ${os}; programs run behind the process layer only`);
  }

  /** Runs every test of the program; resolves with one result per test whatever the program does.
   * Rejects only on bad input (unknown language, malformed tests). */
  async run(program: Program): Promise<ProgramResult> {
    this.checked(program.language, program.code);
    const tests = normalizeTests(program.tests);
    if (!tests.length) return { passed: 0, total: 0, results: [] };
    const prints = this.reuse === 'distinct' ? [...new Set(tests.map(fingerprint))] : [];
    const results = await this.enqueue({ ...program, tests }, prints);
    return { passed: results.filter((r) => r.status === 'pass').length, total: results.length, results };
  }

  /** Runs one program once on `input` and returns its standard output with how it ended (a tool
   * call: nothing is judged). Its own pool's walls hold as for any program. No replay claims are
   * made: the replay rule guards verdicts, and an execution has none. A tool pool is kept apart from
   * the pool of code rewards (src/rollout/tools.ts) so that no verdict shares a process with it. */
  async execute(language: Language, code: string, input = ''): Promise<TestResult> {
    this.checked(language, code);
    const [result] = await this.enqueue({ language, code, tests: [{ input, output: '', capture: true }] }, []);
    return result;
  }

  /** Refuses what no process can run: an unknown language, code that is not a string, a destroyed pool. */
  private checked(language: unknown, code: unknown): void {
    if (!isLanguage(language)) throw new UserError(`language: ${languageList()}, got ${JSON.stringify(language)}`);
    if (typeof code !== 'string') throw new UserError('code: a string');
    if (this.destroyed) throw new Error('the sandbox pool was destroyed');
  }

  /** Queues a program for its language's processes; resolves with one result per test. */
  private enqueue(program: Waiting['program'], prints: string[]): Promise<TestResult[]> {
    return new Promise<TestResult[]>((resolve) => {
      this.queues[program.language].push({ program, prints, resolve });
      this.pump(program.language);
    });
  }

  /** Each live process's memory now and at start-up (bytes), from the host's /proc. */
  memory(language: Language): { rssBytes: number; baselineBytes: number | null }[] {
    return [...this.processes[language]].flatMap((p) => {
      const u = p.usage();
      return u ? [{ rssBytes: u.rssBytes, baselineBytes: p.baselineRss }] : [];
    });
  }

  async destroy(): Promise<void> {
    this.destroyed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    for (const lang of LANGUAGE_NAMES) {
      for (const w of this.queues[lang].splice(0))
        w.resolve(w.program.tests.map(() => ({ status: 'error', detail: 'the sandbox pool was destroyed' })));
      for (const p of this.processes[lang]) p.kill('stopped: the pool was destroyed');
      this.processes[lang].clear();
    }
  }

  /** Whether the process may take this program under the replay rule. */
  private mayTake(p: SandboxProcess, w: Waiting, claimed?: Set<string>): boolean {
    if (this.reuse === 'never') return p.programs + p.load === 0 && !claimed?.size;
    if (this.reuse === 'any') return true;
    return w.prints.every((f) => !p.seen.has(f) && !claimed?.has(f));
  }

  /** Gives each free process a waiting program it may take (at most `workers` processes busy), then
   * starts or retires processes so that every waiting program has one that may take it. */
  private pump(language: Language): void {
    if (this.destroyed) return;
    const procs = this.processes[language],
      queue = this.queues[language];
    const depth = this.reuse === 'never' ? 1 : DEPTH;
    let busy = [...procs].filter((p) => p.load > 0).length;
    // Round by round, so two programs go to two processes before one waits behind another.
    for (let load = 0; load < depth && queue.length; load++) {
      for (const p of procs) {
        if (!queue.length) break;
        if (!p.free || p.load !== load || (load === 0 && busy >= this.workers)) continue;
        const k = queue.findIndex((w) => this.mayTake(p, w));
        if (k === -1) continue;
        if (load === 0) busy++;
        this.give(p, queue.splice(k, 1)[0]);
      }
    }
    this.provide(language);
    this.tick();
  }

  private give(p: SandboxProcess, w: Waiting): void {
    const language = p.language,
      queue = this.queues[language];
    for (const f of w.prints) p.seen.add(f);
    void p.run({ id: this.nextId++, code: w.program.code, tests: [], limits: this.limits }, w.program.tests).then((results) => {
      if (results !== null) w.resolve(results);
      else if (this.destroyed) w.resolve(w.program.tests.map(() => ({ status: 'error', detail: 'the sandbox pool was destroyed' })));
      else queue.unshift(w); // the process ended before it began: run it elsewhere
      if (p.idle && p.retired) p.kill(p.retired);
      this.pump(language);
    });
    if (this.reuse === 'never') p.retire('ran its one program', 'one-program');
    else if (p.programs + p.load >= this.recycle[language]) p.retire('recycled', 'recycled');
  }

  /** Starts processes (up to `workers` while programs wait, and more, up to `maxProcesses`, for programs
   * no live process may take under the replay rule; `workers` at most at a time); when that cap is
   * reached, retires the idle process used longest ago that no waiting program can use, to make room. */
  private provide(language: Language): void {
    const procs = this.processes[language],
      queue = this.queues[language];
    if (!queue.length) return;
    const live = [...procs].filter((p) => p.retired === null);
    // Which waiting programs (the first 64) would have no process: each live process, and each one
    // about to start, is claimed by the programs it would serve, in queue order.
    const claims = new Map<SandboxProcess, Set<string>>(live.map((p) => [p, new Set<string>()]));
    const planned: Set<string>[] = [];
    for (const w of queue.slice(0, 64)) {
      const claim = (set: Set<string>) => {
        for (const f of w.prints) set.add(f);
        if (this.reuse === 'never') set.add('');
      };
      const p = live.find((q) => this.mayTake(q, w, claims.get(q)));
      if (p) claim(claims.get(p)!);
      else {
        const fresh = planned.find((set) => (this.reuse === 'never' ? set.size === 0 : w.prints.every((f) => !set.has(f))));
        if (fresh) claim(fresh);
        else if (this.reuse !== 'any') planned.push(new Set(this.reuse === 'never' ? [''] : w.prints));
      }
    }
    let wanted = Math.max(planned.length, Math.min(this.workers, queue.length) - live.length);
    // At most `workers` start at once: a start is seconds of CPU (pyodide), taken from running programs.
    let starting = live.filter((p) => p.starting).length;
    for (; wanted > 0 && procs.size < this.maxProcesses && starting < this.workers; wanted--, starting++) this.start(language);
    // Room for the rest: idle processes no waiting program can use go, the longest idle first.
    const spare = live.filter((p) => p.idle && p.isReady && claims.get(p)!.size === 0).sort((a, b) => a.lastUsed - b.lastUsed);
    if (procs.size >= this.maxProcesses)
      for (const p of spare.slice(0, wanted)) p.kill('replaced: no waiting program may run in it', 'replaced');
  }

  private start(language: Language): void {
    const p = new SandboxProcess(
      language,
      this.layers,
      this.limits,
      (dead) => this.exited(dead),
      this.entry,
      this.reuse === 'never' ? 1 : DEPTH,
    );
    this.processes[language].add(p);
    this.stats[language].started++;
    p.ready.then(
      () => this.pump(language),
      () => {},
    );
  }

  /** A process ended. One that never got ready fails the waiting programs (starting another would
   * fail the same way); any other is replaced at once if work is waiting. */
  private exited(p: SandboxProcess): void {
    const procs = this.processes[p.language];
    procs.delete(p);
    const ended = this.stats[p.language].ended,
      kind = p.retiredKind ?? 'exited';
    ended[kind] = (ended[kind] ?? 0) + 1;
    if (p.startError !== null && ![...procs].some((q) => q.isReady)) {
      for (const w of this.queues[p.language].splice(0)) w.resolve(w.program.tests.map(() => ({ status: 'error', detail: p.startError! })));
      return;
    }
    queueMicrotask(() => this.pump(p.language));
  }

  /** The clock that kills processes past their limits runs while any process is busy or starting. */
  private tick(): void {
    const any = () => LANGUAGE_NAMES.some((l) => this.processes[l].size > 0);
    if (this.timer || !any()) return;
    this.timer = setInterval(() => {
      const now = performance.now();
      for (const lang of LANGUAGE_NAMES) for (const p of this.processes[lang]) p.check(now);
      if (!any() && this.timer) {
        clearInterval(this.timer);
        this.timer = null;
      }
    }, 10);
    this.timer.unref();
  }
}
