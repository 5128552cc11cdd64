// The pool's handle on one sandbox process: starts it (launch.ts), hands it one program at a time,
// reads its messages as untrusted input and judges every run itself (tests.ts `judge`). A process
// that ignores its wall-clock limit, sends a malformed or unexpected message, or exits, is killed;
// the program it was running gets its finished tests' verdicts, `timeout` or `error` for the running
// one, and `error` for the rest. Killing a process always works, where a thread stuck in native code
// could not be stopped.
//
// What the process reports about itself is not trusted for its limits either: its CPU time and memory
// are read from the host's /proc (the whole process tree: bubblewrap, node and anything it started).
// A process that uses CPU while it has no program, or whose memory does not come back near its
// start-up size after a program, is retired (the program it holds is not charged).
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { command, type Entry, type Layers } from './launch.ts';
import type { Language } from './languages.ts';
import { parseMessage, type Job, type Limits, type Message } from './protocol.ts';
import { judge, testInput, type Test, type TestResult } from './tests.ts';

/** A process that has not said ready after this long (pyodide loads in seconds) is stuck. */
export const START_MS = 120_000;
/** Bytes of the process's standard error kept to explain a crash. */
const STDERR_TAIL = 2048;

type Running = {
  job: Job;
  tests: Test[];
  results: TestResult[];
  /** When the running test (the first without a verdict) began: the previous test's message, or
   * the moment the program reached the front. */
  since: number;
  /** The verdicts, or null when the process ended before the program started (run it elsewhere). */
  resolve: (r: TestResult[] | null) => void;
};

/** Programs handed to one process at a time: the next waits in its input while one runs, so the
 * process never idles for a round trip to the pool. */
export const DEPTH = 2;

/** After a program, CPU time of an idle process is not counted for this long (its clean-up). */
const IDLE_GRACE_MS = 250;
/** An idle process is sampled over windows of this length... */
const IDLE_WINDOW_MS = 500;
/** ...and retired when it used more than this share of a core in one. */
const IDLE_CPU_SHARE = 0.1;
/** Memory checks after programs, at most this often per process (a /proc walk costs ~0.2 ms). */
const RSS_EVERY_MS = 200;
/** Memory above the start-up size, on top of one program's cap, that a process may keep (JIT code,
 * the young generation, allocator slack). */
const RSS_SLACK_MB = 96;

/** Why a process ended, by kind: the pool counts them (`SandboxPool.stats`). */
export type RetireKind =
  | 'recycled'
  | 'replaced'
  | 'one-program'
  | 'asked'
  | 'idle-cpu'
  | 'memory'
  | 'limit'
  | 'protocol'
  | 'exited'
  | 'stopped';

const CLOCK_TICKS_MS = 10; // USER_HZ is 100 on every Linux the sandbox supports
const PAGE = 4096;

/** The pids of a process and of everything below it, from the host's /proc; [] once it is gone. */
export function processTree(pid: number): number[] {
  const out: number[] = [];
  const visit = (p: number, depth: number) => {
    out.push(p);
    if (depth > 8) return;
    let tasks: string[];
    try {
      tasks = readdirSync(`/proc/${p}/task`);
    } catch {
      return;
    }
    for (const t of tasks) {
      let children = '';
      try {
        children = readFileSync(`/proc/${p}/task/${t}/children`, 'utf8');
      } catch {
        continue;
      }
      for (const c of children.split(' ')) if (c.trim()) visit(Number(c), depth + 1);
    }
  };
  visit(pid, 0);
  return out;
}

/** CPU time (ms) and resident memory (bytes) of a process tree, as the host's kernel counts them;
 * null where /proc cannot say (not Linux, or the process is gone). */
export function treeUsage(pid: number): { cpuMs: number; rssBytes: number } | null {
  if (process.platform !== 'linux') return null;
  let cpuMs = 0,
    rssBytes = 0,
    any = false;
  for (const p of processTree(pid)) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      // Fields after the command name (which may hold spaces and parentheses): utime is the 12th, stime the 13th.
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      cpuMs += (Number(f[11]) + Number(f[12])) * CLOCK_TICKS_MS;
      rssBytes += Number(readFileSync(`/proc/${p}/statm`, 'utf8').split(' ')[1]) * PAGE;
      any = true;
    } catch {
      // it ended between the walk and the read
    }
  }
  return any ? { cpuMs, rssBytes } : null;
}

export class SandboxProcess {
  readonly ready: Promise<void>;
  /** Programs this process has finished. */
  programs = 0;
  /** Set once the process must take no further program (it asked to retire, or it is dead). */
  retired: string | null = null;
  /** What kind of end `retired` is. */
  retiredKind: RetireKind | null = null;
  /** Fingerprints of every test handed to this process in its life (the pool's replay wall). */
  readonly seen = new Set<string>();
  /** When it last finished a program (or became ready): the pool retires the longest idle first. */
  lastUsed = performance.now();
  /** Resident memory of its process tree when it said ready, in bytes (null where /proc cannot say). */
  baselineRss: number | null = null;
  /** The idle-CPU sample: when and how much CPU, or null while busy or within the grace. */
  private idleSample: { at: number; cpuMs: number } | null = null;
  private idleSince = 0;
  private lastRssCheck = 0;
  private readonly child: ChildProcess;
  /** The programs handed over, in order; the first is running (or about to). */
  private readonly jobs: Running[] = [];
  private buffered = '';
  private stderr = '';
  private readonly startedAt = performance.now();
  private started = false;
  /** It said `retire`, which it does after a program's last run and before the next program. */
  private retiredBetween = false;
  private readonly maxLine: number;

  constructor(
    readonly language: Language,
    layers: Layers,
    private readonly limits: Required<Limits>,
    private readonly onExit: (p: SandboxProcess) => void,
    entry: Entry = 'main',
    /** Programs it may hold at once (1: none waits in its input). */
    private readonly depth: number = DEPTH,
  ) {
    const { file, args, uid, gid } = command(language, layers, entry);
    // Its own process group (a signal to "every process of my group" reaches only itself), no
    // environment of ours, no terminal.
    this.child = spawn(file, args, { stdio: ['pipe', 'ignore', 'pipe', 'pipe'], env: {}, detached: true, uid, gid });
    // A run's message holds its output and result, each within the cap, JSON-escaped (up to 6x).
    this.maxLine = 12 * limits.outputBytes + 65_536;
    let ready!: () => void, failed!: (e: Error) => void;
    this.ready = new Promise((ok, fail) => ((ready = ok), (failed = fail)));
    this.ready.catch(() => {});
    const messages = this.child.stdio[3] as Readable;
    messages.setEncoding('utf8');
    messages.on('data', (chunk: string) => this.data(chunk, ready));
    this.child.stderr!.setEncoding('utf8');
    this.child.stderr!.on('data', (s: string) => (this.stderr = (this.stderr + s).slice(-STDERR_TAIL)));
    this.child.stdin!.on('error', () => {}); // a dead process: the exit handler reports it
    this.child.on('error', (e) => {
      this.startError ??= `the ${language} sandbox process could not start: ${e.message}`;
      this.die(this.startError);
    });
    this.child.on('exit', (code, signal) => {
      const why = this.stderr
        .trim()
        .split('\n')
        .filter((l) => l && l.length < 300)
        .slice(-2)
        .join(' | ');
      if (!this.started)
        this.startError = `the ${language} sandbox process exited before it was ready (${signal ?? `exit ${code}`})${why ? ': ' + why : ''}`;
      failed(new Error(this.startError ?? 'exited'));
      this.die(`ended (${signal ?? `exit ${code}`})`);
    });
  }

  /** Whether it can take another program now. */
  get free(): boolean {
    return this.started && this.retired === null && this.jobs.length < this.depth;
  }

  /** Programs handed over and not finished. */
  get load(): number {
    return this.jobs.length;
  }

  get idle(): boolean {
    return this.jobs.length === 0;
  }

  /** Its process tree's CPU time and resident memory now (host /proc), or null where that cannot be read. */
  usage(): { cpuMs: number; rssBytes: number } | null {
    return this.child.pid === undefined ? null : treeUsage(this.child.pid);
  }

  /** Whether it is still loading its runtime. */
  get starting(): boolean {
    return !this.started && this.retired === null;
  }

  /** Whether it has said ready (and is still alive). */
  get isReady(): boolean {
    return this.started && this.retired === null;
  }

  /** Why it ended before it was ready, or null. */
  startError: string | null = null;

  /** An idle process does not keep the host's event loop alive; a busy one does. */
  private hold(on: boolean): void {
    const m = on ? 'ref' : 'unref';
    this.child[m]();
    for (const s of [this.child.stdio[3], this.child.stderr] as (Readable & { ref?(): void; unref?(): void })[]) s?.[m]?.();
  }

  /** Runs the program's tests; resolves with one verdict per test whatever the process does. */
  run(job: Job, tests: Test[]): Promise<TestResult[] | null> {
    if (!this.free) throw new Error('internal: this sandbox process cannot take a program now');
    return new Promise((resolve) => {
      this.jobs.push({ job, tests, results: [], since: performance.now(), resolve });
      this.hold(true);
      this.child.stdin!.write(JSON.stringify({ ...job, tests: tests.map(testInput) } satisfies Job) + '\n');
    });
  }

  /** Called by the pool's clock: kills a process past its wall-clock limit or stuck at start, and one
   * that keeps a core busy while it has no program. */
  check(now: number): void {
    if (!this.started) {
      if (now - this.startedAt > START_MS) this.kill(`did not start within ${START_MS / 1000} s`, 'limit');
      return;
    }
    const r = this.jobs[0];
    if (r && now - r.since > this.limits.wallMs + 250) {
      this.kill(null, 'limit');
      return;
    }
    if (!r && this.retired === null) this.checkIdle(now);
  }

  /** CPU used while idle, past the clean-up grace, over windows of IDLE_WINDOW_MS. */
  private checkIdle(now: number): void {
    if (now - this.idleSince < IDLE_GRACE_MS) return;
    if (this.idleSample && now - this.idleSample.at < IDLE_WINDOW_MS) return;
    const u = treeUsage(this.child.pid!);
    if (!u) return;
    const prev = this.idleSample;
    this.idleSample = { at: now, cpuMs: u.cpuMs };
    if (prev && u.cpuMs - prev.cpuMs > IDLE_CPU_SHARE * (now - prev.at)) {
      this.kill(`used ${Math.round(u.cpuMs - prev.cpuMs)} ms of CPU in ${Math.round(now - prev.at)} ms without a program`, 'idle-cpu');
    }
  }

  /** After a program: a process whose memory stays above its start-up size plus one program's cap
   * (and slack) takes no further program. */
  private checkMemory(now: number): void {
    if (this.baselineRss === null || now - this.lastRssCheck < RSS_EVERY_MS) return;
    this.lastRssCheck = now;
    const u = treeUsage(this.child.pid!);
    if (!u) return;
    const allowed = this.baselineRss + (this.limits.memoryMb + RSS_SLACK_MB) * 2 ** 20;
    if (u.rssBytes > allowed)
      this.retire(
        `kept ${Math.round(u.rssBytes / 2 ** 20)} MB after a program (started at ${Math.round(this.baselineRss / 2 ** 20)} MB)`,
        'memory',
      );
  }

  /** Takes no further program; the pool ends it once it is idle. */
  retire(why: string, kind: RetireKind): void {
    if (this.retired !== null) return;
    this.retired = why;
    this.retiredKind = kind;
  }

  /** Kills the process. `why` null: the running test ran past its wall-clock limit. */
  kill(why: string | null, kind: RetireKind = 'stopped'): void {
    this.finish(why);
    if (this.retired === null) this.retiredKind = kind;
    this.retired ??= why ?? 'killed at the wall-clock limit';
    if (this.child.exitCode === null && this.child.signalCode === null) {
      try {
        process.kill(-this.child.pid!, 'SIGKILL');
      } catch {
        this.child.kill('SIGKILL');
      }
    }
  }

  /** Closes its input: the process exits when it has nothing left to run. */
  close(): void {
    this.retire('closed', 'stopped');
    this.child.stdin!.end();
  }

  private data(chunk: string, ready: () => void): void {
    this.buffered += chunk;
    if (this.buffered.length > this.maxLine && this.buffered.indexOf('\n') === -1)
      return this.kill('sent a message over the size limit', 'protocol');
    for (let nl = this.buffered.indexOf('\n'); nl !== -1; nl = this.buffered.indexOf('\n')) {
      const line = this.buffered.slice(0, nl);
      this.buffered = this.buffered.slice(nl + 1);
      const m = parseMessage(line, this.limits.outputBytes);
      if (typeof m === 'string') return this.kill(`sent ${m}`, 'protocol');
      if (!this.handle(m, ready)) return;
    }
  }

  /** False when the message broke the protocol (the process is killed). */
  private handle(m: Message, ready: () => void): boolean {
    const r = this.jobs[0];
    switch (m.t) {
      case 'ready':
        if (this.started) break;
        this.started = true;
        this.hold(false);
        this.idleSince = this.lastUsed = performance.now();
        this.baselineRss = treeUsage(this.child.pid!)?.rssBytes ?? null;
        ready();
        return true;
      case 'retire':
        // Its state could not be proven clean: no further program runs in it.
        this.retiredBetween = true;
        this.kill(`retired: ${m.why}`, 'asked');
        return false;
      case 'run':
        if (!r || m.id !== r.job.id || m.i !== r.results.length || m.i >= r.tests.length) break;
        r.results.push(judge(r.tests[m.i], m.run, this.limits.outputBytes));
        r.since = performance.now();
        if (r.results.length === r.tests.length) {
          this.jobs.shift();
          const now = performance.now();
          if (this.jobs.length) this.jobs[0].since = now;
          else {
            this.hold(false);
            this.idleSince = now;
            this.idleSample = null;
          }
          this.programs++;
          this.lastUsed = now;
          this.checkMemory(now);
          r.resolve(r.results);
        }
        return true;
    }
    this.kill(`sent an unexpected ${m.t} message`, 'protocol');
    return false;
  }

  private die(why: string): void {
    if (this.retired === null) this.retiredKind = 'exited';
    this.retired ??= why;
    this.finish(why);
    this.onExit(this);
  }

  /** Ends the running program after the process was stopped: finished tests keep their verdicts;
   * programs that had not started go back to the pool. */
  private finish(why: string | null): void {
    const [r, ...waiting] = this.jobs.splice(0);
    for (const w of waiting) w.resolve(null);
    if (!r) return;
    // A process retires between programs: the one at the front had not begun.
    if (r.results.length === 0 && this.retiredBetween) return r.resolve(null);
    const results = r.tests.map((_, i): TestResult => {
      if (i < r.results.length) return r.results[i];
      if (i === r.results.length) {
        if (why === null)
          return {
            status: 'timeout',
            detail: `ran past the wall-clock limit of ${this.limits.wallMs} ms; the sandbox process was killed and replaced`,
          };
        return {
          status: /out of memory|heap limit/i.test(this.stderr) ? 'memory' : 'error',
          detail: `the sandbox process ${why}; it was replaced`,
        };
      }
      return { status: 'error', detail: 'not run: an earlier test had to be stopped' };
    });
    r.resolve(results);
  }
}
