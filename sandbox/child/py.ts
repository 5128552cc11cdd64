// Python inside the sandbox process: one pyodide interpreter (about 2.5 s to load), and every test of
// every program starts from the same pristine state, as a judge that runs each test as a fresh
// execution would. After start-up the whole interpreter is snapshotted, and put back after each test:
//   - the WebAssembly memory (every Python object, module, allocator and C static, the C environment,
//     the umask-free process settings Python keeps: recursion limit, signal handlers, int digits...):
//     the static data and the live part of the stack and heap are copied back, memory the test took
//     above the start-up heap is zeroed;
//   - the in-memory file system, structurally: every node that existed (its mode, times, contents,
//     name-table links), every directory's entries, the descriptor table and each stream's position,
//     the name table, the working directory and the file system's own counters; nodes a test made
//     are simply no longer linked. /dev, /dev/shm, /tmp and home are nodes like any other;
//   - the process umask (pyodide's umask is Node's own).
// Nothing is put back by a list of names, and the restore runs no Python, so nothing a program left
// (a finaliser, a removed /dev/null, a chmod of home) can make it fail; if it throws anyway, the
// process retires. Files that were there at start-up are read-only (their bytes are shared with the
// snapshot). Limits: a test's memory is its heap growth plus the bytes of the files it made; the
// WebAssembly memory cannot grow past the start-up heap plus the cap (so a 900 MB allocation is
// refused, not grown and kept); a process whose memory is not back at its baseline after a program
// retires. `_ctypes` is deleted from the interpreter's table of builtin modules. Standard input,
// output and error are served from here; the time limit is enforced by pyodide's interrupt check,
// which reads the clock through `interrupt` below.
import { constants } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { loadPyodide as LoadPyodide, PyodideInterface } from 'pyodide';
import type { Job, Run, TestInput } from '../protocol.ts';
import { errorDetail } from '../tests.ts';
import RUNNER from './py-runner.py';

type PyProxy = { toJs(): unknown; destroy(): void };
type PyFn = ((...args: unknown[]) => unknown) & { destroy(): void };
type Stream = { node?: FsNode; shared: Record<string, unknown> } & Record<string, unknown>;
type FsNode = {
  mode: number;
  contents?: unknown;
  parent?: FsNode;
  mounted?: { root: FsNode } | null;
  name_next?: FsNode | null;
  usedBytes?: number;
} & Record<string, unknown>;
type MemFs = {
  ops_table: { file: { stream: Record<string, (...a: never[]) => unknown> } };
  expandFileStorage(node: FsNode, capacity: number): void;
  resizeFileStorage(node: FsNode, size: number): void;
  createNode(...a: unknown[]): FsNode;
};
type Fs = {
  readdir(p: string): string[];
  stat(p: string): { mode: number; mtime: Date | number; size: number };
  lookupPath(p: string, o?: object): { node: FsNode };
  isDir(mode: number): boolean;
  isFile(mode: number): boolean;
  unlink(p: string): void;
  root: FsNode;
  nameTable: (FsNode | null)[];
  mounts: { root: FsNode }[];
  streams: (Stream | null)[];
  ErrnoError: new (errno: number) => Error;
  filesystems: Record<string, { mount?: unknown }> & { MEMFS: MemFs & { mount?: unknown } };
} & Record<string, unknown>;
type Emscripten = {
  HEAPU8: Uint8Array;
  /** The WebAssembly.Memory (Node's types here have no WebAssembly namespace). */
  memory: { buffer: ArrayBuffer; grow(pages: number): number };
  ___stack_pointer: { value: number };
  _sbrk(n: number): number;
  _emscripten_stack_get_end(): number;
};

/** Where programs may write; everything else that exists at start-up is read-only. */
const SCRATCH = ['/tmp', '/home/pyodide'];
const SKIP = new Set(['/dev', '/proc']);
/** Terminal devices: nothing to do with a judged program (and default ones read the process's stdin). */
const REMOVED_PATHS = ['/dev/tty', '/dev/tty1'];
const EPERM = 63,
  ENOSPC = 51; // Emscripten's errno numbering
const MB = 2 ** 20;
/** What a file system node costs in JavaScript memory beyond its bytes (charged to the test). */
const NODE_BYTES = 512;
/** After a program the process may hold this much more than at start-up (memory the WebAssembly
 * heap took up to its cap, file bytes the garbage collector has not freed yet); more retires it. */
const rssSlack = (capBytes: number) => 3 * capBytes + 256 * MB;

const io = { input: new Uint8Array(0), pos: 0, out: [] as Uint8Array[], outBytes: 0, cap: 0, truncated: false };
/** The running test's limits and what it has used. `brkCap`: heap end past which it is over its
 * memory; `files`: bytes of the files it made (an upper bound, made exact when near the cap). */
const watch = { active: false, deadline: Infinity, brk0: 0, capBytes: Infinity, files: 0, overMemory: false, overTime: false, brkMax: 0 };
let M: Emscripten;
/** Bytes of the files the running test made, counted exactly (set up by chargeFiles). */
let liveFileBytes = () => 0;
const heapGrowth = () => M._sbrk(0) - watch.brk0;
/** What the interrupt check reads: a signal (2, SIGINT) once the running test is past its deadline
 * or its memory cap, or wrote past its output cap. pyodide asks every 50 bytecodes or so; no thread
 * is needed, and the pool kills the process if a program never gets there. */
const interrupt = {
  get 0(): number {
    if (!watch.active) return 0;
    if (io.truncated) return 2;
    if (performance.now() > watch.deadline) return ((watch.overTime = true), 2);
    const brk = M._sbrk(0);
    if (brk > watch.brkMax) watch.brkMax = brk;
    if (brk - watch.brk0 + watch.files > watch.capBytes) {
      // The file count is an upper bound (deleted files stay in it): made exact before it decides.
      watch.files = liveFileBytes();
      if (brk - watch.brk0 + watch.files > watch.capBytes) return ((watch.overMemory = true), 2);
    }
    return 0;
  },
  set 0(_v: number) {},
};

type Interpreter = {
  py: PyodideInterface;
  drive: PyFn;
  finish: PyFn;
  fs: Fs;
  restore: () => void;
  brk0: number;
  memory0: number;
  rss0: number;
  isPythonError: (e: unknown) => boolean;
};
let state: Interpreter | null = null;
let tainted: string | null = null;

type FileEntry = { dir: boolean; node: FsNode };
function walk(fs: Fs, dir: string, into: Map<string, FileEntry>): Map<string, FileEntry> {
  for (const name of fs.readdir(dir)) {
    if (name === '.' || name === '..') continue;
    const p = dir === '/' ? `/${name}` : `${dir}/${name}`;
    if (SKIP.has(p)) continue;
    const st = fs.stat(p),
      node = fs.lookupPath(p).node,
      dirNode = fs.isDir(st.mode);
    into.set(p, { dir: dirNode, node });
    if (dirNode) walk(fs, p, into);
  }
  return into;
}

/** Pre-existing files and directories become read-only (scratch folders excepted) and keep their
 * mode and times: the file system's own permission check then refuses writes, new names, renames
 * and deletions in them, so their bytes (shared with the snapshot) never change. */
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
  const byFd = (a: unknown) => (typeof a === 'number' ? (fs.streams[a]?.node ?? null) : null);
  for (const name of ['chmod', 'lchmod', 'chown', 'lchown', 'utime', 'truncate']) refuse(name, byPath);
  for (const name of ['fchmod', 'fchown', 'ftruncate']) refuse(name, byFd);
}

const capacity = (node: FsNode) =>
  node.contents && typeof (node.contents as { length?: unknown }).length === 'number' ? (node.contents as { length: number }).length : 0;

/** Every node of the file system: from the root through directories and mounts, the name table and
 * the open streams. */
function allNodes(fs: Fs): Set<FsNode> {
  const seen = new Set<FsNode>(),
    todo: (FsNode | null | undefined)[] = [fs.root];
  for (const head of fs.nameTable ?? []) for (let n = head; n; n = n.name_next ?? null) todo.push(n);
  for (const s of fs.streams) todo.push(s?.node);
  for (const m of fs.mounts) todo.push(m.root);
  while (todo.length) {
    const n = todo.pop();
    if (!n || typeof n !== 'object' || seen.has(n)) continue;
    seen.add(n);
    todo.push(n.parent, n.mounted?.root);
    if (fs.isDir(n.mode) && n.contents && typeof n.contents === 'object') todo.push(...(Object.values(n.contents) as FsNode[]));
  }
  return seen;
}

/** Makes `target` hold exactly the own properties of `saved` again. */
function putBack(target: Record<string, unknown>, saved: Record<string, unknown>): void {
  for (const k of Object.keys(target)) if (!Object.hasOwn(saved, k)) delete target[k];
  Object.assign(target, saved);
}

/** A function that puts the whole file system back to this moment (see the file's header). */
function snapshotFs(fs: Fs): () => void {
  const nodes = [...allNodes(fs)].map((node) => ({
    node,
    props: { ...node },
    dir: fs.isDir(node.mode) && node.contents && typeof node.contents === 'object' ? { ...(node.contents as object) } : null,
  }));
  const streams = [...fs.streams];
  const streamProps = streams.map((s) => s && { ...s });
  const shared = new Map<Record<string, unknown>, Record<string, unknown>>();
  for (const s of streams) if (s?.shared && !shared.has(s.shared)) shared.set(s.shared, { ...s.shared });
  // The file system's own data: counters, the working directory, the name table, mounts, devices.
  const own = new Map<string, unknown>();
  for (const k of Object.keys(fs)) {
    const v = fs[k];
    if (typeof v === 'function' || k === 'streams') continue;
    own.set(k, Array.isArray(v) ? [...v] : v && typeof v === 'object' ? { ...v } : v);
  }
  const objects = new Map<string, object>(
    [...own.keys()].filter((k) => fs[k] && typeof fs[k] === 'object').map((k) => [k, fs[k] as object]),
  );
  return () => {
    for (const { node, props, dir } of nodes) {
      putBack(node, props);
      if (dir) node.contents = { ...dir };
    }
    for (const [k, v] of own) {
      const live = objects.get(k);
      if (Array.isArray(v)) fs[k] = [...v];
      else if (live && v && typeof v === 'object') putBack((fs[k] = live) as Record<string, unknown>, v as Record<string, unknown>);
      else fs[k] = v;
    }
    streams.forEach((s, i) => s && putBack(s, streamProps[i]!));
    for (const [obj, saved] of shared) putBack(obj, saved);
    fs.streams.length = 0;
    fs.streams.push(...streams);
  };
}

/** A function that puts the WebAssembly memory back to this moment: the static data and the stack
 * in use (below the stack pointer lies only dead stack) copied back and the stack pointer reset, memory above the start-up heap
 * zeroed up to where this test's heap reached. */
function snapshotMemory(): { restore: (dirtyEnd: number) => void; clean: number; sp: number } {
  const heap = M.HEAPU8,
    staticEnd = M._emscripten_stack_get_end(),
    sp = M.___stack_pointer.value;
  let clean = M._sbrk(0);
  // Above the heap the memory should be untouched (zero); if not, it is part of the copy.
  if (heap.subarray(clean).some((b) => b !== 0)) clean = heap.length;
  const low = heap.slice(0, staticEnd),
    high = heap.slice(sp, clean);
  return {
    clean,
    sp,
    restore(dirtyEnd: number) {
      // No WebAssembly frame is live between tests, so the stack pointer belongs where it was at the
      // snapshot. (A JavaScript exception that crossed WebAssembly frames, as pyodide's handling of a
      // deep recursion's memory error does, leaves it lower by the frames it skipped.)
      M.___stack_pointer.value = sp;
      const h = M.HEAPU8;
      h.set(low, 0);
      h.set(high, sp);
      const end = Math.min(h.length, dirtyEnd);
      if (end > clean) h.fill(0, clean, end);
    },
  };
}

/** Deletes a builtin module from the interpreter's tables (CPython's PyImport_Inittab and the copy
 * the runtime made of it): every entry whose name is `name`, found as an entry among entries whose
 * names are builtin modules, is cut out of its table. After this no route (the import statement,
 * importlib, `_imp.create_builtin`) can make the module: it does not exist. Returns the count. */
function deleteBuiltinModule(name: string, builtins: Set<string>): number {
  const heap = M.HEAPU8,
    words = new Uint32Array(heap.buffer, 0, heap.length >>> 2);
  const bytes = Buffer.from(heap.buffer, heap.byteOffset, heap.length);
  const cString = (p: number): string | null => {
    if (p <= 0 || p >= heap.length) return null;
    const end = bytes.indexOf(0, p);
    return end === -1 || end - p > 64 ? null : bytes.toString('latin1', p, end);
  };
  const names = new Set<number>(),
    needle = Buffer.from(`${name}\0`, 'latin1');
  for (let i = bytes.indexOf(needle); i !== -1; i = bytes.indexOf(needle, i + 1)) names.add(i);
  const isEntry = (w: number) => w >= 0 && w + 1 < words.length && words[w + 1] !== 0 && builtins.has(cString(words[w]) ?? '');
  let deleted = 0;
  for (let w = 0; w + 1 < words.length; w++) {
    if (!names.has(words[w]) || words[w + 1] === 0 || !(isEntry(w - 2) || isEntry(w + 2))) continue;
    let end = w;
    while (end + 1 < words.length && !(words[end] === 0 && words[end + 1] === 0) && end - w < 4096) end += 2;
    if (words[end] !== 0 || words[end + 1] !== 0) continue;
    words.copyWithin(w, w + 2, end + 2);
    deleted++;
  }
  return deleted;
}

/** In-memory files count against the test's memory: every way a file grows (a write, a resize, a
 * growth of its storage, a new node) is charged before it happens, and refused (ENOSPC, and the
 * test ends as `memory`) past the cap. */
function chargeFiles(fs: Fs): void {
  const memfs = fs.filesystems.MEMFS;
  const baseline = new Set([...allNodes(fs)].filter((n) => fs.isFile(n.mode)));
  liveFileBytes = () => {
    let total = 0;
    for (const n of allNodes(fs)) if (fs.isFile(n.mode) && !baseline.has(n)) total += capacity(n) + NODE_BYTES;
    return total;
  };
  const admit = (more: number) => {
    if (!watch.active || more <= 0) return;
    if (heapGrowth() + watch.files + more <= watch.capBytes) return;
    watch.files = liveFileBytes();
    if (heapGrowth() + watch.files + more <= watch.capBytes) return;
    watch.overMemory = true;
    throw new fs.ErrnoError(ENOSPC);
  };
  // A write grows its file through expandFileStorage: only the outermost call charges.
  let depth = 0;
  const charged = <A extends unknown[]>(f: (...a: A) => unknown, nodeOf: (...a: A) => FsNode, wanted: (...a: A) => number) =>
    function (this: unknown, ...a: A) {
      if (depth > 0) return f.apply(this, a);
      const node = nodeOf(...a),
        before = capacity(node);
      admit(wanted(...a) - before);
      depth++;
      try {
        return f.apply(this, a);
      } finally {
        depth--;
        if (watch.active) watch.files += capacity(node) - before;
      }
    };
  const stream = memfs.ops_table.file.stream as unknown as {
    write: (s: { node: FsNode }, b: Uint8Array, o: number, l: number, p: number) => unknown;
  };
  stream.write = charged(
    stream.write,
    (s) => s.node,
    (s, _b, _o, length, position) => position + length,
  );
  memfs.expandFileStorage = charged(
    memfs.expandFileStorage,
    (n) => n,
    (_n, c) => c,
  ) as MemFs['expandFileStorage'];
  memfs.resizeFileStorage = charged(
    memfs.resizeFileStorage,
    (n) => n,
    (_n, s) => s,
  ) as MemFs['resizeFileStorage'];
  const createNode = memfs.createNode;
  memfs.createNode = function (this: unknown, ...a: unknown[]) {
    admit(NODE_BYTES);
    if (watch.active) watch.files += NODE_BYTES;
    return createNode.apply(this, a);
  };
}

/** The WebAssembly memory may not grow past `limit()`: a refused growth is an allocation failure
 * (MemoryError), not a process that stays large. */
function capGrowth(limit: () => number): void {
  const memory = M.memory,
    grow = (Object.getPrototypeOf(memory) as typeof memory).grow;
  Object.defineProperty(memory, 'grow', {
    value(pages: number) {
      if (memory.buffer.byteLength + pages * 65536 > limit()) throw new RangeError('sandbox memory cap');
      return grow.call(memory, pages);
    },
  });
}

async function init(pyodideDir: string): Promise<Interpreter> {
  // pyodide's host file system asks process.binding('constants') for open flags while it loads, and
  // the permission model refuses process.binding; that one table is public as fs.constants.
  const binding = (process as unknown as { binding: (name: string) => unknown }).binding;
  Object.assign(process, { binding: (name: string) => (name === 'constants' ? { fs: constants } : binding(name)) });
  const { loadPyodide } = (await import(pathToFileURL(join(pyodideDir, 'pyodide.mjs')).href)) as { loadPyodide: typeof LoadPyodide };
  const py = await loadPyodide({
    indexURL: pyodideDir,
    jsglobals: Object.freeze(Object.create(null)) as object,
    stdout: () => {},
    stderr: () => {},
  });
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
  const builtinModules = new Set(String(py.runPython("import sys\n','.join(sys.builtin_module_names)")).split(','));
  const ns = py.globals.get('dict')() as { destroy(): void };
  py.runPython(RUNNER, { globals: ns as never, filename: 'py-runner.py' } as never);
  const get = (ns as unknown as { get(k: string): PyFn }).get.bind(ns);
  const removedProxy = get('REMOVED') as unknown as PyProxy,
    removed = removedProxy.toJs() as string[];
  removedProxy.destroy();
  for (const name of removed) {
    if (!builtinModules.has(name)) continue;
    deleteBuiltinModule(name, builtinModules);
    // Checked by the interpreter itself, before the guard exists (it blocks `_imp`).
    if (py.runPython(`import _imp\n_imp.is_builtin(${JSON.stringify(name)})`) !== 0)
      throw new Error(`the sandbox could not delete the builtin module ${name} from this pyodide`);
  }
  const fs = py.FS as unknown as Fs;
  for (const name of ['js', 'pyodide_js']) py.unregisterJsModule(name);
  // From here on, pyodide's Python side is cut off (py-runner.py): only proxies of the runner are called.
  get('setup')();
  const drive = get('drive'),
    finish = get('finish');
  // Only memory file systems: no host folder can be mounted from inside.
  for (const [name, f] of Object.entries(fs.filesystems)) if (name !== 'MEMFS') f.mount = undefined;
  for (const p of REMOVED_PATHS) {
    try {
      fs.unlink(p);
    } catch {
      // not there in this pyodide
    }
  }
  protect(fs, walk(fs, '/', new Map()));
  chargeFiles(fs);
  py.setInterruptBuffer(interrupt as unknown as Int32Array);
  const memory = snapshotMemory(),
    restoreFs = snapshotFs(fs),
    umask = process.umask();
  const brk0 = M._sbrk(0);
  capGrowth(() => Math.max(memory.clean, brk0) + Math.ceil(1.25 * (watch.capBytes === Infinity ? 0 : watch.capBytes)) + 16 * MB);
  const restore = () => {
    const dirtyEnd = Math.max(M._sbrk(0), watch.brkMax);
    memory.restore(dirtyEnd);
    restoreFs();
    process.umask(umask);
    watch.brkMax = 0;
  };
  const PythonError = (py as unknown as { ffi: { PythonError: new () => Error } }).ffi.PythonError;
  return {
    py,
    drive,
    finish,
    fs,
    restore,
    brk0,
    memory0: M.HEAPU8.length,
    rss0: process.memoryUsage.rss(),
    isPythonError: (e) => e instanceof PythonError,
  };
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
  for (let i = 0; i < job.tests.length; i++) ran(i, runTest(s, job.code, job.tests[i], { timeMs, memoryMb, outputBytes }));
  // The pristine state holds memory to its start-up size; a process that is bigger than that plus
  // what one program may take is not at its baseline and leaves.
  const capBytes = memoryMb * MB;
  if (M._sbrk(0) !== s.brk0) tainted ??= 'its heap did not return to its start-up size';
  const rss = process.memoryUsage.rss();
  if (rss > s.rss0 + rssSlack(capBytes)) tainted ??= `it holds ${Math.round((rss - s.rss0) / MB)} MB more than at start-up`;
}

const fault = (status: Run['status'], detail: string): Run => ({ status, out: '', result: null, detail });

/** One test: the driver (called from here, so no runner frame lies under the program's) runs the
 * program, `finish` writes its result, and everything is put back. */
function runTest(s: Interpreter, code: string, test: TestInput, o: { timeMs: number; memoryMb: number; outputBytes: number }): Run {
  const input = 'input' in test ? test.input : '';
  Object.assign(io, { input: new TextEncoder().encode(input), pos: 0, out: [], outBytes: 0, cap: o.outputBytes, truncated: false });
  Object.assign(watch, { brk0: s.brk0, capBytes: o.memoryMb * MB, files: 0, overMemory: false, overTime: false, brkMax: 0 });
  watch.deadline = performance.now() + o.timeMs;
  watch.active = true;
  let ran: [string, string, string | null];
  try {
    const r = s.drive(code, input, 'fn' in test ? test.fn : undefined, 'fn' in test ? JSON.stringify(test.args) : undefined) as PyProxy;
    try {
      const f = s.finish(r, o.outputBytes) as PyProxy;
      ran = f.toJs() as typeof ran;
      f.destroy();
    } finally {
      r.destroy();
    }
  } catch (e) {
    // An interrupt or a memory error that landed outside the program's own code (in the driver's
    // clean-up, or in `finish`); anything else means pyodide itself failed and the process leaves.
    if (!s.isPythonError(e) && !watch.overTime && !watch.overMemory) tainted ??= `the interpreter failed: ${errorDetail(String(e), 1)}`;
    ran = ['error', errorDetail(e instanceof Error ? e.message : String(e)), null];
  } finally {
    watch.active = false;
  }
  try {
    s.restore();
  } catch (e) {
    tainted ??= `the interpreter could not be restored: ${errorDetail(String(e), 1)}`;
  }
  const [status, detail, result] = ran;
  const out = new TextDecoder().decode(Buffer.concat(io.out));
  if (io.truncated || status === 'output') return { status: 'output', out: io.truncated ? out : '', result: null, detail: '' };
  if (status === 'memory' || watch.overMemory) return fault('memory', `memory limit of ${o.memoryMb} MB exceeded`);
  if (status === 'timeout' || watch.overTime) return fault('timeout', `time limit of ${o.timeMs} ms exceeded`);
  if (status) return fault(status as Run['status'], errorDetail(detail));
  return { status: 'ok', out, result: result ?? null, detail: '' };
}
