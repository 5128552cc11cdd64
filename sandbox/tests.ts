// Test cases and how a run is judged: the accepted test layouts, line-by-line output comparison and
// deep equality of function results. Pure functions, shared by the pool and its workers.
import { UserError } from '../src/errors.ts';
import type { Run, TestInput } from './protocol.ts';
import { parseResult, type ResultValue } from './result.ts';

/** `capture`: the run's standard output is returned with its verdict (a tool call's output, shown to
 * the model; set by SandboxPool.execute, never by a dataset's tests). */
export type StdioTest = { input: string; output: string; capture?: boolean };
export type CallTest = { fn: string; args: unknown[]; expected: unknown };
export type Test = StdioTest | CallTest;
export type Status = 'pass' | 'fail' | 'error' | 'timeout' | 'memory';
export type TestResult = { status: Status; detail?: string; out?: string };

/** What the sandbox is given of a test: its input or its call, without the expected answer. */
export const testInput = (t: Test): TestInput => ('fn' in t ? { fn: t.fn, args: t.args } : { input: t.input });

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const show = (v: unknown) => {
  // Integers of any size and non-finite floats shown as the literals they are.
  const literal = (_k: string, x: unknown) =>
    typeof x === 'bigint' || (typeof x === 'number' && !Number.isFinite(x)) ? `\u0000${String(x)}\u0000` : x;
  const s = (JSON.stringify(v, literal) ?? String(v)).replace(/"\\u0000([^"]*)\\u0000"/g, '$1');
  return s.length > 80 ? s.slice(0, 80) + '...' : s;
};
/** Inputs and outputs may come as a list of lines (some datasets store them so). */
const text = (v: unknown): string | null =>
  typeof v === 'string' ? v : Array.isArray(v) && v.every((x) => typeof x === 'string') ? v.join('\n') : null;

/** Arguments travel to the sandbox as JSON: integers read exactly become numbers again there. */
const withoutBigints = (v: unknown): unknown =>
  typeof v === 'bigint'
    ? Number(v)
    : Array.isArray(v)
      ? v.map(withoutBigints)
      : isObject(v)
        ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, withoutBigints(x)]))
        : v;

function oneTest(t: unknown, where: string): Test {
  if (!isObject(t)) throw new UserError(`${where}: a test is an object, got ${show(t)}`);
  if ('fn' in t || 'fn_name' in t) {
    const fn = t.fn ?? t.fn_name,
      args = t.args ?? t.input,
      expected = 'expected' in t ? t.expected : t.output;
    if (typeof fn !== 'string' || !/^[A-Za-z_$][\w$]*$/.test(fn)) throw new UserError(`${where}.fn: a function name, got ${show(fn)}`);
    if (!Array.isArray(args)) throw new UserError(`${where}.args: an array of arguments, got ${show(args)}`);
    return { fn, args: args.map(withoutBigints), expected };
  }
  const input = text(t.input ?? ''),
    output = text(t.output);
  if (input === null) throw new UserError(`${where}.input: a string, got ${show(t.input)}`);
  if (output === null) throw new UserError(`${where}.output: a string, got ${show(t.output)}`);
  if (t.type !== undefined && t.type !== 'stdin_stdout')
    throw new UserError(`${where}.type: only 'stdin_stdout' is supported, got ${show(t.type)}`);
  return { input, output };
}

/** The tests in any accepted layout, as a flat list: `[{input, output}]`, `[{fn, args, expected}]`,
 * open-r1's `verification_info` ({ test_cases }), APPS' `{ inputs, outputs, fn_name? }`, or a JSON
 * string of one of these. Throws a UserError naming the bad field. */
export function normalizeTests(tests: unknown, where = 'tests'): Test[] {
  if (typeof tests === 'string') {
    try {
      // Read exactly, so an expected integer past 2^53 keeps every digit (oneTest keeps bigints in
      // expected values only).
      tests = parseResult(tests);
    } catch (e) {
      throw new UserError(`${where}: a string must hold JSON tests (${(e as Error).message}), got ${show(tests)}`);
    }
  }
  if (Array.isArray(tests)) return tests.map((t, i) => oneTest(t, `${where}[${i}]`));
  if (isObject(tests)) {
    if ('test_cases' in tests) return normalizeTests(tests.test_cases, `${where}.test_cases`);
    if (Array.isArray(tests.inputs) && Array.isArray(tests.outputs)) {
      const { inputs, outputs, fn_name } = tests;
      if (inputs.length !== outputs.length) throw new UserError(`${where}: ${inputs.length} inputs but ${outputs.length} outputs`);
      return inputs.map((input, i) =>
        typeof fn_name === 'string'
          ? oneTest({ fn: fn_name, args: input, expected: outputs[i] }, `${where}.inputs[${i}]`)
          : oneTest({ input, output: outputs[i] }, `${where}.inputs[${i}]`),
      );
    }
  }
  throw new UserError(`${where}: expected a list of { input, output } or { fn, args, expected } tests, got ${show(tests)}`);
}

const lines = (s: string) =>
  s
    .replace(/\r\n?/g, '\n')
    .split('\n')
    .map((l) => l.trimEnd());

/** Output against the expected one, line by line, trailing white space and trailing blank lines
 * ignored; the first difference as detail. */
export function compareOutput(got: string, expected: string): TestResult {
  const a = lines(got),
    b = lines(expected);
  while (a.length && a[a.length - 1] === '') a.pop();
  while (b.length && b[b.length - 1] === '') b.pop();
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (a[i] !== b[i]) return { status: 'fail', detail: `line ${i + 1}: expected ${show(b[i] ?? '<end>')}, got ${show(a[i] ?? '<end>')}` };
  }
  return { status: 'pass' };
}

/** Two finite floats within 1e-9 relative; a non-finite one only equals itself (NaN equals NaN). */
function sameFloat(a: number, b: number): boolean {
  if (Number.isFinite(a) && Number.isFinite(b)) return Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b));
  return a === b || (Number.isNaN(a) && Number.isNaN(b));
}

/** An exact integer against an expected number: exactly when the number is a safe integer; when it is
 * an integer past 2^53 the test's own value was rounded to a double when it was read, so the integer
 * must round to that same double; against a fraction, the float tolerance. Never equal to a
 * non-finite number, and an integer too large for a double is never equal to a finite one. */
function intMatchesNumber(got: bigint, expected: number): boolean {
  if (!Number.isFinite(expected)) return false;
  if (Number.isSafeInteger(expected)) return got === BigInt(expected);
  const g = Number(got);
  if (!Number.isFinite(g)) return false;
  return Number.isInteger(expected) ? g === expected : sameFloat(g, expected);
}

/** Deep equality of a result against the expected value. Integers (bigint) compare exactly, floats
 * (number) within 1e-9 relative when both are finite and only exactly otherwise; strings never
 * equal numbers; null and undefined are one; objects compare by their own keys. */
export function deepEqual(got: unknown, expected: unknown): boolean {
  if (got == null || expected == null) return got == null && expected == null;
  if (typeof got === 'bigint')
    return typeof expected === 'bigint' ? got === expected : typeof expected === 'number' && intMatchesNumber(got, expected);
  if (typeof got === 'number') {
    if (typeof expected === 'number') return sameFloat(got, expected);
    return typeof expected === 'bigint' && (Number.isFinite(got) ? intMatchesNumber(expected, got) : false);
  }
  if (typeof got !== 'object' || typeof expected !== 'object') return got === expected;
  if (Array.isArray(got) || Array.isArray(expected))
    return (
      Array.isArray(got) && Array.isArray(expected) && got.length === expected.length && got.every((x, i) => deepEqual(x, expected[i]))
    );
  const a = got as Record<string, unknown>,
    b = expected as Record<string, unknown>;
  const ka = Object.keys(a),
    kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k) => Object.hasOwn(b, k) && deepEqual(a[k], b[k]));
}

export function compareValue(got: unknown, expected: unknown): TestResult {
  return deepEqual(got, expected) ? { status: 'pass' } : { status: 'fail', detail: `expected ${show(expected)}, got ${show(got)}` };
}

/** The first lines of an error message, short enough for a log line. */
export function errorDetail(message: string, maxLines = 3): string {
  const s = message
    .split('\n')
    .filter((l) => l.trim())
    .slice(0, maxLines)
    .join('\n');
  return s.length > 300 ? s.slice(0, 300) + '...' : s;
}

/** The verdict on one run, made on the pool's side from what the program printed or returned: the
 * sandbox process reports output, never a pass. A run that did not finish keeps its own status. */
export function judge(test: Test, run: Run, outputBytes: number): TestResult {
  if (!('fn' in test) && test.capture) return capturedRun(run, outputBytes);
  if (run.status === 'output') return { status: 'fail', detail: `output limit of ${outputBytes} bytes exceeded` };
  if (run.status !== 'ok') return run.detail ? { status: run.status, detail: run.detail } : { status: run.status };
  if (!('fn' in test)) return compareOutput(run.out, test.output);
  let value: ResultValue = null;
  try {
    value = run.result === null ? null : parseResult(run.result);
  } catch (e) {
    return { status: 'error', detail: `the sandbox reported a result that is not in the result notation (${(e as Error).message})` };
  }
  return compareValue(value, test.expected);
}

/** A captured run (a tool call): no expected output to judge against; its standard output travels
 * back with its status. */
function capturedRun(run: Run, outputBytes: number): TestResult {
  if (run.status === 'output') return { status: 'fail', detail: `output limit of ${outputBytes} bytes exceeded`, out: run.out };
  if (run.status !== 'ok') return { status: run.status, ...(run.detail ? { detail: run.detail } : {}), out: run.out };
  return { status: 'pass', out: run.out };
}
