// The sandbox as a judge: test layouts, output and value comparison, and programs that read input
// the usual ways in both languages. Hostile programs are in sandbox-security.test.ts.
import { afterAll, describe, expect, it } from 'vitest';
import { SandboxPool, compareOutput, deepEqual, normalizeTests, type Program } from '../sandbox/index.ts';
import { UserError } from '../src/errors.ts';

describe('normalizeTests', () => {
  it('accepts stdio, call, open-r1 verification_info, APPS layouts and JSON strings', () => {
    expect(normalizeTests([{ input: '1', output: '2' }])).toEqual([{ input: '1', output: '2' }]);
    expect(normalizeTests([{ fn: 'f', args: [1], expected: 2 }])).toEqual([{ fn: 'f', args: [1], expected: 2 }]);
    const openR1 = { language: 'python', test_cases: [{ type: 'stdin_stdout', input: '3\n', output: '6\n' }] };
    expect(normalizeTests(openR1)).toEqual([{ input: '3\n', output: '6\n' }]);
    expect(normalizeTests({ inputs: ['a', 'b'], outputs: ['A', 'B'] })).toEqual([
      { input: 'a', output: 'A' },
      { input: 'b', output: 'B' },
    ]);
    expect(normalizeTests({ fn_name: 'g', inputs: [[1, 2]], outputs: [3] })).toEqual([{ fn: 'g', args: [1, 2], expected: 3 }]);
    expect(normalizeTests(JSON.stringify([{ input: ['x', 'y'], output: 'z' }]))).toEqual([{ input: 'x\ny', output: 'z' }]);
  });

  it('names the bad field', () => {
    expect(() => normalizeTests([{ input: 'a' }])).toThrow(/tests\[0\]\.output/);
    expect(() => normalizeTests([{ input: 1, output: 'a' }])).toThrow(/tests\[0\]\.input/);
    expect(() => normalizeTests([{ fn: 'no such', args: [], expected: 1 }])).toThrow(/tests\[0\]\.fn/);
    expect(() => normalizeTests([{ fn: 'f', args: 1, expected: 1 }])).toThrow(/tests\[0\]\.args/);
    expect(() => normalizeTests({ test_cases: [{ type: 'function_call', input: '', output: '' }] })).toThrow(/test_cases\[0\]\.type/);
    expect(() => normalizeTests({ inputs: ['a'], outputs: [] })).toThrow(/1 inputs but 0 outputs/);
    expect(() => normalizeTests(42)).toThrow(UserError);
    expect(() => normalizeTests('not json')).toThrow(/JSON/);
  });
});

describe('comparison', () => {
  it('compares line by line, ignoring trailing white space and trailing blank lines', () => {
    expect(compareOutput('1 2  \r\n3\n\n', '1 2\n3').status).toBe('pass');
    expect(compareOutput('1\n2', '1\n3')).toEqual({ status: 'fail', detail: 'line 2: expected "3", got "2"' });
    expect(compareOutput('1', '1\n2').detail).toBe('line 2: expected "2", got "<end>"');
    expect(compareOutput(' 1', '1').status).toBe('fail'); // leading space matters
  });

  it('deep equality of JSON values, floats within 1e-9', () => {
    expect(deepEqual({ a: [1, 2, { b: null }] }, { a: [1, 2, { b: undefined }] })).toBe(true);
    expect(deepEqual(0.1 + 0.2, 0.3)).toBe(true);
    expect(deepEqual([1, 2], [2, 1])).toBe(false);
    expect(deepEqual({ a: 1 }, { a: 1, b: 2 })).toBe(false);
    expect(deepEqual('1', 1)).toBe(false);
  });
});

// One pool for the file: Python workers take seconds to load.
const pool = new SandboxPool({ workers: 2, limits: { timeMs: 1000 } });
afterAll(() => pool.destroy());
const statuses = async (p: Program) => (await pool.run(p)).results.map((r) => r.status);

describe('JavaScript programs', () => {
  const sum = [
    { input: '1 2\n', output: '3\n' },
    { input: '40 2', output: '42' },
  ];
  it.each([
    ['readFileSync(0)', `const [a, b] = require('fs').readFileSync(0, 'utf8').trim().split(/\\s+/).map(Number); console.log(a + b);`],
    [
      'readFileSync(/dev/stdin)',
      `const s = require('node:fs').readFileSync('/dev/stdin').toString(); process.stdout.write(String(s.split(' ').reduce((x, y) => x + +y, 0)) + '\\n');`,
    ],
    [
      'readline',
      `const rl = require('readline').createInterface({ input: process.stdin }); rl.on('line', (l) => { const [a, b] = l.split(' ').map(Number); console.log(a + b); });`,
    ],
    [
      'process.stdin events',
      `let d = ''; process.stdin.setEncoding('utf8'); process.stdin.on('data', (c) => (d += c)); process.stdin.on('end', () => console.log(d.split(' ').map(Number).reduce((a, b) => a + b)));`,
    ],
    [
      'async iteration',
      `(async () => { const rl = require('readline').createInterface({ input: process.stdin }); for await (const l of rl) console.log(eval(l.replace(' ', '+'))); })();`,
    ],
    ['timers', `setTimeout(() => { const [a, b] = require('fs').readFileSync(0, 'utf8').split(' '); console.log(+a + +b); }, 1000);`],
  ])('reads input with %s', async (_, code) => {
    expect(await statuses({ language: 'javascript', code, tests: sum })).toEqual(['pass', 'pass']);
  });

  it('judges each test on its own, with a detail for failures and errors', async () => {
    const r = await pool.run({
      language: 'javascript',
      code: `const n = +require('fs').readFileSync(0, 'utf8'); if (n < 0) throw new RangeError('negative'); console.log(n * 2);`,
      tests: [
        { input: '2', output: '4' },
        { input: '3', output: '7' },
        { input: '-1', output: '0' },
      ],
    });
    expect(r.passed).toBe(1);
    expect(r.total).toBe(3);
    expect(r.results[1]).toEqual({ status: 'fail', detail: 'line 1: expected "7", got "6"' });
    expect(r.results[2].status).toBe('error');
    expect(r.results[2].detail).toMatch(/RangeError: negative/);
  });

  it('calls functions: globals, module.exports, class Solution, async', async () => {
    const tests = [{ fn: 'twoSum', args: [[2, 7, 11], 9], expected: [0, 1] }];
    const body = `(a, t) => { for (let i = 0; i < a.length; i++) for (let j = i + 1; j < a.length; j++) if (a[i] + a[j] === t) return [i, j]; }`;
    expect(await statuses({ language: 'javascript', code: `const twoSum = ${body};`, tests })).toEqual(['pass']);
    expect(await statuses({ language: 'javascript', code: `module.exports = { twoSum: ${body} };`, tests })).toEqual(['pass']);
    expect(await statuses({ language: 'javascript', code: `class Solution { twoSum(a, t) { return (${body})(a, t); } }`, tests })).toEqual([
      'pass',
    ]);
    expect(await statuses({ language: 'javascript', code: `async function twoSum(a, t) { return [1, 0]; }`, tests })).toEqual(['fail']);
    expect((await pool.run({ language: 'javascript', code: `function other() {}`, tests })).results[0]).toMatchObject({
      status: 'error',
      detail: expect.stringMatching(/no function named twoSum/),
    });
  });

  it('a syntax error fails every test with the message', async () => {
    const r = await pool.run({
      language: 'javascript',
      code: 'console.log(',
      tests: [
        { input: '', output: '' },
        { input: '', output: '' },
      ],
    });
    expect(r.results.map((x) => x.status)).toEqual(['error', 'error']);
    expect(r.results[0].detail).toMatch(/SyntaxError/);
  });

  it('the exit code of process.exit decides, output before it counts', async () => {
    expect(
      await statuses({
        language: 'javascript',
        code: `console.log(5); process.exit(0); console.log(6);`,
        tests: [{ input: '', output: '5' }],
      }),
    ).toEqual(['pass']);
    expect(
      await statuses({ language: 'javascript', code: `console.log(5); process.exit(1);`, tests: [{ input: '', output: '5' }] }),
    ).toEqual(['error']);
  });

  it('rejects bad programs as user errors, not as results', async () => {
    await expect(pool.run({ language: 'ruby' as 'python', code: '', tests: [] })).rejects.toThrow(UserError);
    await expect(pool.run({ language: 'python', code: '', tests: [{ input: 'x' }] })).rejects.toThrow(/tests\[0\]\.output/);
    expect(await pool.run({ language: 'python', code: '', tests: [] })).toEqual({ passed: 0, total: 0, results: [] });
  });
});

describe('Python programs', () => {
  const sum = [
    { input: '1 2\n', output: '3\n' },
    { input: '40 2', output: '42' },
  ];
  it.each([
    ['input()', 'a, b = map(int, input().split())\nprint(a + b)'],
    ['sys.stdin', 'import sys\nprint(sum(int(x) for line in sys.stdin for x in line.split()))'],
    ['sys.stdin.buffer', 'import sys\nprint(sum(map(int, sys.stdin.buffer.read().split())))'],
    ['open(0)', 'print(sum(map(int, open(0).read().split())))'],
    ['sys.stdout.write', 'import sys\nsys.stdout.write(str(sum(map(int, input().split()))) + "\\n")'],
  ])('reads input with %s', async (_, code) => {
    expect(await statuses({ language: 'python', code, tests: sum })).toEqual(['pass', 'pass']);
  });

  it('calls functions and Solution methods, exceptions as errors with the line', async () => {
    const tests = [
      { fn: 'add', args: [2, 3], expected: 5 },
      { fn: 'add', args: [[1], [2]], expected: [1, 2] },
      { fn: 'add', args: [1, 'x'], expected: 0 },
    ];
    const r = await pool.run({ language: 'python', code: 'def add(a, b):\n    return a + b', tests });
    expect(r.results.map((x) => x.status)).toEqual(['pass', 'pass', 'error']);
    expect(r.results[2].detail).toMatch(/TypeError.*\(line 2\)/);
    expect(
      await statuses({
        language: 'python',
        code: 'class Solution:\n    def add(self, a, b):\n        return (a + b,)',
        tests: tests.slice(0, 1),
      }),
    ).toEqual(['fail']);
    expect(
      await statuses({
        language: 'python',
        code: 'class Solution:\n    def add(self, a, b):\n        return a + b',
        tests: tests.slice(0, 1),
      }),
    ).toEqual(['pass']);
  });

  it('a syntax error and exit codes', async () => {
    const r = await pool.run({ language: 'python', code: 'def f(:\n  pass', tests: [{ input: '', output: '' }] });
    expect(r.results[0]).toMatchObject({ status: 'error', detail: expect.stringMatching(/SyntaxError/) });
    expect(await statuses({ language: 'python', code: 'print(1)\nexit(0)', tests: [{ input: '', output: '1' }] })).toEqual(['pass']);
    expect(await statuses({ language: 'python', code: 'import sys\nprint(1)\nsys.exit(2)', tests: [{ input: '', output: '1' }] })).toEqual([
      'error',
    ]);
  });

  it('keeps nothing of one test in the next: globals, stdin, modules', async () => {
    const code =
      'import math\ntry:\n    seen\nexcept NameError:\n    seen = 0\nseen += 1\nmath.tau = 1\nprint(seen, input(), round(math.tau, 2))';
    const r = await pool.run({
      language: 'python',
      code,
      tests: [
        { input: 'a\nleft over', output: '1 a 1' },
        { input: 'b', output: '1 b 1' },
      ],
    });
    expect(r.results.map((x) => x.status)).toEqual(['pass', 'pass']);
    expect(
      await statuses({ language: 'python', code: 'import math\nprint(round(math.tau, 2))', tests: [{ input: '', output: '6.28' }] }),
    ).toEqual(['pass']);
  });

  it('recurses 200,000 deep under a raised limit, which is clamped at 1,000,000', async () => {
    const deep =
      'import sys\nsys.setrecursionlimit(10**6)\ndef g(n):\n    return 0 if n == 0 else g(n - 1) + 1\nprint(g(200000), sys.getrecursionlimit())';
    expect(await statuses({ language: 'python', code: deep, tests: [{ input: '', output: '200000 1000000' }] })).toEqual(['pass']);
    const clamped = 'import sys\nsys.setrecursionlimit(10**9)\nprint(sys.getrecursionlimit())';
    expect(await statuses({ language: 'python', code: clamped, tests: [{ input: '', output: '1000000' }] })).toEqual(['pass']);
  });
});
