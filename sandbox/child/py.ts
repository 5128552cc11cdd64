// Python inside the sandbox process: one pyodide interpreter (about 2.5 s to load), and every program
// starts from the same clean state. After start-up the whole interpreter is snapshotted: the
// WebAssembly memory (about 26 MB: every Python object, module, allocator and C static) and the
// virtual file system's streams and directory. After each program the memory is copied back in one
// pass (a few ms) and the streams put back, so no object, hook, cache, finaliser or in-place change
// of one program exists for the next; nothing is put back by a list of names. Between the tests of
// one program, the lighter clean-up of py-runner.py (module dicts, sys lists) gives each test fresh
// globals. Files a test created are deleted; files that were there before are read-only (the file
// system refuses writes, and changes of mode or time). Standard input, output and error are served
// from here; the program's time limit is enforced by pyodide's interrupt check, which reads the
// clock through `interrupt` below. What cannot be proven clean retires the process.
import { constants } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { loadPyodide as LoadPyodide, PyodideInterface } from 'pyodide';
import type { Job, Run, TestInput } from '../protocol.ts';
import { errorDetail } from '../tests.ts';
import RUNNER from './py-runner.py';

type PyProxy = { get(i: number): unknown; toJs(): unknown; destroy(): void };
type PyFn = ((...args: unknown[]) => unknown) & { destroy(): void };
type Runner = { compile: PyFn; begin: PyFn; end: PyFn };
type Stream = { fd: number | null; position: number; flags: number };
type FsNode = { mode: number; mtime?: number; timestamp?: number; contents?: unknown; usedBytes?: number };
type Fs = {
  readdir(p: string): string[];
  stat(p: string): { mode: number; mtime: Date | number; size: number };
  lookupPath(p: string, o?: object): { node: FsNode };
  isDir(mode: number): boolean;
  unlink(p: string): void;
  rmdir(p: string): void;
  chdir(p: string): void;
  cwd(): string;
  streams: (Stream | null)[];
  ErrnoError: new (errno: number) => Error;
  filesystems: Record<string, { mount?: unknown }>;
} & Record<string, unknown>;
type Emscripten = { HEAPU8: Uint8Array; _sbrk(n: number): number };
type FileEntry = { mtime: number; size: number; dir: boolean; node: FsNode; contents: unknown };

/** Where programs may write; everything else that exists at start-up is read-only. */
const SCRATCH = ['/tmp', '/home/pyodide'];
const SKIP = new Set(['/dev', '/proc']);
const EPERM = 63; // Emscripten's errno numbering

const io = { input: new Uint8Array(0), pos: 0, out: [] as Uint8Array[], outBytes: 0, cap: 0, truncated: false };
/** What the interrupt check reads: a signal (2, SIGINT) once the running test is past its deadline
 * or its memory cap, or wrote past its output cap. pyodide asks every 50 bytecodes or so; no thread
 * is needed, and the pool kills the process if a program never gets there. */
const watch = { active: false, deadline: Infinity, brkCap: Infinity, overMemory: false, overTime: false };
let M: Emscripten;
const interrupt = {
  get 0(): number {
    if (!watch.active) return 0;
    if (io.truncated) return 2;
    if (performance.now() > watch.deadline) return ((watch.overTime = true), 2);
    if (M._sbrk(0) > watch.brkCap) return ((watch.overMemory = true), 2);
    return 0;
  },
  set 0(_v: number) {},
};

type Interpreter = { py: PyodideInterface; runner: Runner; fs: Fs; files: Map<string, FileEntry>; restore: () => void; brk0: number };
let state: Interpreter | null = null;
let tainted: string | null = null;

function walk(fs: Fs, dir: string, into: Map<string, FileEntry>): Map<string, FileEntry> {
  for (const name of fs.readdir(dir)) {
    if (name === '.' || name === '..') continue;
    const p = dir === '/' ? `/${name}` : `${dir}/${name}`;
    if (SKIP.has(p)) continue;
    const st = fs.stat(p), node = fs.lookupPath(p).node, dirNode = fs.isDir(st.mode);
    into.set(p, { mtime: +st.mtime, size: st.size, dir: dirNode, node, contents: node.contents });
    if (dirNode) walk(fs, p, into);
  }
  return into;
}

/** Pre-existing files and directories become read-only (scratch folders excepted) and keep their
 * mode and times: the file system's own permission check then refuses writes, new names, renames
 * and deletions in them. */
function protect(fs: Fs, files: Map<string, FileEntry>): void {
  const guarded = new WeakSet<object>();
  for (const [p, e] of files) {
    if (SCRATCH.includes(p)) continue;
    e.node.mode &= e.dir ? ~0o222 : ~0o333;
    guarded.add(e.node);
  }
  const refuse = (name: string, nodeOf: (a: unknown) => FsNode | null) => {
    const orig = fs[name] as (...a: unknown[]) => unknown;
    fs[name] = function (this: unknown, ...a: unknown[]) {
      const node = nodeOf(a[0]);
      if (node && guarded.has(node)) throw new fs.ErrnoError(EPERM);
      return orig.apply(this, a);
    };
  };
  const byPath = (a: unknown) => {
    try {
      return typeof a === 'string' ? fs.lookupPath(a, { follow: true }).node : null;
    } catch {
      return null;
    }
  };
  const byFd = (a: unknown) => (typeof a === 'number' ? ((fs.streams[a] as unknown as { node?: FsNode })?.node ?? null) : null);
  for (const name of ['chmod', 'lchmod', 'chown', 'lchown', 'utime', 'truncate']) refuse(name, byPath);
  for (const name of ['fchmod', 'fchown', 'ftruncate']) refuse(name, byFd);
}

/** Deletes what a test created; false when something that was there before changed. */
function restoreFiles(fs: Fs, before: Map<string, FileEntry>): boolean {
  const now = walk(fs, '/', new Map());
  const created = [...now.keys()].filter((p) => !before.has(p)).sort((a, b) => b.length - a.length);
  for (const p of created) (now.get(p)!.dir ? fs.rmdir : fs.unlink).call(fs, p);
  for (const [p, e] of before) {
    const n = now.get(p);
    if (!n || n.node !== e.node || (!e.dir && (n.mtime !== e.mtime || n.size !== e.size || n.contents !== e.contents))) return false;
  }
  return true;
}

/** A function that puts the interpreter back to this moment: memory, streams, directory. */
function snapshot(fs: Fs): () => void {
  const memory = M.HEAPU8.slice();
  const streams = fs.streams.map((s) => s && { s, fd: s.fd, position: s.position, flags: s.flags });
  const cwd = fs.cwd();
  return () => {
    const heap = M.HEAPU8;
    heap.set(memory);
    if (heap.length > memory.length) heap.fill(0, memory.length);
    fs.streams.length = 0;
    streams.forEach((e, i) => {
      fs.streams[i] = e && Object.assign(e.s, { fd: e.fd, position: e.position, flags: e.flags });
    });
    fs.chdir(cwd);
  };
}

async function init(pyodideDir: string): Promise<Interpreter> {
  // pyodide's host file system asks process.binding('constants') for open flags while it loads, and
  // the permission model refuses process.binding; that one table is public as fs.constants.
  const binding = (process as unknown as { binding: (name: string) => unknown }).binding;
  Object.assign(process, { binding: (name: string) => (name === 'constants' ? { fs: constants } : binding(name)) });
  const { loadPyodide } = (await import(pathToFileURL(join(pyodideDir, 'pyodide.mjs')).href)) as { loadPyodide: typeof LoadPyodide };
  const py = await loadPyodide({ indexURL: pyodideDir, jsglobals: Object.freeze(Object.create(null)) as object, stdout: () => {}, stderr: () => {} });
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
        // Throwing here would be a fatal error for pyodide; the rest is dropped and the program is
        // interrupted at its next check, which the test reports as the output limit.
        if (room > 0) io.out.push(buffer.slice(0, room));
        io.outBytes = io.cap;
        io.truncated = true;
        return buffer.length;
      }
      io.out.push(buffer.slice());
      io.outBytes += buffer.length;
      return buffer.length;
    },
  });
  // A program's standard error is not judged (the driver reports its exceptions): dropped unread.
  py.setStderr({ isatty: false, write: (buffer: Uint8Array) => buffer.length });
  Object.assign(process, { binding });
  M = (py as unknown as { _module: Emscripten })._module;
  const ns = py.globals.get('dict')() as { destroy(): void };
  py.runPython(RUNNER, { globals: ns as never, filename: 'py-runner.py' } as never);
  const get = (ns as unknown as { get(k: string): PyFn }).get.bind(ns);
  const runner = { compile: get('compile_program'), begin: get('begin'), end: get('end') };
  const fs = py.FS as unknown as Fs;
  for (const name of ['js', 'pyodide_js']) py.unregisterJsModule(name);
  // From here on, pyodide's Python side is cut off (py-runner.py): only proxies of the runner are called.
  get('setup')();
  // Only memory file systems: no host folder can be mounted from inside.
  for (const [name, f] of Object.entries(fs.filesystems)) if (name !== 'MEMFS') f.mount = undefined;
  const files = walk(fs, '/', new Map());
  protect(fs, files);
  py.setInterruptBuffer(interrupt as unknown as Int32Array);
  return { py, runner, fs, files, restore: snapshot(fs), brk0: M._sbrk(0) };
}

/** Loads the interpreter; the process reports ready after this. */
export async function prepare(pyodideDir: string): Promise<void> {
  state = await init(pyodideDir);
}

/** Why the process must not run another program, or null. */
export const taint = () => tainted;

export async function runProgram(job: Job, ran: (i: number, run: Run) => void): Promise<void> {
  const s = state!;
  const { timeMs, memoryMb, outputBytes } = job.limits;
  const compiled = s.runner.compile(job.code) as PyProxy;
  const program = compiled.get(0) as PyProxy | undefined, syntaxError = compiled.get(1) as string | undefined;
  compiled.destroy();
  try {
    for (let i = 0; i < job.tests.length; i++) {
      if (syntaxError !== undefined) {
        ran(i, fault('error', errorDetail(syntaxError)));
        continue;
      }
      const run = runTest(s, program!, job.tests[i], i === job.tests.length - 1, { timeMs, memoryMb, outputBytes });
      if (!restoreFiles(s.fs, s.files)) tainted ??= 'a file that was there before changed';
      ran(i, run);
    }
  } finally {
    program?.destroy();
    // The whole interpreter back to its start-up state: nothing of this program reaches the next.
    s.restore();
  }
}

const fault = (status: Run['status'], detail: string): Run => ({ status, out: '', result: null, detail });

/** One test: the runner readies the interpreter, the driver it returns runs the program (called from
 * here, so no runner frame lies under the program's), the runner tidies up for the next test. */
function runTest(s: Interpreter, program: PyProxy, test: TestInput, last: boolean, o: { timeMs: number; memoryMb: number; outputBytes: number }): Run {
  const input = 'input' in test ? test.input : '';
  Object.assign(io, { input: new TextEncoder().encode(input), pos: 0, out: [], outBytes: 0, cap: o.outputBytes, truncated: false });
  Object.assign(watch, { active: true, deadline: performance.now() + o.timeMs, brkCap: s.brk0 + o.memoryMb * 2 ** 20, overMemory: false, overTime: false });
  let ran: [string, string, string | null];
  try {
    const begun = s.runner.begin(input) as PyProxy;
    const drive = begun.get(0) as PyFn, builtins = begun.get(1) as PyProxy;
    begun.destroy();
    try {
      const r = drive(program, 'fn' in test ? test.fn : undefined, 'fn' in test ? JSON.stringify(test.args) : undefined, builtins) as PyProxy;
      ran = r.toJs() as typeof ran;
      r.destroy();
    } finally {
      watch.active = false;
      drive.destroy();
      builtins.destroy();
      // After the last test the snapshot puts everything back; between tests the runner tidies.
      if (!last && s.runner.end() !== true) tainted ??= 'the interpreter could not be tidied after a test';
    }
  } catch (e) {
    // The runner itself failed (an interrupt landed outside the program): its state is unknown.
    tainted ??= 'an interrupt landed outside the program';
    ran = ['error', errorDetail(e instanceof Error ? e.message : String(e)), null];
  } finally {
    watch.active = false;
  }
  const [status, detail, result] = ran;
  const out = new TextDecoder().decode(Buffer.concat(io.out));
  if (io.truncated) return { status: 'output', out, result: null, detail: '' };
  if (status === 'memory' || watch.overMemory) return fault('memory', `memory limit of ${o.memoryMb} MB exceeded`);
  if (status === 'timeout' || watch.overTime) return fault('timeout', `time limit of ${o.timeMs} ms exceeded`);
  if (status) return fault(status as Run['status'], errorDetail(detail));
  return { status: 'ok', out, result: result ?? null, detail: '' };
}
