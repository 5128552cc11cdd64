// Python limits that count everything, a `_ctypes` that does not exist, and function results written
// by code the program cannot reach. One sandbox process runs them all (its pid is read for its peak
// memory), so a limit that did not hold would also show as a process that grew.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { layersFor } from '../sandbox/launch.ts';
import { SandboxProcess } from '../sandbox/process.ts';
import type { Job } from '../sandbox/protocol.ts';
import { normalizeTests, type TestResult } from '../sandbox/tests.ts';

const limits = { timeMs: 10_000, memoryMb: 128, outputBytes: 1 << 16, wallMs: 25_000 };
let proc: SandboxProcess;
let nextId = 1;
const start = async () => {
  proc = new SandboxProcess('python', layersFor('process'), limits, () => {});
  await proc.ready;
};
beforeAll(start, 120_000);
afterAll(() => proc.kill('test over'));

/** Runs a program in the shared process (a new one if the last retired). */
async function py(code: string, tests: unknown): Promise<TestResult[]> {
  if (proc.retired) await start();
  const job: Job = { id: nextId++, code, tests: [], limits };
  return (await proc.run(job, normalizeTests(tests)))!;
}
const once = async (code: string, output: string) => (await py(code, [{ input: '', output }]))[0];
/** The process's resident and peak memory (MB), from the kernel. */
function memoryMb(): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${(proc as unknown as { child: { pid: number } }).child.pid}/status`, 'utf8');
  const kb = (key: string) => Number(status.match(new RegExp(`${key}:\\s+(\\d+) kB`))?.[1]) / 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}

describe('memory counts the heap and the in-memory files', () => {
  it('a file and a heap that each fit pass; together past the cap they end as memory', async () => {
    const file = "f = open('/tmp/big', 'wb')\nfor _ in range(70):\n    f.write(b'x' * 2**20)\nf.close()";
    const heap = 'held = bytearray(70 * 2**20)';
    expect(await once(`${file}\nprint('ok')`, 'ok')).toEqual({ status: 'pass' });
    expect(await once(`${heap}\nprint('ok')`, 'ok')).toEqual({ status: 'pass' });
    expect((await once(`${heap}\n${file}\nprint('ok')`, 'ok')).status).toBe('memory');
  });

  it('200 MB written to /tmp under a 128 MB cap ends as memory, even when the program catches the error', async () => {
    const r = await once(
      "try:\n    f = open('/tmp/big', 'wb')\n    for _ in range(200):\n        f.write(b'x' * 2**20)\nexcept OSError:\n    pass\nprint('escaped')",
      'escaped',
    );
    expect(r.status).toBe('memory');
  });

  it('files in /dev/shm do not pile up across programs, and a 900 MB allocation is refused without growing the process', async () => {
    const before = memoryMb();
    for (let i = 0; i < 4; i++) {
      expect(
        await once(`import os\nprint(len(os.listdir('/dev/shm')))\nopen('/dev/shm/pile${i}', 'wb').write(b'x' * (60 * 2**20))`, '1'),
      ).toEqual({ status: 'pass' });
    }
    expect((await once('x = bytearray(900 * 2**20)\nprint("escaped")', 'escaped')).status).toBe('memory');
    expect(await once('print(sum(range(10)))', '45')).toEqual({ status: 'pass' });
    const after = memoryMb();
    // The WebAssembly memory can grow to the start-up heap plus 1.25 x the cap, and file bytes are
    // JavaScript memory the collector frees later: far below 900 MB or four piled-up files.
    expect(after.peak - before.rss).toBeLessThan(600);
    expect(after.rss - before.rss).toBeLessThan(450);
    console.log(
      `python sandbox process: ${Math.round(before.rss)} MB before, peak ${Math.round(after.peak)} MB, ${Math.round(after.rss)} MB after`,
    );
  });
});

describe('_ctypes is gone from the interpreter', () => {
  it('by the import statement, importlib, the builtin importer, _imp.create_builtin and sys.modules', async () => {
    const routes = [
      'import sys, importlib, importlib.machinery as machinery, importlib._bootstrap as bootstrap',
      'found = []',
      'def attempt(name, f):',
      '    try:',
      '        m = f()',
      '        if m is not None:',
      '            found.append(name)',
      '    except BaseException:',
      '        pass',
      "attempt('import', lambda: __import__('_ctypes'))",
      'sys.meta_path[:] = [f for f in sys.meta_path if getattr(f, "__name__", "") != "Blocker"]',
      "attempt('importlib', lambda: importlib.import_module('_ctypes'))",
      "attempt('find_spec', lambda: machinery.BuiltinImporter.find_spec('_ctypes'))",
      "attempt('create_builtin', lambda: bootstrap._imp.create_builtin(machinery.ModuleSpec('_ctypes', machinery.BuiltinImporter)))",
      "attempt('is_builtin', lambda: bootstrap._imp.is_builtin('_ctypes') or None)",
      "sys.modules.pop('_ctypes', None)",
      "attempt('ctypes', lambda: importlib.import_module('ctypes'))",
      "attempt('names', lambda: ('_ctypes' in sys.builtin_module_names) or None)",
      "print(found or 'gone')",
    ].join('\n');
    expect(await once(routes, 'gone')).toEqual({ status: 'pass' });
  });
});

describe('results are written by code the program cannot reach', () => {
  const call = (code: string, expected: unknown) => py(code, [{ fn: 'f', args: [1], expected }]).then((r) => r[0]);

  it('an integer past the double range never passes a numeric test, alone or nested; exact integers pass', async () => {
    expect((await call('def f(x):\n    return 10**400', 5)).status).toBe('fail');
    expect((await call('def f(x):\n    return [-10**400, 1]', [-1e300, 1])).status).toBe('fail');
    expect((await call("def f(x):\n    return {'a': 10**5000}", { a: 1 })).status).toBe('fail');
    expect(await call('def f(x):\n    return 2**53 + x', 2n ** 53n + 1n)).toEqual({ status: 'pass' });
    expect(
      await call("def f(x):\n    return [x, 2.5, None, True, {'k': -0.0, 1: 'q'}, (x,), float('inf')]", [
        1,
        2.5,
        null,
        true,
        { k: 0, 1: 'q' },
        [1],
        Infinity,
      ]),
    ).toEqual({ status: 'pass' });
    expect((await call('def f(x):\n    return float("nan")', 5)).status).toBe('fail');
    expect((await call('def f(x):\n    return "5"', 5)).status).toBe('fail');
    expect((await call('def f(x):\n    return {1, 2}', [1, 2])).status).toBe('error');
  });

  it('replacing json, walking frames to the driver, or subclassing int, dict and list changes nothing', async () => {
    // Within the program the replaced json is live (the attack's channel works)...
    expect(await once("import json\njson.dumps = lambda *a, **k: '5'\nprint(json.dumps(123))", '5')).toEqual({ status: 'pass' });
    // ...but it does not write the result.
    expect(
      (
        await call(
          "import json\njson.dumps = lambda *a, **k: '5'\njson.encoder.JSONEncoder.encode = lambda *a: '5'\ndef f(x):\n    return 123",
          5,
        )
      ).status,
    ).toBe('fail');
    const frames = [
      'import sys, json',
      'def f(x):',
      '    g = sys._getframe()',
      '    while g is not None:',
      "        for name in ('_json', 'json', 'finish', 'encode'):",
      '            if name in g.f_globals:',
      "                g.f_globals[name] = type('Fake', (), {'dumps': staticmethod(lambda *a, **k: '5'), 'loads': staticmethod(json.loads)})",
      '        g = g.f_back',
      '    return 123',
    ].join('\n');
    expect((await call(frames, 5)).status).toBe('fail');
    const subclasses = [
      'class I(int):',
      "    def __repr__(self): return '5'",
      "    def __str__(self): return '5'",
      '    def __lt__(self, other): raise SystemExit(0)',
      'class D(dict):',
      "    def items(self): return [('a', 5)]",
      "    def __iter__(self): return iter(['a'])",
      'class L(list):',
      '    def __iter__(self): return iter([5])',
      '    def __len__(self): return 1',
      'def f(x):',
      '    return [I(123), D(a=123), L([123, 124]), I(-2**3000)]',
    ].join('\n');
    const r = await call(subclasses, [5, { a: 5 }, [5], 5]);
    expect(r.status).toBe('fail');
    expect(r.detail).toMatch(/got \[123,\{"a":123\},\[123,124\],-\d{20}/);
  });

  it('a result over the output cap ends as the output limit, and the process stays', async () => {
    const r = await call("def f(x):\n    return ['x' * 1000] * 1000", []);
    expect(r).toEqual({ status: 'fail', detail: `output limit of ${limits.outputBytes} bytes exceeded` });
    expect(proc.retired).toBeNull();
  });
});
