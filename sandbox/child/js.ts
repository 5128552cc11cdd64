// JavaScript inside the sandbox process: every test runs in a fresh isolated-vm context, a new V8
// realm with its own globals and built-ins, so no object of one program is reachable from the next.
// What a V8 isolate shares between its contexts cannot carry a program's state either: a
// FinalizationRegistry's callbacks reach the program only as tasks of the prelude's own timer queue,
// run (under the test's time limit) by the host while that test runs, and never after it; the prelude
// removes shared memory, Atomics and WebAssembly; the microtask queue is drained within each run's
// time limit; symbols in the registry hold no data. A fresh isolate per program would cost about 3.5 ms
// (creating it, and running the prelude cold), half the JavaScript throughput (measured: 842 against
// 1,634 executions/s); the isolate is replaced after a time or memory limit and every 100 programs.
// It has a heap cap, and after each run its whole heap is measured: V8 lets one large object (a
// flattened 512 MB string) past the cap, and the isolate would then fail the next program, so an
// isolate over its cap is disposed and the test gets `memory`. Runs get the test's remaining time as
// their timeout, and a wall-clock watchdog disposes the isolate when a run escapes it; the pool kills
// the whole process if even that fails.
//
// Round trips: every run of program code (the program, a timer, a function call) is asynchronous, so
// this thread's wall-clock watchdog can still dispose the isolate if a run escapes its timeout. An
// asynchronous run costs about 30 us of CPU in thread hand-offs (and moving the isolate back to this
// thread), a synchronous one 2 us, so what runs none of the program's code (prelude, POLL, STATE) is
// synchronous, and the host asks POLL after each run instead of running a timer tick to learn there
// is none.
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type ivmModule from 'isolated-vm';
import type ivm from 'isolated-vm';
import type { Job, Run, TestInput } from '../protocol.ts';
import { errorDetail } from '../tests.ts';
import { PRELUDE } from './js-prelude.ts';

/** isolated-vm's Isolate, loaded by prepare() from the folder the process may read. */
let Isolate: typeof ivmModule.Isolate;

type Compiled = { isolate: ivm.Isolate; prelude: ivm.Script; tick: ivm.Script; poll: ivm.Script; state: ivm.Script };

/** A fresh isolate with the prelude and the host's ops compiled in it. */
function freshIsolate(memoryMb: number): Compiled {
  const isolate = new Isolate({ memoryLimit: memoryMb });
  return {
    isolate,
    prelude: isolate.compileScriptSync(PRELUDE, { filename: 'prelude.js' }),
    // The prelude's ops: 0 TICK, 1 POLL, 2 STATE, 3 CALL.
    tick: isolate.compileScriptSync('__r1(0)'),
    poll: isolate.compileScriptSync('__r1(1)'),
    state: isolate.compileScriptSync('__r1(2)'),
  };
}

type State = {
  out: string;
  err: string;
  truncated: boolean;
  exitCode: number | null;
  callDone: boolean;
  callResult: string | null;
  callError: string | null;
};
/** What POLL and STATE return, as JSON: the fields of State in this order. */
type StateRow = [string, string, boolean, number | null, boolean, string | null, string | null];

/** The error and its frames inside the program; the host's frames are not the program's business. */
function message(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const stack = e.stack && e.stack.startsWith(e.name) ? e.stack : `${e.name}: ${e.message}`;
  return stack
    .split('\n')
    .filter((l) => !/isolated-vm boundary|\(node:|file:\/\/|\/sandbox\/|^\s+at (tracked|runJavaScript|async)/.test(l))
    .join('\n');
}
const isTimeout = (e: unknown) => e instanceof Error && /timed out/i.test(e.message);

/** Thrown when the isolate's heap (with memory outside it that V8 charges to it) is over its cap. */
class OverMemory extends Error {}
/** Disposes the isolate and throws when its heap is over the cap. Costs ~15 us. */
function checkHeap(isolate: ivm.Isolate, memoryMb: number): void {
  if (isolate.isDisposed) return;
  const h = isolate.getHeapStatisticsSync();
  if (h.used_heap_size + h.externally_allocated_size > memoryMb * 2 ** 20) {
    isolate.dispose();
    throw new OverMemory(
      `memory limit of ${memoryMb} MB exceeded (heap at ${Math.round((h.used_heap_size + h.externally_allocated_size) / 2 ** 20)} MB)`,
    );
  }
}

/** One test in a fresh context. `script` is the program compiled in `c.isolate`. */
async function runTest(c: Compiled, script: ivm.Script, test: TestInput, job: Job): Promise<Run> {
  const { isolate } = c;
  const { timeMs, wallMs, outputBytes } = job.limits;
  const deadline = performance.now() + timeMs;
  const left = () => Math.max(1, Math.ceil(deadline - performance.now()));
  let killed = false;
  // Microtask floods and the like can outlive `timeout`: the isolate is disposed from here, off its thread.
  const watchdog = setTimeout(() => {
    killed = true;
    if (!isolate.isDisposed) isolate.dispose();
  }, wallMs);
  let context: ivm.Context | null = null;
  let failure: unknown = null;
  try {
    context = isolate.createContextSync();
    const global = context.global;
    global.setSync('__r1_in', 'input' in test ? test.input : '');
    global.setSync('__r1_cap', outputBytes);
    c.prelude.runSync(context, { timeout: 1000 });
    try {
      await script.run(context, { timeout: left() });
    } catch (e) {
      failure = e;
    }
    // Runs the due timers one by one until none is left; resolves with the state. POLL runs after the
    // previous run's microtasks, so timers those set are seen too.
    const drain = async (): Promise<string> => {
      for (let ticks = 1; ; ticks++) {
        const s = c.poll.runSync(context!, { timeout: 1000 }) as string | null;
        if (s !== null) return s;
        if (performance.now() > deadline) throw new Error('Script execution timed out.');
        await c.tick.run(context!, { timeout: left() });
        if (ticks % 32 === 0) checkHeap(isolate, job.limits.memoryMb);
      }
    };
    let json: string | null = null;
    try {
      if (failure === null) json = await drain();
      if (failure === null && 'fn' in test) {
        json = null;
        const name = test.fn;
        const call = isolate.compileScriptSync(
          `__r1(3, typeof ${name} === 'undefined' ? undefined : ${name}, typeof Solution === 'undefined' ? undefined : Solution, ${JSON.stringify(name)}, ${JSON.stringify(JSON.stringify(test.args))})`,
        );
        try {
          await call.run(context, { timeout: left() });
        } finally {
          if (!isolate.isDisposed) call.release();
        }
        json = await drain();
      }
    } catch (e) {
      if (e instanceof OverMemory) throw e;
      failure ??= e;
      json = null;
    }
    checkHeap(isolate, job.limits.memoryMb);
    if (isolate.isDisposed) throw failure ?? new Error('isolate disposed');
    const [out, err, truncated, exitCode, callDone, callResult, callError] = JSON.parse(
      json ?? (c.state.runSync(context, { timeout: 1000 }) as string),
    ) as StateRow;
    const state: State = { out, err, truncated, exitCode, callDone, callResult, callError };
    return outcome(test, state, failure);
  } catch (e) {
    if (e instanceof OverMemory) return fault('memory', e.message);
    if (killed) return fault('timeout', `ran past the wall-clock limit of ${wallMs} ms`);
    if (isTimeout(e)) return fault('timeout', `time limit of ${timeMs} ms exceeded`);
    if (isolate.isDisposed) return fault('memory', `memory limit of ${job.limits.memoryMb} MB exceeded`);
    return fault('error', errorDetail(message(e)));
  } finally {
    clearTimeout(watchdog);
    if (context && !isolate.isDisposed) context.release();
  }
}

const fault = (status: Run['status'], detail: string): Run => ({ status, out: '', result: null, detail });

/** How the run ended, from the prelude's state: the output and the function's result go to the pool,
 * which judges them. */
function outcome(test: TestInput, s: State, failure: unknown): Run {
  if (s.truncated) return { status: 'output', out: s.out, result: null, detail: '' };
  if (failure !== null && s.exitCode === null) {
    if (isTimeout(failure)) return fault('timeout', 'time limit exceeded');
    if (failure instanceof RangeError && /allocation failed|memory|Invalid (string|array|typed array) length/i.test(failure.message))
      return fault('memory', errorDetail(failure.message));
    return fault('error', errorDetail(message(failure)));
  }
  if (s.exitCode) return fault('error', `exit code ${s.exitCode}${s.err ? ': ' + errorDetail(s.err, 2) : ''}`);
  if ('fn' in test) {
    if (s.exitCode === null && s.callError !== null) return fault('error', errorDetail(s.callError));
    if (!s.callDone) return fault('error', `${test.fn} did not return (its promise never settled)`);
    return { status: 'ok', out: s.out, result: s.callResult, detail: '' };
  }
  return { status: 'ok', out: s.out, result: null, detail: '' };
}

/** Loads isolated-vm from its folder (the one the process may read); one isolate is made and dropped
 * so the first program does not pay V8's first-use costs. */
export async function prepare(runtimeDir: string): Promise<void> {
  Isolate = (createRequire(import.meta.url)(join(runtimeDir, 'isolated-vm.js')) as typeof ivmModule).Isolate;
  freshIsolate(16).isolate.dispose();
}

/** Every test has its own context: nothing of a program is reachable from the next (see the header). */
export const taint = (): string | null => null;

/** Runs every test of the program, each in a fresh context, reporting each run through `ran`. A disposed isolate (timeout, memory) is replaced, and the program compiled again,
 * before the next test. */
export async function runProgram(job: Job, ran: (i: number, run: Run) => void): Promise<void> {
  let compiled: ivm.Script | string | null = null;
  let c: Compiled | null = null;
  try {
    for (let i = 0; i < job.tests.length; i++) {
      if (c === null || c.isolate.isDisposed) {
        c = isolateFor(job.limits.memoryMb);
        try {
          compiled = c.isolate.compileScriptSync(job.code, { filename: 'main.js' });
        } catch (e) {
          compiled = errorDetail(message(e), 1);
        }
      }
      ran(i, typeof compiled === 'string' ? fault('error', compiled) : await runTest(c, compiled!, job.tests[i], job));
    }
  } finally {
    if (compiled && typeof compiled !== 'string' && c && !c.isolate.isDisposed) compiled.release();
    if (kept && ++kept.programs >= ISOLATE_PROGRAMS && !kept.c.isolate.isDisposed) kept.c.isolate.dispose();
  }
}

/** Programs one isolate serves before it is replaced (hygiene: its heap starts empty again). */
const ISOLATE_PROGRAMS = 100;
let kept: { c: Compiled; mb: number; programs: number } | null = null;

/** The isolate for the next program: the one kept unless a limit disposed it or the cap changed. */
function isolateFor(memoryMb: number): Compiled {
  if (kept && !kept.c.isolate.isDisposed && kept.mb === memoryMb) return kept.c;
  if (kept && !kept.c.isolate.isDisposed) kept.c.isolate.dispose();
  kept = { c: freshIsolate(memoryMb), mb: memoryMb, programs: 0 };
  return kept.c;
}
