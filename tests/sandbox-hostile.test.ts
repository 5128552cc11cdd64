// Hostile programs against the sandbox. Each would print "escaped" (or finish normally) if its attack
// worked; each must end in a non-pass result with a status that fits the attack. A benign program must
// pass after them, state must not leak into the next run, and the host must be unchanged. One worker
// per language, so a program that poisons its worker poisons the very worker the next one runs in.
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SandboxPool, type ProgramResult } from '../sandbox/index.ts';

type Lang = 'javascript' | 'python';
type Status = 'pass' | 'fail' | 'error' | 'timeout' | 'memory';

const dir = mkdtempSync(join(tmpdir(), 'r1-sandbox-host-'));
const target = (name: string) => join(dir, name);
const ESCAPED = [{ input: '', output: 'escaped' }];

// [name, program, statuses it may end in]
const JS: [string, string, Status[]][] = [
  ['reads a host file', `console.log(require('fs').readFileSync('/etc/passwd', 'utf8') ? 'escaped' : '')`, ['error']],
  ['writes a host file', `require('fs').writeFileSync(${JSON.stringify(target('js-write'))}, 'x'); console.log('escaped')`, ['error']],
  ['spawns a process', `require('child_process').execSync('touch ${target('js-spawn')}'); console.log('escaped')`, ['error']],
  ['exits the process', `process.exit(0)`, ['fail']],
  ['exits with a failure code', `console.log('escaped'); process.exit(3)`, ['error']],
  [
    'reaches process through constructor.constructor',
    `const p = this.constructor.constructor('return process')(); p.mainModule.require('fs').writeFileSync(${JSON.stringify(target('js-ctor'))}, 'x'); console.log('escaped')`,
    ['error'],
  ],
  [
    'reaches the real global through Function',
    `const g = Function('return this')(); console.log(typeof g.process.binding === 'function' ? 'escaped' : 'no')`,
    ['error', 'fail'],
  ],
  [
    'imports a module dynamically',
    `import('node:fs').then((fs) => { fs.writeFileSync(${JSON.stringify(target('js-import'))}, 'x'); console.log('escaped'); }, () => console.log('no'))`,
    ['fail', 'error'],
  ],
  ['asks process.binding for fs', `process.binding('fs'); console.log('escaped')`, ['error']],
  ['fetches from the network', `fetch('http://127.0.0.1:1/').then(() => console.log('escaped'))`, ['error']],
  ['loops forever', `while (true) {}`, ['timeout']],
  ['loops forever inside try/catch', `for (;;) { try { while (true) {} } catch (e) {} }`, ['timeout']],
  ['floods the microtask queue', `function f() { Promise.resolve().then(f); } f();`, ['timeout']],
  ['awaits forever in a loop', `(async () => { while (true) await null; })();`, ['timeout']],
  ['keeps an interval alive', `setInterval(() => {}, 0);`, ['timeout']],
  ['allocates without bound', `const a = []; while (true) a.push(new Array(1e5).fill(a.length));`, ['memory', 'timeout']],
  ['doubles a string without bound', `let s = 'x'; while (true) s += s;`, ['memory', 'error']],
  ['allocates a huge typed array', `const a = new Float64Array(2 ** 29); a[1] = 1; console.log('escaped')`, ['memory', 'error']],
  ['overflows the stack', `function f(n) { return f(n + 1) + 1; } f(0);`, ['error']],
  ['prints without end', `while (true) console.log('spam spam spam spam');`, ['fail']],
  ['prints one huge string', `process.stdout.write('x'.repeat(50_000_000)); console.log('escaped')`, ['fail', 'memory']],
  ['backtracks catastrophically', `console.log(/^(a+)+$/.test('a'.repeat(40) + 'b') ? 'escaped' : 'no')`, ['timeout']],
  ['allocates a giant SharedArrayBuffer', `const b = new SharedArrayBuffer(2 ** 31); console.log('escaped')`, ['error']],
  [
    'grows WebAssembly memory',
    `const m = new WebAssembly.Memory({ initial: 1, maximum: 65536 }); m.grow(65535); console.log('escaped')`,
    ['error'],
  ],
  ['blocks in Atomics.wait', `Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0); console.log('escaped')`, ['error', 'timeout']],
  [
    'replaces the sandbox hooks',
    `globalThis.__r1 = null; Object.defineProperty(globalThis, '__r1', { value: {} }); console.log('escaped')`,
    ['error'],
  ],
  [
    'pollutes prototypes for the next run',
    `Object.prototype.polluted = 'yes'; Array.prototype.join = () => 'escaped'; globalThis.leaked = 1; String.prototype.trim = function () { return 'escaped'; };`,
    ['fail'],
  ],
];

const PY: [string, string, Status[]][] = [
  ['reads a host file', `print('escaped' if open('/etc/passwd').read() else '')`, ['error']],
  ['writes a file', `open(${JSON.stringify(target('py-write'))}, 'w').write('x')\nprint('escaped')`, ['error']],
  ['leaves a file for the next run', `open('/home/pyodide/left-behind.txt', 'w').write('x')`, ['error', 'fail']],
  ['imports js', `import js\nprint('escaped', js.process)`, ['error']],
  ['imports pyodide_js', `import pyodide_js\npyodide_js.mountNodeFS('/host', '/')\nprint('escaped')`, ['error']],
  [
    'runs JavaScript through pyodide.code.run_js',
    `from pyodide.code import run_js\nrun_js("require('fs').writeFileSync(${JSON.stringify(target('py-runjs'))}, 'x')")\nprint('escaped')`,
    ['error'],
  ],
  ['imports the pyodide core module', `import _pyodide_core\nprint('escaped')`, ['error']],
  ['calls os.system', `import os\nos.system('touch ${target('py-system')}')\nprint('escaped')`, ['error']],
  [
    'spawns a subprocess',
    `import subprocess\nsubprocess.run(['touch', ${JSON.stringify(target('py-subprocess'))}])\nprint('escaped')`,
    ['error'],
  ],
  ['opens a socket', `import socket\ns = socket.socket()\ns.connect(('127.0.0.1', 1))\nprint('escaped')`, ['error']],
  ['loads ctypes', `import ctypes\nprint('escaped')`, ['error']],
  ['exits hard with os._exit', `import os\nos._exit(0)`, ['error', 'fail']],
  [
    'walks object.__subclasses__ and __globals__ to a JavaScript object',
    `
found = []
def look(v):
    if type(v).__name__.startswith('Js') and not isinstance(v, type):
        found.append(v)
import asyncio
for v in list(asyncio.run.__globals__.values()):
    look(v)
for cls in object.__subclasses__():
    for f in list(getattr(cls, '__dict__', {}).values()):
        for v in list(getattr(f, '__globals__', {}).values()) + [c.cell_contents for c in (getattr(f, '__closure__', None) or ())]:
            look(v)
for v in found:
    try:
        v.constructor.constructor("require('fs').writeFileSync(${JSON.stringify(target('py-jsproxy')).replace(/"/g, "'")}, 'x')")()
        print('escaped')
        break
    except Exception:
        pass
`,
    ['fail', 'error'],
  ],
  // CPython refills a builtin module made again from a copy of its first dict: that copy loses the
  // core module's functions too, so a fresh core module has nothing that makes a JavaScript object.
  [
    "makes pyodide's core module again with BuiltinImporter and looks for to_js",
    `
import sys, importlib.machinery as mach, importlib._bootstrap as boot
found = [n for n in sys.modules if 'pyodide' in n]
for make in (lambda s: mach.BuiltinImporter.create_module(s), lambda s: boot._imp.create_builtin(s)):
    try:
        m = make(mach.BuiltinImporter.find_spec('_pyodide_core'))
        found += [k for k, v in vars(m).items() if callable(v) and not isinstance(v, type)]
    except Exception as e:
        print(type(e).__name__)
print('escaped' if found else 'clean')`,
    ['fail', 'error'],
  ],
  ['lists every object with gc', `import gc\nprint('escaped' if gc.get_objects() else '')`, ['error']],
  // Frames are the program's to walk (tracebacks, namedtuple and typing use them): the bottom one is
  // the driver's, and no frame leads to the runner's globals and its snapshot.
  [
    'climbs frames from a traceback to the runner',
    `try:\n    1 / 0\nexcept Exception as e:\n    f, names = e.__traceback__.tb_frame, set()\n    while f is not None:\n        names |= set(f.f_globals)\n        f = f.f_back\n    print('escaped' if names & {'_dicts', '_user_time', 'setup', 'end'} else sorted(names))`,
    ['fail'],
  ],
  ['loops forever', `while True:\n    pass`, ['timeout']],
  [
    'swallows every interrupt',
    `while True:\n    try:\n        while True:\n            pass\n    except BaseException:\n        pass`,
    ['timeout'],
  ],
  ['allocates without bound', `a = []\nwhile True:\n    a.append('x' * 10**6)`, ['memory']],
  [
    'recurses without bound',
    `import sys\nsys.setrecursionlimit(10**9)\ndef f(n):\n    return f(n + 1) + 1\nf(0)`,
    ['error', 'memory', 'timeout'],
  ],
  ['prints without end', `while True:\n    print('spam spam spam spam')`, ['fail', 'timeout']],
  ['backtracks catastrophically', `import re\nprint('escaped' if re.match(r'^(a+)+$', 'a' * 40 + 'b') else 'no')`, ['timeout']],
  [
    'replaces builtins for the next run',
    `import builtins\nbuiltins.print = lambda *a, **k: None\nbuiltins.len = lambda x: 0\nbuiltins.input = lambda *a: 'escaped'`,
    ['fail'],
  ],
  [
    'changes a module for the next run',
    `import math, json\nmath.sqrt = lambda x: -1\njson.dumps = lambda *a, **k: 'escaped'\nimport collections\ncollections.Counter.most_common = lambda self, n=None: 'escaped'`,
    ['fail', 'error'],
  ],
  ['redirects sys streams for the next run', `import sys\nsys.stdout = None\nsys.stdin = None\nsys.meta_path.clear()`, ['fail', 'error']],
  [
    'installs trace and profile hooks for the next run',
    `import sys\nsys.settrace(lambda *a: None)\nsys.setprofile(lambda *a: None)`,
    ['fail', 'error'],
  ],
];

const has = (r: ProgramResult, allowed: Status[]) => r.total === 1 && r.passed === 0 && allowed.includes(r.results[0].status as Status);
const envBefore = JSON.stringify(process.env),
  cwdBefore = process.cwd(),
  globalsBefore = Object.getOwnPropertyNames(globalThis).sort().join();
let pool: SandboxPool;

beforeAll(() => {
  // reuse: any: every program in the one process, so a program that poisons its process is followed
  // there by the next (the replay wall, tests/sandbox-replay.test.ts, would run them apart).
  pool = new SandboxPool({ workers: 1, limits: { timeMs: 300, memoryMb: 48, outputBytes: 1 << 16 }, reuse: 'any' });
});
afterAll(async () => {
  await pool?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

const run = (language: Lang, code: string) => pool.run({ language, code, tests: ESCAPED });

describe.each([
  ['javascript', JS],
  ['python', PY],
] as const)('hostile %s', (language, cases) => {
  it.each(cases)('%s: not a pass', async (_name, code, allowed) => {
    const r = await run(language, code);
    expect(has(r, allowed), JSON.stringify(r.results)).toBe(true);
  });

  it('a benign program still passes after them, in a clean interpreter', async () => {
    const clean =
      language === 'javascript'
        ? `const s = require('fs').readFileSync(0, 'utf8').trim();
         const ok = ({}).polluted === undefined && typeof leaked === 'undefined' && [1, 2].join() === '1,2' && ' a '.trim() === 'a';
         console.log(ok ? s.split(' ').map(Number).reduce((a, b) => a + b, 0) : 'polluted');`
        : `import sys, math, json, os, collections
checks = {'len': lambda: len('ab') == 2, 'math': lambda: math.sqrt(4) == 2, 'json': lambda: json.dumps(1) == '1',
          'Counter': lambda: collections.Counter('aab').most_common(1) == [('a', 2)],
          'file': lambda: not os.path.exists('/home/pyodide/left-behind.txt'), 'trace': lambda: sys.gettrace() is None and sys.getprofile() is None}
bad = [k for k, ok in checks.items() if not ok()]
print(sum(map(int, input().split())) if not bad else 'polluted: ' + ' '.join(bad))`;
    const r = await pool.run({
      language,
      code: clean,
      tests: [
        { input: '1 2 3\n', output: '6' },
        { input: '10 -4\n', output: '6' },
      ],
    });
    expect(r.results).toEqual([{ status: 'pass' }, { status: 'pass' }]);
  });
});

describe('the host after the attacks', () => {
  it('has no files the programs tried to write, and the same environment, directory and globals', () => {
    expect(readdirSync(dir)).toEqual([]);
    expect(existsSync('/home/pyodide/left-behind.txt')).toBe(false);
    expect(JSON.stringify(process.env)).toBe(envBefore);
    expect(process.cwd()).toBe(cwdBefore);
    expect(Object.getOwnPropertyNames(globalThis).sort().join()).toBe(globalsBefore);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
