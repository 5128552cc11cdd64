// Hostile programs: each prints "escaped" only if its attack worked, and is judged against the
// expected output "escaped", so a pass would be a breach. Every one must end in a non-pass result
// (of the expected kind where one is expected), a benign program after them must still pass, and
// the host must be unchanged: its files, its globals, its prototypes.
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SandboxPool, type Language, type TestResult } from '../sandbox/index.ts';

const SECRET = join(tmpdir(), `r1-sandbox-secret-${process.pid}`);
const PWNED = join(tmpdir(), `r1-sandbox-pwned-${process.pid}`);
const S = JSON.stringify(SECRET),
  P = JSON.stringify(PWNED);
const NON_PASS = ['fail', 'error', 'timeout', 'memory'];

type Hostile = [name: string, language: Language, code: string, expected?: string[]];
const js = (name: string, code: string, expected?: string[]): Hostile => [name, 'javascript', code, expected];
const py = (name: string, code: string, expected?: string[]): Hostile => [name, 'python', code, expected];

const HOSTILE: Hostile[] = [
  js('read a host file', `console.log(require('fs').readFileSync(${S}, 'utf8') === 'secret' ? 'escaped' : 'no');`, ['error']),
  js('write a host file', `require('fs').writeFileSync(${P}, 'x'); console.log('escaped');`, ['error']),
  js('process.exit before the answer', `process.exit(0); console.log('escaped');`, ['fail']),
  js('dynamic import', `import('fs').then((fs) => { fs.writeFileSync(${P}, 'x'); console.log('escaped'); });`, ['error']),
  js(
    'constructor.constructor("return process")',
    `const p = this.constructor.constructor('return process')(); p.mainModule.require('fs').writeFileSync(${P}, 'x'); console.log('escaped');`,
    ['error'],
  ),
  js(
    'Function("return this") for the real global',
    `const g = Function('return this')(); g.process.binding('fs'); console.log('escaped');`,
    ['error'],
  ),
  js('child_process', `require('child_process').execSync('touch ' + ${P}); console.log('escaped');`, ['error']),
  js('fetch and sockets', `fetch('http://127.0.0.1:1/'); require('net').connect(1); console.log('escaped');`, ['error']),
  js('infinite loop', `while (true) {}`, ['timeout']),
  js('busy microtask loop', `(function f() { Promise.resolve().then(f); })();`, ['timeout']),
  js('await loop', `(async () => { for (;;) await null; })();`, ['timeout']),
  js('interval forever', `setInterval(() => {}, 0);`, ['timeout']),
  js('memory bomb', `const a = []; for (;;) a.push(new Array(1e6).fill(1));`, ['memory', 'timeout']),
  js('giant ArrayBuffer', `const b = new ArrayBuffer(2 ** 31); console.log(b.byteLength ? 'escaped' : 'no');`, ['memory', 'error']),
  js('stack overflow', `(function f() { f(); })();`, ['error']),
  js('huge output', `for (;;) console.log('x'.repeat(1000));`, ['fail']),
  js('catastrophic regular expression', `console.log(/^(a+)+$/.test('a'.repeat(40) + 'b') ? 'escaped' : 'no');`, ['timeout']),
  js('giant SharedArrayBuffer', `new SharedArrayBuffer(2 ** 31); console.log('escaped');`, ['error']),
  js('WebAssembly memory', `new WebAssembly.Memory({ initial: 65536 }); console.log('escaped');`, ['error']),
  js('Atomics.wait', `Atomics.wait(new Int32Array(4), 0, 0); console.log('escaped');`, ['error']),
  js(
    'prototype pollution for the next run',
    `Object.prototype.polluted = 'escaped'; Array.prototype.join = () => 'escaped'; String.prototype.split = () => ['escaped']; globalThis.leak = 'escaped';`,
    ['fail'],
  ),
  js(
    'tampering with the host bridge',
    `JSON.stringify = () => '{"out":"escaped\\\\n"}'; try { __r1.state = () => 'escaped'; } catch {} Object.defineProperty(Object.prototype, 'out', { get: () => 'escaped\\n' });`,
    ['fail'],
  ),
  js(
    'stack frames of the host',
    `Error.prepareStackTrace = (e, frames) => frames.map((f) => f.getThis && f.getThis()); const s = new Error().stack; console.log(s.some((t) => t && t.process && t.process.pid > 1) ? 'escaped' : 'no');`,
    ['fail', 'error'],
  ),
  py('read a host file', `print('escaped' if open(${S}).read() == 'secret' else 'no')`, ['error']),
  py('write a host file', `open(${P}, 'w').write('x')`, ['fail']),
  py('files written before are gone', `import os\nprint('escaped' if os.path.exists(${P}) else 'no')`, ['fail']),
  py('import js', `import js\njs.process.exit(1)\nprint('escaped')`, ['error']),
  py(
    'import pyodide_js',
    `import pyodide_js\npyodide_js.FS.mount(pyodide_js.FS.filesystems.NODEFS, {'root': '/'}, '/host')\nprint('escaped')`,
    ['error'],
  ),
  py('pyodide.code.run_js', `from pyodide.code import run_js\nrun_js('process.exit(1)')\nprint('escaped')`, ['error']),
  py(
    'the real __import__ past the guard',
    `import builtins, sys\nsys.meta_path.pop(0)\nm = builtins.__import__('pyodide_js')\nprint('escaped')`,
    ['error'],
  ),
  py(
    'JS proxies through gc',
    `import builtins, sys\nsys.meta_path.pop(0)\ngc = builtins.__import__('gc')\nprint('escaped' if [o for o in gc.get_objects() if type(o).__name__ == 'JsProxy'] else 'no')`,
    ['fail', 'error'],
  ),
  py(
    'pyodide through importlib, past the import statement',
    `import importlib, sys\nsys.meta_path.pop(0)\ncode = importlib.import_module('pyodide.code')\ncode.run_js("require('fs').writeFileSync(" + repr(${P}) + ", 'x')")\nprint('escaped')`,
    ['error'],
  ),
  py(
    'a finaliser that runs during the clean-up',
    [
      'import sys',
      'class Spy:',
      '    def __del__(self):',
      '        f = sys._getframe()',
      '        while f is not None:',
      "            if '_user_time' in f.f_globals:",
      "                f.f_globals['_dicts'].clear()",
      '            f = f.f_back',
      'import math',
      'math.spy = Spy()',
    ].join('\n'),
    ['fail'],
  ),
  py(
    'JS proxies through __subclasses__ and __globals__',
    [
      'found = []',
      'for c in object.__subclasses__():',
      '    for v in list(vars(c).values()):',
      "        for x in list((getattr(v, '__globals__', None) or {}).values()):",
      "            if type(x).__name__ == 'JsProxy':",
      '                found.append(x)',
      "print('escaped' if found else 'no')",
    ].join('\n'),
    ['fail'],
  ),
  py('os.system', `import os\nos.system('touch ' + ${P})\nprint('escaped' if os.path.exists(${P}) else 'no')`, ['fail', 'error']),
  py('subprocess', `import subprocess\nsubprocess.run(['touch', ${P}])\nprint('escaped')`, ['error']),
  py('sockets', `import socket\nsocket.create_connection(('127.0.0.1', 1))\nprint('escaped')`, ['error']),
  py('infinite loop', `while True:\n    pass`, ['timeout']),
  py('swallowing the interrupt', `while True:\n    try:\n        while True:\n            pass\n    except BaseException:\n        pass`, [
    'timeout',
  ]),
  py('memory bomb', `a = []\nwhile True:\n    a.append(' ' * 10**6)`, ['memory', 'timeout']),
  // Growing the heap by 512 MB can outlast the wall clock on a loaded machine: then the worker is killed.
  py('one big allocation', `b = bytearray(512 * 2**20)\nprint('escaped')`, ['memory', 'timeout']),
  py('stack overflow', `import sys\nsys.setrecursionlimit(10**6)\ndef f(n):\n    return f(n + 1)\nf(0)`, ['error', 'memory']),
  py('huge output', `while True:\n    print('x' * 1000)`, ['fail']),
  py('catastrophic regular expression', `import re\nprint('escaped' if re.match(r'^(a+)+$', 'a' * 40 + 'b') else 'no')`, ['timeout']),
  py('os._exit', `import os\nos._exit(0)`, ['fail', 'error']),
  py(
    'state for the next run',
    `import builtins, sys, math\nbuiltins.print = lambda *a, **k: None\nbuiltins.int = str\nmath.pi = 3\nsys.stdout = None\nsys.path.insert(0, '/tmp')\nopen('/tmp/math.py', 'w').write('pi = 3')`,
    ['fail', 'error'],
  ),
];

// Timeouts short to keep the suite fast; one worker per language so hostile programs share it.
// reuse: any: every program in the one process, so a program that poisons its process is followed
// there by the next (the replay wall, tests/sandbox-replay.test.ts, would run them apart).
const pool = new SandboxPool({ workers: 1, limits: { timeMs: 500, memoryMb: 64, outputBytes: 1 << 16 }, reuse: 'any' });
const hostBefore = {
  globals: Object.keys(globalThis).sort(),
  object: Object.getOwnPropertyNames(Object.prototype).sort(),
  array: Object.getOwnPropertyNames(Array.prototype).sort(),
  cwd: process.cwd(),
};
const results = new Map<string, TestResult>();

beforeAll(() => writeFileSync(SECRET, 'secret'));
afterAll(async () => {
  await pool.destroy();
  rmSync(SECRET, { force: true });
  rmSync(PWNED, { force: true });
});

describe('hostile programs', () => {
  it('number at least 30, across both languages', () => {
    expect(HOSTILE.length).toBeGreaterThanOrEqual(30);
    expect(new Set(HOSTILE.map((h) => h[1]))).toEqual(new Set(['javascript', 'python']));
  });

  it.each(HOSTILE)('%s (%s) ends in a non-pass result', async (name, language, code, expected) => {
    const r = await pool.run({ language, code, tests: [{ input: 'escaped\n', output: 'escaped' }] });
    results.set(`${language}: ${name}`, r.results[0]);
    expect(r.total).toBe(1);
    expect(NON_PASS).toContain(r.results[0].status);
    if (expected) expect(expected, `${name}: ${JSON.stringify(r.results[0])}`).toContain(r.results[0].status);
  });

  it('a benign program still passes afterwards, in both languages, with clean state', async () => {
    const tests = [{ input: '2 3', output: '5\nok' }];
    const jsOk = await pool.run({
      language: 'javascript',
      code: `const [a, b] = require('fs').readFileSync(0, 'utf8').split(' ').map(Number); console.log(a + b); console.log(({}).polluted === undefined && typeof leak === 'undefined' && [1, 2].join() === '1,2' ? 'ok' : 'dirty');`,
      tests,
    });
    expect(jsOk.results).toEqual([{ status: 'pass' }]);
    const pyOk = await pool.run({
      language: 'python',
      code: `import math, os, sys\na, b = map(int, input().split())\nprint(a + b)\nprint('ok' if math.pi > 3.14 and sys.stdout is not None and not os.path.exists('/tmp/math.py') else 'dirty')`,
      tests,
    });
    expect(pyOk.results).toEqual([{ status: 'pass' }]);
  });

  it('leaves the host unchanged', () => {
    expect(existsSync(PWNED)).toBe(false);
    expect(Object.keys(globalThis).sort()).toEqual(hostBefore.globals);
    expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(hostBefore.object);
    expect(Object.getOwnPropertyNames(Array.prototype).sort()).toEqual(hostBefore.array);
    expect(process.cwd()).toBe(hostBefore.cwd);
    expect(results.size).toBe(HOSTILE.length);
  });
});
