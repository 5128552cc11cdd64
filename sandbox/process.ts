// The pool's handle on one sandbox process: starts it (launch.ts), hands it one program at a time,
// reads its messages as untrusted input and judges every run itself (tests.ts `judge`). A process
// that ignores its wall-clock limit, sends a malformed or unexpected message, or exits, is killed;
// the program it was running gets its finished tests' verdicts, `timeout` or `error` for the running
// one, and `error` for the rest. Killing a process always works, where a thread stuck in native code
// could not be stopped.
import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable } from 'node:stream';
import { command, type Entry, type Layers } from './launch.ts';
import { parseMessage, testInput, type Job, type Language, type Limits, type Message } from './protocol.ts';
import { judge, type Test, type TestResult } from './tests.ts';

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

export class SandboxProcess {
  readonly ready: Promise<void>;
  /** Programs this process has finished. */
  programs = 0;
  /** Set once the process must take no further program (it asked to retire, or it is dead). */
  retired: string | null = null;
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
  ) {
    const { file, args } = command(language, layers, entry);
    // Its own process group (a signal to "every process of my group" reaches only itself), no
    // environment of ours, no terminal.
    this.child = spawn(file, args, { stdio: ['pipe', 'ignore', 'pipe', 'pipe'], env: {}, detached: true });
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
      const why = this.stderr.trim().split('\n').filter((l) => l && l.length < 300).slice(-2).join(' | ');
      if (!this.started) this.startError = `the ${language} sandbox process exited before it was ready (${signal ?? `exit ${code}`})${why ? ': ' + why : ''}`;
      failed(new Error(this.startError ?? 'exited'));
      this.die(`ended (${signal ?? `exit ${code}`})`);
    });
  }

  /** Whether it can take another program now. */
  get free(): boolean {
    return this.started && this.retired === null && this.jobs.length < DEPTH;
  }

  /** Programs handed over and not finished. */
  get load(): number {
    return this.jobs.length;
  }

  get idle(): boolean {
    return this.jobs.length === 0;
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

  /** Called by the pool's clock: kills a process past its wall-clock limit or stuck at start. */
  check(now: number): void {
    if (!this.started) {
      if (now - this.startedAt > START_MS) this.kill(`did not start within ${START_MS / 1000} s`);
      return;
    }
    const r = this.jobs[0];
    if (r && now - r.since > this.limits.wallMs + 250) {
      this.kill(null);
    }
  }

  /** Kills the process. `why` null: the running test ran past its wall-clock limit. */
  kill(why: string | null): void {
    this.finish(why);
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
    this.retired ??= 'closed';
    this.child.stdin!.end();
  }

  private data(chunk: string, ready: () => void): void {
    this.buffered += chunk;
    if (this.buffered.length > this.maxLine && this.buffered.indexOf('\n') === -1) return this.kill('sent a message over the size limit');
    for (let nl = this.buffered.indexOf('\n'); nl !== -1; nl = this.buffered.indexOf('\n')) {
      const line = this.buffered.slice(0, nl);
      this.buffered = this.buffered.slice(nl + 1);
      const m = parseMessage(line, this.limits.outputBytes);
      if (typeof m === 'string') return this.kill(`sent ${m}`);
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
        ready();
        return true;
      case 'retire':
        // Its state could not be proven clean: no further program runs in it.
        this.retiredBetween = true;
        this.kill(`retired: ${m.why}`);
        return false;
      case 'run':
        if (!r || m.id !== r.job.id || m.i !== r.results.length || m.i >= r.tests.length) break;
        r.results.push(judge(r.tests[m.i], m.run, this.limits.outputBytes));
        r.since = performance.now();
        if (r.results.length === r.tests.length) {
          this.jobs.shift();
          if (this.jobs.length) this.jobs[0].since = performance.now();
          else this.hold(false);
          this.programs++;
          r.resolve(r.results);
        }
        return true;
    }
    this.kill(`sent an unexpected ${m.t} message`);
    return false;
  }

  private die(why: string): void {
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
        if (why === null) return { status: 'timeout', detail: `ran past the wall-clock limit of ${this.limits.wallMs} ms; the sandbox process was killed and replaced` };
        return { status: /out of memory|heap limit/i.test(this.stderr) ? 'memory' : 'error', detail: `the sandbox process ${why}; it was replaced` };
      }
      return { status: 'error', detail: 'not run: an earlier test had to be stopped' };
    });
    r.resolve(results);
  }
}
