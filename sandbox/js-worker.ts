// JavaScript worker: runs each test of a program in a fresh isolated-vm context of one long-lived
// isolate (a context costs about 0.35 ms, an isolate about 2 ms). The program is compiled once per
// program and run in each test's context. The isolate has a heap cap; runs get the test's remaining
// time as their timeout, and a wall-clock watchdog disposes the isolate when a run escapes it. A
// disposed isolate (timeout, memory) is replaced before the next test.
//
// Round trips: every run of program code (the program, a timer, a function call) is asynchronous, so
// this thread's wall-clock watchdog can still dispose the isolate if a run escapes its timeout. An
// asynchronous run costs about 30 us of CPU in thread hand-offs (and moving the isolate back to this
// thread), a synchronous one 2 us, so what runs none of the program's code (prelude, POLL, STATE) is
// synchronous, and the host asks POLL after each run instead of running a timer tick to learn there
// is none. Per test the fresh context is now the largest cost (~0.3 ms of ~0.6 ms).
import ivm from 'isolated-vm';
import { PRELUDE } from './js-prelude.ts';
import { tracked, type WorkerJob } from './protocol.ts';
import { compareOutput, compareValue, errorDetail, type Test, type TestResult } from './tests.ts';

type Compiled = { isolate: ivm.Isolate; prelude: ivm.Script; tick: ivm.Script; poll: ivm.Script; state: ivm.Script };
let current: Compiled | null = null;
let currentMb = 0;

function isolateFor(memoryMb: number): Compiled {
  if (current && !current.isolate.isDisposed && currentMb === memoryMb) return current;
  if (current && !current.isolate.isDisposed) current.isolate.dispose();
  const isolate = new ivm.Isolate({ memoryLimit: memoryMb });
  current = {
    isolate,
    prelude: isolate.compileScriptSync(PRELUDE, { filename: 'prelude.js' }),
    // The prelude's ops: 0 TICK, 1 POLL, 2 STATE, 3 CALL.
    tick: isolate.compileScriptSync('__r1(0)'),
    poll: isolate.compileScriptSync('__r1(1)'),
    state: isolate.compileScriptSync('__r1(2)'),
  };
  currentMb = memoryMb;
  return current;
}

type State = { out: string; err: string; truncated: boolean; exitCode: number | null; callDone: boolean; callResult: string | null; callError: string | null };
/** What POLL and STATE return, as JSON: the fields of State in this order. */
type StateRow = [string, string, boolean, number | null, boolean, string | null, string | null];

/** The error and its frames inside the program; the host's frames are not the program's business. */
function message(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const stack = e.stack && e.stack.startsWith(e.name) ? e.stack : `${e.name}: ${e.message}`;
  return stack.split('\n').filter((l) => !/isolated-vm boundary|\(node:|\(file:|\/sandbox\/|^\s+at (tracked|runJavaScript|async)/.test(l)).join('\n');
}
const isTimeout = (e: unknown) => e instanceof Error && /timed out/i.test(e.message);

/** One test in a fresh context. `script` is the program compiled in `c.isolate`. */
async function runTest(c: Compiled, script: ivm.Script, test: Test, job: WorkerJob): Promise<TestResult> {
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
  const context = isolate.createContextSync();
  let failure: unknown = null;
  try {
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
      for (;;) {
        const s = c.poll.runSync(context, { timeout: 1000 }) as string | null;
        if (s !== null) return s;
        if (performance.now() > deadline) throw new Error('Script execution timed out.');
        await c.tick.run(context, { timeout: left() });
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
      failure ??= e;
      json = null;
    }
    if (isolate.isDisposed) throw failure ?? new Error('isolate disposed');
    const [out, err, truncated, exitCode, callDone, callResult, callError] = JSON.parse(json ?? (c.state.runSync(context, { timeout: 1000 }) as string)) as StateRow;
    const state: State = { out, err, truncated, exitCode, callDone, callResult, callError };
    return judge(test, state, failure, outputBytes);
  } catch (e) {
    if (killed) return { status: 'timeout', detail: `ran past the wall-clock limit of ${wallMs} ms` };
    if (isTimeout(e)) return { status: 'timeout', detail: `time limit of ${timeMs} ms exceeded` };
    if (isolate.isDisposed) return { status: 'memory', detail: `memory limit of ${job.limits.memoryMb} MB exceeded` };
    return { status: 'error', detail: errorDetail(message(e)) };
  } finally {
    clearTimeout(watchdog);
    if (!isolate.isDisposed) context.release();
  }
}

function judge(test: Test, s: State, failure: unknown, cap: number): TestResult {
  if (s.truncated) return { status: 'fail', detail: `output limit of ${cap} characters exceeded` };
  if (failure !== null && s.exitCode === null) {
    if (isTimeout(failure)) return { status: 'timeout', detail: 'time limit exceeded' };
    if (failure instanceof RangeError && /allocation failed|memory|Invalid (string|array|typed array) length/i.test(failure.message)) return { status: 'memory', detail: errorDetail(failure.message) };
    return { status: 'error', detail: errorDetail(message(failure)) };
  }
  if (s.exitCode) return { status: 'error', detail: `exit code ${s.exitCode}${s.err ? ': ' + errorDetail(s.err, 2) : ''}` };
  if ('fn' in test) {
    if (s.exitCode === null && s.callError !== null) return { status: 'error', detail: errorDetail(s.callError) };
    if (!s.callDone) return { status: 'error', detail: `${test.fn} did not return (its promise never settled)` };
    return compareValue(s.callResult === null ? null : JSON.parse(s.callResult), test.expected);
  }
  return compareOutput(s.out, test.output);
}

export default async function runJavaScript(job: WorkerJob): Promise<TestResult[]> {
  const control = new Int32Array(job.control);
  const results: TestResult[] = [];
  let compiled: { c: Compiled; script: ivm.Script } | { error: string } | null = null;
  for (let i = 0; i < job.tests.length; i++) {
    const r = await tracked(control, i, () => {
      const c = isolateFor(job.limits.memoryMb);
      // Compiled again after the isolate was replaced.
      if (compiled === null || ('c' in compiled && compiled.c !== c)) {
        try {
          compiled = { c, script: c.isolate.compileScriptSync(job.code, { filename: 'main.js' }) };
        } catch (e) {
          compiled = { error: errorDetail(message(e), 1) };
        }
      }
      return 'error' in compiled ? { status: 'error', detail: compiled.error } : runTest(c, compiled.script, job.tests[i], job);
    });
    results.push(r);
  }
  const done = compiled as { script?: ivm.Script } | null;
  if (done?.script && !current?.isolate.isDisposed) done.script.release();
  return results;
}
