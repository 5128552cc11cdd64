// Attacks on the sandbox from a security review, each as a real program. Four classes:
//   1. Python that reaches pyodide's JavaScript side (by every route found) and from there the host:
//      the canary file, a new file next to it, `id`, a worker thread with eval:true, TCP and UDP
//      sockets to listeners of this test, a fake result line on the real standard output.
//   2. Programs that try to pass without solving: the expected output is a random number drawn per
//      run, so only faking the verdict (control block, the worker's comparison, a recorded answer of
//      another program) can pass.
//   3. Programs that leave state for the next program in the same worker; a checker program after
//      each (tests/fixtures/attacks/py-checker.py) must pass, which it does only in a clean interpreter.
//   4. JavaScript that hangs its worker after the test ends; each runs in a process of its own
//      (tests/fixtures/attacks/js-hang-driver.ts), which must report a non-pass, a benign program
//      passing after it, a pool.destroy() that completes, no CPU burnt after that, and then exit.
// For every attack: no pass, the canary unchanged and nothing new next to it, no connection or
// datagram to the listeners, the attack's marker nowhere in this process's output, a benign program
// passing right after, and the attack's run within its wall-clock limit.
//
// Outcome against the sandbox of commit bb08710 (worker threads, pyodide 314.0.7, isolated-vm, Node
// 20), run when this file was written: 27 of the 38 tests fail, that is, the attack worked. Marked
// FAILS where the attack worked, holds where the sandbox stopped it:
//   1. FAILS for the 7 routes that yield _pyodide_core: `sys.modules['__main__']._pyodide_core`,
//      module globals (`time.sleep.__globals__['run_sync'].__self__`,
//      `shutil._ARCHIVE_FORMATS['whl'][0].__globals__['to_js'].__self__`), an object.__subclasses__()
//      walk, `BuiltinImporter.find_spec('_pyodide_core')` + `create_module`, and
//      importlib.import_module / importlib.util.find_spec once the sandbox's Blocker is taken off
//      sys.meta_path (importlib raises no `import` audit event). From there (py-reach.py) the program
//      gets globalThis and process, appends to the canary and writes new files (from a worker thread
//      started with eval:true, and process.report.writeReport), runs `id` (uid=0), connects to the TCP
//      and UDP listeners, and prints a fake result line on this process's standard output. fs,
//      child_process, net and dgram of the worker's own thread are hardened; worker_threads,
//      process.report and process.stdout are not. Holds: zipimport (pyodide's packages import
//      blocked modules), js / pyodide_js under other names (no finder serves them any more), and
//      Error.prepareStackTrace alone (every host frame is strict: getThis() is undefined, except on
//      wasm frames, where it is the WebAssembly.Instance).
//   2. FAILS, all four: the control block (statuses set to pass, then process.exit: the pool reads
//      them back), Object.prototype.fn with the driver's locals set through sys._getframe(1) (a pass;
//      after it every program in that worker is an error, "undefined" is not valid JSON, and the
//      worker is never replaced), String.prototype.trimEnd (every output equal: a wrong program
//      passes after it), and recorder / replay (sys.stdout keeps an instance attribute `write`).
//   3. FAILS: the re-arming finaliser (output of later programs lost), the weakref callback run by
//      the clean-up (profile, trace and audit hooks and new builtins installed from there), warnings
//      filters, re caches, random state, os.environ._data (putenv itself is refused), __defaults__ /
//      __kwdefaults__, sys.stdout.reconfigure, sys.stdout.write, set_int_max_str_digits, os.dup2 onto
//      1 and 2, fractions.py rewritten inside /lib/python314.zip (the worker's file check compares
//      only modification times), 56 MB held on copyreg.dispatch_table (the checker gets `memory`).
//      Holds: settrace / setprofile / addaudithook / sys.monitoring called directly (PermissionError),
//      os.close(1) and os.close(0) (reopened by the clean-up).
//   4. FAILS: a FinalizationRegistry callback that loops, and a thrown error whose message getter
//      loops (own or inherited): the worker is replaced and later programs pass, but an isolated-vm
//      thread keeps spinning after pool.destroy() (250-330 ms of CPU per 500 ms) and the process
//      never exits. Holds: stack, name and toString getters, a non-error thrown, a looping stack
//      getter thrown from a timer or as the reason of a rejected call.
// Against the rewritten sandbox in the working tree at f190238 (processes, sealed realm, memory
// snapshot), all 38 hold (about 33 s).
import { spawn } from 'node:child_process';
import { randomInt, randomUUID } from 'node:crypto';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SandboxPool, type ProgramResult } from '../sandbox/index.ts';

type Language = 'python' | 'javascript';
type Test = { input: string; output: string } | { fn: string; args: unknown[]; expected: unknown };
type Limits = { timeMs: number; memoryMb: number; outputBytes: number };
/** A program run after an attack, and whether it must pass (a correct one) or must not (a wrong one). */
type FollowUp = { what: string; code: string; tests: Test[]; pass: boolean };

const FIXTURES = fileURLToPath(new URL('./fixtures/attacks/', import.meta.url));
const fixture = (name: string) => readFileSync(join(FIXTURES, name), 'utf8');
const PY_LIMITS: Limits = { timeMs: 500, memoryMb: 64, outputBytes: 1 << 16 };
const JS_LIMITS: Limits = { timeMs: 300, memoryMb: 64, outputBytes: 1 << 16 };
/** The pool's default wall-clock limit per test, and what the pool and its workers may add to it. */
const wallMs = (l: Limits) => 2 * l.timeMs + 250;
const GRACE_MS = 1500;
/** A follow-up program may have to wait for a fresh worker (pyodide loads in seconds). */
const FOLLOW_UP_MS = 20_000;

// ---- the host: a canary file, listeners, this process's output -------------------------------------

const CANARY_TEXT = 'canary: no program run by the sandbox may change this file or add one next to it\n';
let dir = '';
let canary = '';
const tcpHits: string[] = [];
const udpHits: string[] = [];
let tcp: Server | null = null;
let udp: UdpSocket | null = null;
let tcpPort = 0;
let udpPort = 0;
let hostOutput = '';
const realWrite = { out: process.stdout.write, err: process.stderr.write };

function capture(stream: NodeJS.WriteStream, real: typeof process.stdout.write): void {
  stream.write = function (this: NodeJS.WriteStream, chunk: unknown, ...rest: unknown[]) {
    hostOutput = (hostOutput + String(chunk instanceof Uint8Array ? Buffer.from(chunk).toString() : chunk)).slice(-(1 << 20));
    return (real as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
  } as typeof stream.write;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'r1-sandbox-attacks-'));
  canary = join(dir, 'canary.txt');
  writeFileSync(canary, CANARY_TEXT);
  tcp = createServer((s) => {
    tcpHits.push('connection');
    s.on('data', (d) => tcpHits.push(String(d)));
    s.on('error', () => {});
  });
  await new Promise<void>((ok) => tcp!.listen(0, '127.0.0.1', ok));
  tcpPort = (tcp.address() as AddressInfo).port;
  udp = createSocket('udp4');
  udp.on('message', (m) => udpHits.push(String(m)));
  await new Promise<void>((ok) => udp!.bind(0, '127.0.0.1', ok));
  udpPort = udp.address().port;
  capture(process.stdout, realWrite.out);
  capture(process.stderr, realWrite.err);
});

afterAll(async () => {
  process.stdout.write = realWrite.out;
  process.stderr.write = realWrite.err;
  await Promise.all(LANES.map((l) => l.close()));
  await new Promise<void>((ok) => (tcp ? tcp.close(() => ok()) : ok()));
  udp?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((ok) => setTimeout(ok, ms));

/** What an attack did to the host (empty: nothing), after a moment for asynchronous effects; then
 * puts the host back, so that the next attack is judged on its own. (In the sections whose tests run
 * concurrently, damage is still found, though maybe by the test of a neighbouring attack.) */
async function hostDamage(mark: string): Promise<string[]> {
  await sleep(150);
  const found: string[] = [];
  const text = readFileSync(canary, 'utf8');
  if (text !== CANARY_TEXT)
    found.push(
      `canary changed: ${text.startsWith(CANARY_TEXT) ? 'appended ' + JSON.stringify(text.slice(CANARY_TEXT.length, CANARY_TEXT.length + 120)) : 'now ' + JSON.stringify(text.slice(0, 120))}`,
    );
  const extra = readdirSync(dir).filter((f) => f !== 'canary.txt');
  if (extra.length)
    found.push(
      `new files next to the canary: ${extra.join(', ')}${
        extra.some((f) => f.startsWith('id'))
          ? ` (${readFileSync(join(dir, extra.find((f) => f.startsWith('id'))!), 'utf8')
              .trim()
              .slice(0, 60)})`
          : ''
      }`,
    );
  if (tcpHits.length) found.push(`TCP listener got: ${JSON.stringify(tcpHits.slice(0, 3))}`);
  if (udpHits.length) found.push(`UDP listener got: ${JSON.stringify(udpHits.slice(0, 3))}`);
  if (hostOutput.includes(mark))
    found.push(
      `the marker reached this process's output: ${JSON.stringify(hostOutput.slice(Math.max(0, hostOutput.indexOf(mark) - 60), hostOutput.indexOf(mark) + mark.length))}`,
    );
  writeFileSync(canary, CANARY_TEXT);
  for (const f of extra) rmSync(join(dir, f), { recursive: true, force: true });
  tcpHits.length = 0;
  udpHits.length = 0;
  hostOutput = '';
  return found;
}

const fill = (code: string, mark: string) =>
  code
    .replaceAll('__CANARY_DIR__', dir)
    .replaceAll('__MARK__', mark)
    .replaceAll('__TCP_PORT__', String(tcpPort))
    .replaceAll('__UDP_PORT__', String(udpPort));
const newMark = () => `R1MARK${randomUUID().slice(0, 8)}`;

// ---- programs -------------------------------------------------------------------------------------------

/** Tests whose expected output no program can know: a number drawn now. */
const secret = (n = 2): Test[] => Array.from({ length: n }, () => ({ input: '', output: String(randomInt(1, 2 ** 47)) }));
/** A problem a correct program solves: the sum of two numbers drawn now. */
function sumTests(n = 2): Test[] {
  return Array.from({ length: n }, () => {
    const a = randomInt(1, 2 ** 40),
      b = randomInt(1, 2 ** 40);
    return { input: `${a} ${b}\n`, output: String(a + b) };
  });
}
const PY_SUM = 'a, b = map(int, input().split())\nprint(a + b)';
const PY_WRONG = 'a, b = map(int, input().split())\nprint(a - b)';
const JS_SUM = `const [a, b] = require('fs').readFileSync(0, 'utf8').trim().split(' ').map(Number); console.log(a + b);`;
const RANDOM_SEED = 4242; // the seed the random-state attack leaves; the checker tells it apart
const CHECK_MB = 24; // what the checker allocates; the memory attack holds 56 of the 64 MB
const PY_CHECKER = fixture('py-checker.py').replaceAll('__SEED__', String(RANDOM_SEED)).replaceAll('__CHECK_MB__', String(CHECK_MB));
/** Python attack prelude: the reach from _pyodide_core to the host, and the routes to _pyodide_core. */
const PY_PRELUDE = fixture('py-reach.py') + '\n' + fixture('py-routes.py') + '\n';

// ---- pools ----------------------------------------------------------------------------------------------

/** One pool of one worker, replaced when an attack left it unusable or dirty, so that the next
 * attack is judged on its own. */
class Lane {
  private pool: SandboxPool | null = null;
  constructor(readonly limits: Limits) {}
  get(): SandboxPool {
    // reuse: any: every program in the one process, so a program that poisons its process is followed
    // there by the next (the replay wall, tests/sandbox-replay.test.ts, would run them apart).
    return (this.pool ??= new SandboxPool({ workers: 1, limits: this.limits, reuse: 'any' }));
  }
  async close(): Promise<void> {
    const p = this.pool;
    this.pool = null;
    await p?.destroy();
  }
  /** Starts the worker (a benign run), so that an attack's time is its own. */
  async warm(language: Language): Promise<void> {
    const tests = sumTests(1);
    const r = await this.get().run({ language, code: language === 'python' ? PY_SUM : JS_SUM, tests });
    if (r.passed !== 1) {
      await this.close();
      await this.get().run({ language, code: language === 'python' ? PY_SUM : JS_SUM, tests });
    }
  }
  async run(language: Language, code: string, tests: Test[]): Promise<{ r: ProgramResult; ms: number }> {
    const t = performance.now();
    const r = await this.get().run({ language, code, tests });
    return { r, ms: Math.round(performance.now() - t) };
  }
}
const LANES: Lane[] = [];
const lane = (limits: Limits) => {
  const l = new Lane(limits);
  LANES.push(l);
  return l;
};

/** At most `n` at a time, for tests that run concurrently (each holds a pool of its own). */
function limiter(n: number) {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async <T>(f: () => Promise<T>): Promise<T> => {
    if (active >= n) await new Promise<void>((ok) => waiting.push(ok));
    active++;
    try {
      return await f();
    } finally {
      active--;
      waiting.shift()?.();
    }
  };
}

/** Tests that run concurrently, each on a lane of its own while it runs (a worker to itself). */
function lanes(n: number, limits: Limits) {
  const free = Array.from({ length: n }, () => lane(limits));
  const limit = limiter(n);
  return <T>(f: (l: Lane) => Promise<T>) =>
    limit(async () => {
      const l = free.pop()!;
      try {
        return await f(l);
      } finally {
        free.push(l);
      }
    });
}

const show = (r: ProgramResult) => JSON.stringify(r.results);

/** The common shape: a warm worker, the attack (no pass, in time, no damage to the host), then the
 * follow-up programs with the verdicts they must get. What went wrong, as a list (empty: the attack
 * failed). A lane whose worker the attack left dirty is replaced, so that the next attack is judged on
 * its own. */
async function scenario(l: Lane, language: Language, code: string, followUps: FollowUp[], tests: Test[] = secret()): Promise<string[]> {
  const mark = newMark();
  await l.warm(language);
  const { r, ms } = await l.run(language, fill(code, mark), tests);
  const problems: string[] = [];
  if (r.passed > 0 || r.total !== tests.length) problems.push(`the attack passed: ${show(r)}`);
  if (ms > tests.length * wallMs(l.limits) + GRACE_MS) problems.push(`the attack ran ${ms} ms, over its wall-clock limit`);
  problems.push(...(await hostDamage(mark)));
  let dirty = r.passed > 0;
  for (const f of followUps) {
    const t = performance.now();
    const fr = await l.get().run({ language, code: f.code, tests: f.tests });
    const fms = performance.now() - t;
    if (f.pass ? fr.passed !== fr.total : fr.passed > 0) {
      problems.push(`${f.what} ${f.pass ? 'did not pass' : 'passed'} after the attack: ${show(fr)}`);
      dirty = true;
    }
    if (fms > FOLLOW_UP_MS) problems.push(`${f.what} took ${Math.round(fms)} ms`);
  }
  if (problems.length) problems.push(`(the attack's own result: ${show(r)})`);
  if (dirty) await l.close();
  return problems;
}

const benignPy = (): FollowUp => ({ what: 'a correct program', code: PY_SUM, tests: sumTests(), pass: true });
const wrongPy = (): FollowUp => ({ what: 'a wrong program', code: PY_WRONG, tests: sumTests(), pass: false });
const checkerPy = (): FollowUp => ({ what: 'the checker', code: PY_CHECKER, tests: sumTests(), pass: true });

// ---- 1. Python reaches JavaScript ------------------------------------------------------------------------

const ROUTES: [name: string, route: string, reachByGetters: boolean][] = [
  ["sys.modules['__main__']._pyodide_core, then getters on Object.prototype to globalThis, API, Module", 'route_main', true],
  ['module globals and builtin __self__ (time.sleep.__globals__, shutil, ...)', 'route_other_modules', true],
  ["time.sleep.__globals__['run_sync'].__self__", 'route_time_sleep', true],
  ['object.__subclasses__(), class functions __globals__ / closures / defaults, type __module__ lookups', 'route_subclasses', true],
  ['BuiltinImporter.find_spec + create_module, no import statement', 'route_builtin_importer', true],
  ['importlib.import_module with the sandbox finder off sys.meta_path', 'route_importlib', true],
  ['importlib.util.find_spec + module_from_spec under another name in sys.modules', 'route_find_spec', true],
  ["zipimport of pyodide's own packages from the stdlib zip", 'route_zipimport', true],
  ['js / pyodide_js under other names (sys.modules aliases, finders)', 'route_js_aliases', true],
  ['Error.prepareStackTrace set from Python: host frames for globalThis', 'route_prepare_stack_trace', false],
];

describe('1. Python reaches JavaScript and the host', () => {
  const l = lane(PY_LIMITS);
  it.each(ROUTES)('%s', async (_name, route, byGetters) => {
    const code = PY_PRELUDE + `route = ${route}\nREACH = ${byGetters ? 'True' : 'False'}\n` + fixture('py-escape.py');
    expect(await scenario(l, 'python', code, [benignPy()], secret(1))).toEqual([]);
  });
});

// ---- 2. passing without solving ---------------------------------------------------------------------------

const FAKES: [name: string, code: () => string, followUps: () => FollowUp[]][] = [
  [
    'writes pass into the shared control block, then ends its worker',
    () => PY_PRELUDE + fixture('py-fake-control.py'),
    () => [benignPy(), wrongPy()],
  ],
  [
    "plants Object.prototype.fn and nulls the driver's result through its frame: no result equals no expected value",
    () => PY_PRELUDE + fixture('py-fake-prototype.py'),
    () => [benignPy(), wrongPy()],
  ],
  [
    "replaces String.prototype.trimEnd in the worker's realm, so that every output compares equal",
    () => PY_PRELUDE + fixture('py-fake-compare.py'),
    () => [benignPy(), wrongPy()],
  ],
  [
    "records another program's output through sys.stdout.write, and a later program replays it",
    () => fixture('py-record.py'),
    () => {
      const tests = sumTests();
      return [
        { what: 'the correct program (recorded)', code: PY_SUM, tests, pass: true },
        { what: 'the cheater replaying it', code: fixture('py-replay.py'), tests, pass: false },
      ];
    },
  ],
];

describe('2. Python passes without solving', () => {
  const withLane = lanes(2, PY_LIMITS);
  it.concurrent.for(FAKES)('%s', async ([, code, followUps], { expect }) => {
    expect(await withLane((l) => scenario(l, 'python', code(), followUps()))).toEqual([]);
  });
});

// ---- 3. state for the next program -----------------------------------------------------------------------

const STATE: [name: string, code: string][] = [
  ['a re-arming __del__ finaliser and weakref.finalize replace print, builtins and sys.stdout.write', fixture('py-state-finaliser.py')],
  ['a weakref callback run by the clean-up installs profile, trace and audit hooks and new builtins', fixture('py-state-cleanup-hooks.py')],
  [
    'sys.settrace, sys.setprofile, sys.addaudithook, sys.monitoring directly',
    `import sys
for f in (lambda: sys.settrace(lambda *a: None), lambda: sys.setprofile(lambda *a: None),
          lambda: sys.addaudithook(lambda e, a: None)):
    try:
        f()
    except BaseException as e:
        print(type(e).__name__)
m = sys.monitoring
try:
    m.use_tool_id(3, 'r1')
    m.register_callback(3, m.events.CALL, lambda *a: None)
    m.set_events(3, m.events.CALL)
except BaseException as e:
    print(type(e).__name__)`,
  ],
  [
    'warnings.filters changed in place (every warning an error)',
    `import warnings\nwarnings.simplefilter('error')\nwarnings.filters.insert(0, ('error', None, Warning, None, 0))\nprint('ok')`,
  ],
  [
    "re's compiled-pattern caches poisoned",
    `import re\nevil = re.compile('x')\nfor p in (r'\\d+', 'a', r'\\s+'):\n    re._cache[(str, p, 0)] = evil\n    re._cache2[(str, p, 0)] = evil\nprint('ok')`,
  ],
  ['random.seed(4242): the next program must not get the same numbers', `import random\nrandom.seed(${RANDOM_SEED})\nprint('ok')`],
  [
    'os.environ changed (through putenv, and past it through _data)',
    `import os\ntry:\n    os.environ['R1_LEAK'] = '1'\nexcept BaseException as e:\n    print(type(e).__name__)\nos.environ._data[os.environ.encodekey('R1_LEAK')] = os.environ.encodevalue('1')\nprint('ok')`,
  ],
  [
    "functions' __defaults__ and __kwdefaults__ changed (json.dumps, Counter.most_common)",
    `import json, collections\njson.dumps.__kwdefaults__ = dict(json.dumps.__kwdefaults__, indent=1)\ncollections.Counter.most_common.__defaults__ = (1,)\nprint('ok')`,
  ],
  [
    'sys.stdout.reconfigure (encoding, errors, buffering)',
    `import sys\nsys.stdout.reconfigure(encoding='utf-16', errors='strict', line_buffering=False)\nprint('ok')`,
  ],
  ['sys.stdout.write shadowed on the stream object', `import sys\nsys.stdout.write = lambda s: 0\nprint('ok')`],
  ['sys.set_int_max_str_digits(640)', `import sys\nsys.set_int_max_str_digits(640)\nprint('ok')`],
  [
    'os.dup2 of /dev/null onto file descriptors 1 and 2',
    `import os\nfd = os.open('/dev/null', os.O_WRONLY)\nos.dup2(fd, 1)\nos.dup2(fd, 2)\nprint('ok')`,
  ],
  ['os.close(1) and os.close(0)', `import os\nos.close(1)\nos.close(0)`],
  ['fractions.py rewritten inside the standard library zip, its mtime put back with os.utime', fixture('py-state-zip-module.py')],
  [
    '56 of 64 MB held on a module (copyreg.dispatch_table), so that the next allocation fails',
    `import copyreg\nclass Key:\n    pass\ncopyreg.dispatch_table[Key] = bytearray(56 << 20)\nprint('ok')`,
  ],
];

describe('3. Python leaves state for the next program', () => {
  const withLane = lanes(2, PY_LIMITS);
  it.concurrent.for(STATE)('%s', async ([, code], { expect }) => {
    expect(await withLane((l) => scenario(l, 'python', code, [checkerPy()], secret(1)))).toEqual([]);
  });
});

// ---- 4. JavaScript that hangs its worker after the test ---------------------------------------------------

const FOREVER = 'for (;;) {}';
const JS_HANGS: [name: string, code: string, tests?: Test[]][] = [
  [
    'a FinalizationRegistry callback that loops',
    `const r = new FinalizationRegistry(() => { ${FOREVER} });
for (let i = 0; i < 1000; i++) r.register({}, i);
let keep = [];
for (let j = 0; j < 20; j++) { keep = []; for (let i = 0; i < 50000; i++) keep.push({ i }); }
console.log('done');`,
  ],
  [
    'a thrown error whose message getter loops',
    `const e = new Error('x'); Object.defineProperty(e, 'message', { get() { ${FOREVER} } }); throw e;`,
  ],
  [
    'a thrown error whose inherited message getter loops',
    `class E extends Error {} Object.defineProperty(E.prototype, 'message', { get() { ${FOREVER} } }); throw new E();`,
  ],
  [
    'a thrown error whose stack getter loops',
    `const e = new Error('x'); Object.defineProperty(e, 'stack', { get() { ${FOREVER} } }); throw e;`,
  ],
  [
    'a thrown error whose name getter loops',
    `const e = new Error('x'); Object.defineProperty(e, 'name', { get() { ${FOREVER} } }); throw e;`,
  ],
  [
    'a thrown error whose toString getter loops',
    `const e = new Error('x'); Object.defineProperty(e, 'toString', { get() { ${FOREVER} } }); throw e;`,
  ],
  ['a thrown non-error whose toString loops', `throw { toString() { ${FOREVER} }, [Symbol.toPrimitive]() { ${FOREVER} } };`],
  [
    'an error with a looping stack getter thrown from a timer',
    `setTimeout(() => { const e = new Error('x'); Object.defineProperty(e, 'stack', { get() { ${FOREVER} } }); throw e; }, 0);`,
  ],
  [
    'a called function rejecting with an error whose stack getter loops',
    `module.exports = { f() { const e = new Error('x'); Object.defineProperty(e, 'stack', { get() { ${FOREVER} } }); return Promise.reject(e); } };`,
    [{ fn: 'f', args: [], expected: randomInt(1, 2 ** 47) }],
  ],
];

const DRIVER = join(FIXTURES, 'js-hang-driver.ts');
type DriverReport = {
  warm: ProgramResult | 'hung';
  attack: ProgramResult | 'hung';
  attackMs: number;
  benign: ProgramResult | 'hung';
  destroy: string;
  cpuMsAfter: number;
};

/** Runs the driver; its report, and whether the process exited by itself within `exitMs` of it. */
function drive(
  code: string,
  tests: Test[],
  deadlineMs: number,
  exitMs: number,
): Promise<{ report: DriverReport | null; exited: boolean; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', DRIVER, code, JSON.stringify(tests), JSON.stringify(JS_LIMITS)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '',
      err = '',
      report: DriverReport | null = null,
      exitTimer: NodeJS.Timeout | null = null;
    const finish = (exited: boolean) => {
      clearTimeout(deadline);
      if (exitTimer) clearTimeout(exitTimer);
      if (!exited) child.kill('SIGKILL');
      resolve({ report, exited, stderr: err.slice(-500) });
    };
    const deadline = setTimeout(() => finish(false), deadlineMs);
    child.stdout.on('data', (d) => {
      out += String(d);
      const line = out.split('\n').find((s) => s.startsWith('{'));
      if (line && !report) {
        report = JSON.parse(line) as DriverReport;
        exitTimer = setTimeout(() => finish(false), exitMs);
      }
    });
    child.stderr.on('data', (d) => (err += String(d)));
    child.on('exit', () => finish(true));
  });
}

describe('4. JavaScript hangs its worker after the test', () => {
  const limit = limiter(3);
  it.concurrent.for(JS_HANGS)('%s', async ([, code, tests], { expect }) => {
    const t = tests ?? secret(1);
    const { report, exited, stderr } = await limit(() => drive(code, t, 25_000, 1500));
    const problems: string[] = [];
    if (!report) problems.push(`no report from the driver within 25 s: ${stderr}`);
    else {
      if (report.attack === 'hung') problems.push('the attack never ended');
      else if (report.attack.passed > 0 || report.attack.total !== t.length) problems.push(`the attack passed: ${show(report.attack)}`);
      if (report.attackMs > t.length * wallMs(JS_LIMITS) + GRACE_MS)
        problems.push(`the attack ran ${report.attackMs} ms, over its wall-clock limit`);
      if (report.benign === 'hung' || report.benign.passed !== 1)
        problems.push(`a benign program after it: ${report.benign === 'hung' ? 'hung' : show(report.benign)}`);
      if (report.destroy !== 'done') problems.push('pool.destroy() did not complete within 5 s');
      if (report.cpuMsAfter >= 150)
        problems.push(`the process used ${report.cpuMsAfter} ms of CPU in the 500 ms after destroy(): a thread is still spinning`);
      if (!exited) problems.push('the process did not exit within 1.5 s of its report');
      if (problems.length && report.attack !== 'hung') problems.push(`(the attack's own result: ${show(report.attack)})`);
    }
    expect(problems).toEqual([]);
  });
});
