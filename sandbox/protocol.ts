// What the pool sends its workers, and the shared control block both sides watch.
import type { Test, TestResult } from './tests.ts';

export type Limits = {
  /** Time budget of one test execution (program start to its last timer or function result). */
  timeMs: number;
  /** Memory cap of one execution: the isolate heap (JS) or the interpreter's growth (Python). */
  memoryMb: number;
  /** Standard output kept per execution (characters); a program writing more fails the test. */
  outputBytes: number;
  /** Wall-clock cap after which an execution that ignored its time limit is killed; default 2 x timeMs + 250. */
  wallMs?: number;
};
export const DEFAULT_LIMITS: Limits = { timeMs: 2000, memoryMb: 128, outputBytes: 1 << 20 };

export type Language = 'javascript' | 'python';
export type WorkerJob = { code: string; tests: Test[]; limits: Required<Limits>; control: SharedArrayBuffer };

/** Control block (Int32): [0] interrupt request (Python reads it as a signal), [1] 1 + the index of
 * the test running (0 before the first), [2 + i] the status code of test i once it is done. The pool
 * watches it to stop a runaway test, and reads it back when it had to kill the worker. */
export const INTERRUPT = 0, CURRENT = 1, FIRST_STATUS = 2;
export const STATUS_CODES = ['pass', 'fail', 'error', 'timeout', 'memory'] as const;
export const statusCode = (r: TestResult) => 1 + STATUS_CODES.indexOf(r.status);

export function controlBlock(tests: number): SharedArrayBuffer {
  return new SharedArrayBuffer(4 * (FIRST_STATUS + tests));
}

/** Marks test i as started, runs it, records its status. */
export async function tracked(control: Int32Array, i: number, run: () => Promise<TestResult> | TestResult): Promise<TestResult> {
  Atomics.store(control, CURRENT, i + 1);
  const r = await run();
  Atomics.store(control, FIRST_STATUS + i, statusCode(r));
  return r;
}
