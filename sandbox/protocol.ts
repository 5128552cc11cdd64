// What the pool and a sandbox process say to each other. The pool writes one job per line to the
// process's standard input; the process writes one message per line to file descriptor 3. A job
// carries the program and the tests' inputs, never their expected outputs, so nothing inside the
// sandbox can know what would pass. Everything the process writes is untrusted: the pool parses it
// with `parseMessage`, bounded in size, and judges each run itself (tests.ts `judge`). It imports
// nothing: the tests, the languages and the child all build on it.

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

/** A test as the sandbox sees it: its input or its call, without the expected answer. */
export type TestInput = { input: string } | { fn: string; args: unknown[] };

/** Pool -> process: one program and its tests. */
export type Job = { id: number; code: string; tests: TestInput[]; limits: Required<Limits> };

/** How one test execution ended, as the process reports it. `ok`: the program ran to the end and
 * `out` (standard output) or `result` (the function's return value in the result notation of
 * result.ts: JSON whose integer literals are exact integers of any size, decimal or 0x-hexadecimal,
 * plus NaN and Infinity; the judge refuses anything else) is to be judged;
 * `output`: it wrote past the cap; the others are failures the program caused. */
export const RUN_STATUSES = ['ok', 'output', 'error', 'timeout', 'memory'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];
export type Run = { status: RunStatus; out: string; result: string | null; detail: string };

/** Process -> pool. `ready` once the runtime has loaded; `run` when test i of job id ended (the next
 * test starts at once, so the pool times each test from the previous one's message); `retire` when
 * the process should not take another program (its state could not be proven clean). */
export type Message = { t: 'ready' } | { t: 'run'; id: number; i: number; run: Run } | { t: 'retire'; why: string };

/** A detail longer than this is cut by the pool. */
export const DETAIL_CHARS = 300;

const isInt = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/** A message from the process, or what is wrong with it. `outputBytes` bounds `out` and `result`. */
export function parseMessage(line: string, outputBytes: number): Message | string {
  let m: unknown;
  try {
    m = JSON.parse(line);
  } catch {
    return 'a line that is not JSON';
  }
  if (typeof m !== 'object' || m === null || Array.isArray(m)) return 'a message that is not an object';
  const o = m as Record<string, unknown>;
  switch (o.t) {
    case 'ready':
      return { t: 'ready' };
    case 'retire':
      return { t: 'retire', why: String(o.why).slice(0, DETAIL_CHARS) };
    case 'run': {
      if (!isInt(o.id) || !isInt(o.i)) return 'a run message without id and test index';
      const r = o.run as Record<string, unknown> | null;
      if (typeof r !== 'object' || r === null) return 'a run message without a run';
      if (!RUN_STATUSES.includes(r.status as RunStatus)) return `a run with status ${JSON.stringify(r.status)}`;
      if (typeof r.out !== 'string' || r.out.length > outputBytes) return 'a run whose output is not a string within the output cap';
      if (r.result !== null && (typeof r.result !== 'string' || r.result.length > outputBytes))
        return 'a run whose result is not JSON text within the output cap';
      if (typeof r.detail !== 'string') return 'a run without a detail string';
      return {
        t: 'run',
        id: o.id,
        i: o.i,
        run: { status: r.status as RunStatus, out: r.out, result: r.result, detail: r.detail.slice(0, DETAIL_CHARS) },
      };
    }
    default:
      return `a message of unknown type ${JSON.stringify(o.t)?.slice(0, 40)}`;
  }
}
