// Python worker: one pyodide interpreter per worker thread (about 2 s to load), reused for every
// test. Each test runs in fresh globals and the interpreter is put back afterwards (py-runner.py);
// files a test created are deleted. Standard input, output and error are served from here. What
// cannot be undone in place (the WebAssembly heap grew past the memory limit, a pre-existing file
// changed) retires the worker: it exits before its next task, and the pool runs that task again on
// a fresh worker. Runaway tests are stopped by the pool through the interrupt buffer (the control
// block's first slot) or, failing that, by killing this thread.
import { readFileSync } from 'node:fs';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { dirname } from 'node:path';
import { loadPyodide, type PyodideInterface } from 'pyodide';
import { tracked, type WorkerJob } from './protocol.ts';
import { compareOutput, compareValue, errorDetail, type Status, type Test, type TestResult } from './tests.ts';

type PyProxy = { get(i: number): unknown; toJs(): unknown; destroy(): void };
type PyFn = ((...args: unknown[]) => unknown) & { destroy(): void };
type Runner = { compile: PyFn; begin: PyFn; end: PyFn };
type Stdio = { input: Uint8Array; pos: number; out: Uint8Array[]; outBytes: number; cap: number; truncated: boolean; err: string };
type FsEntry = { mtime: number; dir: boolean };
type Fs = {
  readdir(p: string): string[];
  stat(p: string): { mode: number; mtime: Date | number };
  isDir(mode: number): boolean;
  unlink(p: string): void;
  rmdir(p: string): void;
};

const RUNNER = readFileSync(new URL('./py-runner.py', import.meta.url), 'utf8');
/** pyodide finds its files from its own stack trace, which a TypeScript loader garbles: say where. */
const PYODIDE_DIR = dirname(createRequire(import.meta.url).resolve('pyodide/package.json')) + '/';
const SKIP = new Set(['/dev', '/proc']);
const io: Stdio = { input: new Uint8Array(0), pos: 0, out: [], outBytes: 0, cap: 0, truncated: false, err: '' };
let ready: Promise<{ py: PyodideInterface; runner: Runner; files: Map<string, FsEntry>; heap0: number }> | null = null;
let retiring = false;
/** The running job's control block: a program past its output cap is interrupted through it. */
let control: Int32Array | null = null;

const denied = function denied(): never {
  throw new Error('not available in the sandbox');
};
/** Host modules this thread no longer needs once pyodide has loaded: every function they export is
 * replaced, so no JavaScript that Python might reach can touch files, processes or the network. */
const HOST_MODULES = ['fs', 'fs/promises', 'child_process', 'net', 'dgram', 'dns', 'http', 'https', 'http2', 'tls', 'inspector', 'vm', 'cluster', 'module'];

/** Nothing Python can reach through a JavaScript proxy may generate code, mount host files, or use
 * a host module (this worker thread's copies of them; the pool's thread is untouched). */
function harden(py: PyodideInterface): void {
  for (const f of [function () {}, async function () {}, function* () {}, async function* () {}]) {
    Object.defineProperty(Object.getPrototypeOf(f), 'constructor', { value: denied });
  }
  // Not globalThis.Function itself: pyodide tells its proxies apart with `instanceof Function`.
  Object.assign(globalThis, { eval: denied });
  const filesystems = py.FS.filesystems as Record<string, { mount?: unknown }>;
  for (const [name, fs] of Object.entries(filesystems)) if (name !== 'MEMFS') fs.mount = denied;
  const require = createRequire(import.meta.url);
  const deny = (m: Record<string, unknown>) => {
    for (const key of Object.keys(m)) {
      const d = Object.getOwnPropertyDescriptor(m, key);
      if (d && 'value' in d && typeof d.value === 'function' && d.writable) m[key] = denied;
    }
  };
  for (const name of HOST_MODULES) {
    const m = require(name) as Record<string, unknown>;
    deny(m);
    if (m.promises && typeof m.promises === 'object') deny(m.promises as Record<string, unknown>);
  }
  syncBuiltinESMExports();
  const proc = process as unknown as Record<string, unknown>;
  for (const key of ['binding', '_linkedBinding', 'dlopen', 'kill', 'chdir', 'abort', 'setuid', 'setgid', 'seteuid', 'setegid', 'setgroups', 'initgroups']) proc[key] = denied;
}

function walk(fs: Fs, dir: string, into: Map<string, FsEntry>): Map<string, FsEntry> {
  for (const name of fs.readdir(dir)) {
    if (name === '.' || name === '..') continue;
    const p = dir === '/' ? `/${name}` : `${dir}/${name}`;
    if (SKIP.has(p)) continue;
    const st = fs.stat(p);
    const dirNode = fs.isDir(st.mode);
    into.set(p, { mtime: +st.mtime, dir: dirNode });
    if (dirNode) walk(fs, p, into);
  }
  return into;
}

/** Deletes what a test created; false when it changed something that was there before. */
function restoreFiles(fs: Fs, before: Map<string, FsEntry>): boolean {
  const now = walk(fs, '/', new Map());
  let intact = before.size <= now.size;
  const created = [...now.keys()].filter((p) => !before.has(p)).sort((a, b) => b.length - a.length);
  for (const p of created) (now.get(p)!.dir ? fs.rmdir : fs.unlink).call(fs, p);
  for (const [p, e] of before) {
    const n = now.get(p);
    if (!n || (!e.dir && n.mtime !== e.mtime)) intact = false;
  }
  return intact;
}

async function init() {
  const py = await loadPyodide({ indexURL: PYODIDE_DIR, jsglobals: Object.freeze(Object.create(null)) as object, stdout: () => {}, stderr: () => {} });
  py.setStdin({
    read(buffer: Uint8Array) {
      const n = Math.min(buffer.length, io.input.length - io.pos);
      buffer.set(io.input.subarray(io.pos, io.pos + n));
      io.pos += n;
      return n;
    },
  });
  py.setStdout({
    isatty: false,
    write(buffer: Uint8Array) {
      const room = io.cap - io.outBytes;
      if (buffer.length > room) {
        if (room > 0) io.out.push(buffer.slice(0, room));
        io.outBytes = io.cap;
        io.truncated = true;
        // Throwing here would be a fatal error for pyodide; the rest is dropped and the program is
        // interrupted (SIGINT) at its next bytecode, which the test reports as the output limit.
        if (control) Atomics.store(control, 0, 2);
        return buffer.length;
      }
      io.out.push(buffer.slice());
      io.outBytes += buffer.length;
      return buffer.length;
    },
  });
  py.setStderr({
    isatty: false,
    write(buffer: Uint8Array) {
      if (io.err.length < 4096) io.err += new TextDecoder().decode(buffer).slice(0, 4096 - io.err.length);
      return buffer.length;
    },
  });
  const ns = py.globals.get('dict')() as { destroy(): void };
  py.runPython(RUNNER, { globals: ns as never, filename: 'py-runner.py' } as never);
  const get = (ns as unknown as { get(k: string): PyFn }).get.bind(ns);
  const runner = { compile: get('compile_program'), begin: get('begin'), end: get('end') };
  const fs = py.FS as unknown as Fs;
  get('setup')();
  for (const name of ['js', 'pyodide_js']) py.unregisterJsModule(name);
  harden(py);
  const heap = (py as unknown as { _module: { HEAP8: Int8Array } })._module;
  return { py, runner, files: walk(fs, '/', new Map()), heap0: heap.HEAP8.buffer.byteLength };
}

const heapBytes = (py: PyodideInterface) => (py as unknown as { _module: { HEAP8: Int8Array } })._module.HEAP8.buffer.byteLength;

export default async function runPython(job: WorkerJob): Promise<TestResult[]> {
  // A retired worker leaves before starting anything: the pool sees no test begun and retries.
  if (retiring) process.exit(0);
  const { py, runner, files, heap0 } = await (ready ??= init().catch((e: unknown) => {
    retire(); // a worker that failed to load is of no further use
    throw e;
  }));
  const ctl = (control = new Int32Array(job.control));
  py.setInterruptBuffer(ctl.subarray(0, 1));
  const { timeMs, memoryMb, outputBytes } = job.limits;
  const overMemory = () => heapBytes(py) - heap0 > memoryMb * 2 ** 20;
  const compiled = runner.compile(job.code) as PyProxy;
  const program = compiled.get(0) as PyProxy | undefined, syntaxError = compiled.get(1) as string | undefined;
  compiled.destroy();
  const results: TestResult[] = [];
  try {
    for (let i = 0; i < job.tests.length; i++) {
      const test = job.tests[i], last = i === job.tests.length - 1;
      results.push(
        await tracked(ctl, i, () => {
          if (syntaxError !== undefined) return { status: 'error', detail: errorDetail(syntaxError) };
          const r = runTest(runner, program!, test, last, { timeMs, memoryMb, outputBytes, overMemory });
          if (!restoreFiles(py.FS as unknown as Fs, files) || overMemory()) retire();
          return r;
        }),
      );
      Atomics.store(ctl, 0, 0);
    }
  } finally {
    program?.destroy();
    control = null;
    py.setInterruptBuffer(undefined as never);
  }
  return results;
}

/** One test: the runner readies the interpreter, the driver it returns runs the program (called from
 * here, so no runner frame lies under the program's), the runner puts everything back. */
function runTest(runner: Runner, program: PyProxy, test: Test, last: boolean, o: { timeMs: number; memoryMb: number; outputBytes: number; overMemory: () => boolean }): TestResult {
  const input = 'input' in test ? test.input : '';
  Object.assign(io, { input: new TextEncoder().encode(input), pos: 0, out: [], outBytes: 0, cap: o.outputBytes, truncated: false, err: '' });
  const start = performance.now();
  let ran: [Status | '', string, string | null];
  try {
    const begun = runner.begin(input) as PyProxy;
    const drive = begun.get(0) as PyFn, builtins = begun.get(1) as PyProxy;
    begun.destroy();
    try {
      const r = drive(program, 'fn' in test ? test.fn : undefined, 'fn' in test ? JSON.stringify(test.args) : undefined, builtins) as PyProxy;
      ran = r.toJs() as typeof ran;
      r.destroy();
    } finally {
      drive.destroy();
      builtins.destroy();
      if (runner.end(last) !== true) retire();
    }
  } catch (e) {
    // The runner itself failed (an interrupt landed outside the program): state is unknown.
    retire();
    ran = ['error', errorDetail(e instanceof Error ? e.message : String(e)), null];
  }
  const [status, detail, result] = ran;
  if (io.truncated) return { status: 'fail', detail: `output limit of ${o.outputBytes} bytes exceeded` };
  if (status === 'memory' || o.overMemory()) return { status: 'memory', detail: `memory limit of ${o.memoryMb} MB exceeded` };
  if (status === 'timeout' || performance.now() - start > o.timeMs) return { status: 'timeout', detail: `time limit of ${o.timeMs} ms exceeded` };
  if (status) return { status, detail: errorDetail(detail) };
  if ('fn' in test) return compareValue(result === null ? null : JSON.parse(result), test.expected);
  return compareOutput(new TextDecoder().decode(Buffer.concat(io.out)), test.output);
}

/** Exits when idle (or at the next task), so no test of another program is cut short. */
function retire(): void {
  if (retiring) return;
  retiring = true;
  setTimeout(() => process.exit(0), 20).unref();
}
