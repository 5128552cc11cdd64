// The Node-like surface a JavaScript program sees inside its isolate, run in every fresh context
// before the program: console, process (stdin/stdout/exit), require('fs' | 'readline' | ...),
// timers on a virtual clock. Nothing real is behind it: standard input is the test's input,
// standard output a capped string, there is no file, network or process. The host reads the run
// through `__r1(op, ...)` (a non-writable, non-configurable global function; ops below), whose
// internals the program cannot reach. Globals the host sets first: __r1_in (the input) and
// __r1_cap (the output cap, in characters).
//
// It runs once per test in a fresh context, where every object shape is new: building an object costs
// map transitions, so the costly parts (process and its streams, the modules) are built on first use:
// `process` is a global accessor that turns into a plain data property, modules load on require.
// Nothing the host calls synchronously (POLL, STATE) runs program code: they read closure variables
// and the timers' own records, which the program cannot reach (a timer handle does not expose them).
export const PRELUDE = String.raw`(() => {
'use strict';
const g = globalThis;
const input = String(g.__r1_in), cap = g.__r1_cap;
delete g.__r1_in; delete g.__r1_cap;
// Shared memory, Atomics.wait and WebAssembly memory are ways around the limits; programs rarely need them.
delete g.SharedArrayBuffer; delete g.Atomics; delete g.WebAssembly;
// A FinalizationRegistry's callbacks run whenever the collector decides, which may be during a later
// program's test (contexts share the isolate). The program gets a registry whose native callback only
// queues the program's callback as a task on this test's timer queue: it runs as a timer would, under
// the test's time limit, or never (after the test, nobody ticks this context again). WeakRef has no
// callback and stays as V8 has it.
const NativeRegistry = g.FinalizationRegistry;
// Captured now: the program may replace any of these.
const stringify = JSON.stringify, parse = JSON.parse, keys = Object.keys, isArray = Array.isArray, is = Object.is;
const freeze = Object.freeze, create = Object.create, define = Object.defineProperty, setPrototypeOf = Object.setPrototypeOf, ErrorCtor = Error, StringCtor = String, NumberCtor = Number;
const resolved = Promise.resolve(), then = Promise.prototype.then, MapCtor = Map, SetCtor = Set;
const EXIT = freeze(create(null));
// An empty plain object in dictionary mode (V8 normalizes an object when a property other than the
// last one is deleted). In a fresh context, adding a property to it is a hash insert where a plain
// object pays a new hidden class per property; same prototype, same behaviour.
const slow = () => { const o = { a: 0, b: 0 }; delete o.a; delete o.b; return o; };
const fill = (o, ks, vs) => { for (let i = 0; i < ks.length; i++) o[ks[i]] = vs[i]; return o; };
let out = '', errOut = '', truncated = false, exitCode = null;
let callDone = false, callResult, callError = null;

function write(s) {
  if (exitCode !== null) return true;
  s = StringCtor(s);
  if (out.length + s.length > cap) {
    out += s.slice(0, cap - out.length);
    truncated = true;
    throw new ErrorCtor('output limit of ' + cap + ' characters exceeded');
  }
  out += s;
  return true;
}
function writeErr(s) {
  s = StringCtor(s);
  if (errOut.length < 4096) errOut += s.slice(0, 4096 - errOut.length);
  return true;
}

// Close to Node's util.inspect for what programs print: top-level strings raw, nested ones quoted.
function inspect(v, depth) {
  if (typeof v === 'string') return depth ? "'" + v + "'" : v;
  if (typeof v === 'number') return is(v, -0) ? '-0' : StringCtor(v);
  if (typeof v === 'bigint') return v + 'n';
  if (typeof v === 'function') return '[Function: ' + (v.name || '(anonymous)') + ']';
  if (typeof v === 'symbol') return v.toString();
  if (v === null || typeof v !== 'object') return StringCtor(v);
  if (v instanceof ErrorCtor) return v.stack || StringCtor(v);
  if (depth > 2) return isArray(v) ? '[Array]' : '[Object]';
  const list = (parts, more) => (more > 0 ? parts.concat(['... ' + more + ' more items']) : parts);
  if (isArray(v)) {
    const parts = list(v.slice(0, 100).map((x) => inspect(x, depth + 1)), v.length - 100);
    return parts.length ? '[ ' + parts.join(', ') + ' ]' : '[]';
  }
  if (v instanceof MapCtor) return 'Map(' + v.size + ') {' + (v.size ? ' ' + [...v].map(([k, x]) => inspect(k, depth + 1) + ' => ' + inspect(x, depth + 1)).join(', ') + ' ' : '') + '}';
  if (v instanceof SetCtor) return 'Set(' + v.size + ') {' + (v.size ? ' ' + [...v].map((x) => inspect(x, depth + 1)).join(', ') + ' ' : '') + '}';
  const ks = keys(v);
  return ks.length ? '{ ' + ks.map((k) => k + ': ' + inspect(v[k], depth + 1)).join(', ') + ' }' : '{}';
}
function format(args) {
  let i = 0, head = '';
  if (typeof args[0] === 'string' && args[0].includes('%')) {
    i = 1;
    head = args[0].replace(/%([sdifjoOc%])/g, (m, c) => {
      if (c === '%') return '%';
      if (i >= args.length) return m;
      const a = args[i++];
      if (c === 's') return typeof a === 'string' ? a : inspect(a, 1);
      if (c === 'd' || c === 'i') return typeof a === 'bigint' ? a + 'n' : StringCtor(c === 'i' ? parseInt(a) : Number(a));
      if (c === 'f') return StringCtor(parseFloat(a));
      if (c === 'j') return stringify(a);
      if (c === 'c') return '';
      return inspect(a, 1);
    });
  }
  const rest = args.slice(i).map((a) => inspect(a, 0));
  return (i ? [head].concat(rest) : rest).join(' ');
}

// Timers run in order of their due time on a virtual clock: a program's waits cost nothing.
let clock = 0, seq = 0, timeoutProto = null;
const timers = [];
function addTimer(fn, ms, args, repeat, internal) {
  if (typeof fn !== 'function') throw new TypeError('The "callback" argument must be of type function');
  ms = Math.max(0, Number(ms) || 0);
  const t = { id: ++seq, due: clock + ms, ms, fn, args, repeat, seq: seq, cancelled: false, handle: null };
  timers.push(t);
  if (internal) return undefined;
  // The record stays private (the host's synchronous POLL reads it, so the program must not be able to
  // put a getter on it); the program gets a handle.
  if (timeoutProto === null) timeoutProto = { ref() { return this; }, unref() { return this; }, hasRef() { return true; }, refresh() { return this; }, [Symbol.toPrimitive]() { return this.id; } };
  const h = create(timeoutProto);
  h.id = t.id;
  t.handle = h;
  return h;
}
function clearTimer(h) {
  if (!h) return;
  const n = typeof h === 'number' ? h : typeof h === 'string' ? NumberCtor(h) : null;
  for (let i = 0; i < timers.length; i++) { const t = timers[i]; if (t.handle === h || t.id === n) t.cancelled = true; }
}
const task = (fn) => { addTimer(fn, 0, [], false, true); };
if (typeof NativeRegistry === 'function') {
  const natives = new WeakMap(), wmGet = WeakMap.prototype.get, wmSet = WeakMap.prototype.set;
  const native = (self) => { const n = wmGet.call(natives, self); if (n === undefined) throw new TypeError('not a FinalizationRegistry'); return n; };
  const register = NativeRegistry.prototype.register, unregister = NativeRegistry.prototype.unregister;
  class FinalizationRegistry {
    constructor(cleanup) {
      if (new.target === undefined) throw new TypeError("Constructor FinalizationRegistry requires 'new'");
      if (typeof cleanup !== 'function') throw new TypeError('FinalizationRegistry: cleanup must be callable');
      // Held values collect here; one task per batch calls the program's callback for each.
      const pending = [];
      const flush = () => { const batch = pending.splice(0); for (let i = 0; i < batch.length; i++) cleanup(batch[i]); };
      wmSet.call(natives, this, new NativeRegistry((held) => { if (pending.push(held) === 1) task(flush); }));
    }
    register(target, held, token) { register.call(native(this), target, held, token); }
    unregister(token) { return unregister.call(native(this), token); }
  }
  define(FinalizationRegistry.prototype, Symbol.toStringTag, { __proto__: null, value: 'FinalizationRegistry', configurable: true });
  define(g, 'FinalizationRegistry', { __proto__: null, value: FinalizationRegistry, writable: true, enumerable: false, configurable: true });
}
g.setTimeout = (fn, ms, ...args) => addTimer(fn, ms, args, false, false);
g.setInterval = (fn, ms, ...args) => addTimer(fn, ms, args, true, false);
g.setImmediate = (fn, ...args) => addTimer(fn, 0, args, false, false);
g.clearTimeout = g.clearInterval = g.clearImmediate = clearTimer;
g.queueMicrotask = (fn) => { then.call(resolved, () => fn()); };
if (typeof g.performance === 'undefined') g.performance = { now: () => clock };

const stdinBuffer = () => new StringCtor(input);

// process, its streams, readline and the other modules: built on first use (most programs need fs
// and console only), in one scope so that their functions are not created before.
let proc = null, nodeApi = null;
const node = () => nodeApi || (nodeApi = makeNode());
function makeNode() {
  const splitLines = (s) => {
    const ls = s.split(/\r?\n/);
    if (ls.length && ls[ls.length - 1] === '') ls.pop();
    return ls;
  };

  // Event emitters share their methods (called on the emitter, as Node's); listeners live in _events.
  const listeners = (self) => self._events || (self._events = create(null));
  const add = (self, ev, fn, once) => { const on = listeners(self); (on[ev] = on[ev] || []).push({ fn, once }); return self; };
  const emitterProto = fill(slow(), ['on', 'addListener', 'once', 'off', 'removeListener', 'removeAllListeners', 'listenerCount', 'emit'], [
    function (ev, fn) { return add(this, ev, fn, false); },
    function (ev, fn) { return add(this, ev, fn, false); },
    function (ev, fn) { return add(this, ev, fn, true); },
    function (ev, fn) { const on = listeners(this); on[ev] = (on[ev] || []).filter((l) => l.fn !== fn); return this; },
    function (ev, fn) { return this.off(ev, fn); },
    function (ev) { const on = listeners(this); if (ev === undefined) { for (const k of keys(on)) delete on[k]; } else delete on[ev]; return this; },
    function (ev) { return (listeners(this)[ev] || []).length; },
    function (ev, ...args) {
      const on = listeners(this), ls = on[ev] || [];
      on[ev] = ls.filter((l) => !l.once);
      for (const l of ls) l.fn.apply(this, args);
      return ls.length > 0;
    },
  ]);
  const emitter = (ks, vs) => fill(setPrototypeOf(slow(), emitterProto), ks, vs);

  // process.stdin: 'data' then 'end' once somebody listens; read() for 'readable' users.
  let stdinScheduled = false, stdinRead = false;
  const stdin = emitter(['fd', 'isTTY', 'readable'], [0, false, true]);
  const scheduleStdin = () => {
    if (stdinScheduled) return;
    stdinScheduled = true;
    task(() => {
      if (stdin.listenerCount('readable')) stdin.emit('readable');
      if (input.length && !stdinRead) { stdinRead = true; stdin.emit('data', stdin._enc ? input : stdinBuffer()); }
      stdin.emit('end');
      stdin.emit('close');
    });
  };
  const listen = (once) => (ev, fn) => { add(stdin, ev, fn, once); if (ev === 'data' || ev === 'end' || ev === 'readable') scheduleStdin(); return stdin; };
  stdin.on = stdin.addListener = listen(false);
  stdin.once = listen(true);
  stdin.setEncoding = (enc) => { stdin._enc = enc || 'utf8'; return stdin; };
  stdin.resume = () => { scheduleStdin(); return stdin; };
  stdin.pause = () => stdin;
  stdin.read = () => { if (stdinRead || !input.length) return null; stdinRead = true; return stdin._enc ? input : stdinBuffer(); };
  stdin[Symbol.asyncIterator] = async function* () { if (input.length) yield stdin._enc ? input : stdinBuffer(); };

  const getProcess = () => {
    if (proc !== null) return proc;
    const stdout = emitter(['fd', 'isTTY', 'columns', 'write'], [1, false, 80, (s, enc, cb) => { write(s); if (typeof cb === 'function') cb(); return true; }]);
    const stderr = emitter(['fd', 'isTTY', 'write'], [2, false, (s) => writeErr(s)]);
    const hrtime = (prev) => { const ns = clock * 1e6; const s = Math.floor(ns / 1e9), n = ns % 1e9; return prev ? [s - prev[0], n - prev[1]] : [s, n]; };
    hrtime.bigint = () => BigInt(Math.round(clock * 1e6));
    const exit = (code) => {
      if (exitCode === null) {
        const c = code === undefined ? proc.exitCode : code;
        exitCode = NumberCtor(c === undefined || c === null ? 0 : c) || 0;
      }
      throw EXIT;
    };
    proc = emitter(
      ['argv', 'env', 'platform', 'version', 'versions', 'pid', 'arch', 'stdin', 'stdout', 'stderr', 'exitCode', 'cwd', 'exit', 'hrtime', 'memoryUsage', 'nextTick', 'uptime'],
      [['node', '/main.js'], create(null), 'linux', 'v20.0.0', { node: '20.0.0' }, 1, 'x64', stdin, stdout, stderr, undefined, () => '/', exit, hrtime,
        () => ({ rss: 0, heapTotal: 0, heapUsed: 0, external: 0, arrayBuffers: 0 }), (fn, ...args) => { then.call(resolved, () => fn(...args)); }, () => clock / 1000],
    );
    return proc;
  };

  function createInterface(opts) {
    const rl = emitter(['closed', 'terminal', 'line', 'input', 'output'], [false, false, '', (opts && opts.input) || stdin, opts && opts.output]);
    const lines = splitLines(input);
    let next = 0;
    rl.close = () => { if (!rl.closed) { rl.closed = true; rl.emit('close'); } };
    rl.setPrompt = rl.prompt = () => {}; rl.pause = rl.resume = () => rl;
    rl.write = (s) => { write(s); };
    rl.question = (q, o, cb) => {
      if (typeof o === 'function') cb = o;
      write(q);
      const l = next < lines.length ? lines[next++] : undefined;
      if (l === undefined) return;
      task(() => cb(l));
    };
    rl[Symbol.asyncIterator] = () => ({
      next: () => Promise.resolve(next < lines.length && !rl.closed ? { value: lines[next++], done: false } : { value: undefined, done: true }),
      return: () => { rl.close(); return Promise.resolve({ value: undefined, done: true }); },
      [Symbol.asyncIterator]() { return this; },
    });
    // Lines arrive after the program's synchronous part, as in Node.
    task(() => {
      while (next < lines.length && !rl.closed) rl.emit('line', lines[next++]);
      rl.close();
    });
    return rl;
  }
  let readlinePromises = null;
  const getReadlinePromises = () => readlinePromises || (readlinePromises = { createInterface: (o) => {
    const rl = createInterface(o);
    const q = rl.question;
    rl.question = (s) => new Promise((ok) => q(s, ok));
    return rl;
  } });

  return { getProcess, createInterface, getReadlinePromises };
}

function makeFs() {
  const notHere = (what) => () => { const e = new ErrorCtor(what + ' is not available in the sandbox'); e.code = 'EACCES'; throw e; };
  const isStdin = (p) => p === 0 || p === '/dev/stdin' || p === '/proc/self/fd/0' || p === 'stdin';
  const fs = slow();
  fs.readFileSync = (p, o) => {
    if (!isStdin(p)) { const e = new ErrorCtor("ENOENT: no such file or directory, open '" + StringCtor(p) + "'"); e.code = 'ENOENT'; throw e; }
    const enc = typeof o === 'string' ? o : o && o.encoding;
    return enc ? input : stdinBuffer();
  };
  fs.writeSync = (fd, s) => { if (fd === 1) return write(s), s.length; if (fd === 2) return writeErr(s), s.length; return notHere('writing files')(); };
  fs.writeFileSync = (p, s) => { if (p === '/dev/stdout' || p === 1) return void write(s); if (p === '/dev/stderr' || p === 2) return void writeErr(s); notHere('writing files')(); };
  fs.existsSync = () => false;
  const denied = ['readFile', 'writeFile', 'appendFileSync', 'openSync', 'readdirSync', 'statSync', 'mkdirSync', 'unlinkSync', 'createReadStream', 'createWriteStream'];
  for (let i = 0; i < denied.length; i++) fs[denied[i]] = notHere('fs.' + denied[i]);
  return fs;
}
function load(name) {
  switch (name) {
    case 'fs': return makeFs();
    case 'readline': return { createInterface: node().createInterface, promises: node().getReadlinePromises() };
    case 'readline/promises': return node().getReadlinePromises();
    case 'process': return node().getProcess();
    case 'os': return { EOL: '\n', cpus: () => [], platform: () => 'linux' };
    case 'util': return { inspect: (v) => inspect(v, 1), format: (...a) => format(a), promisify: (f) => (...a) => new Promise((ok, no) => f(...a, (e, v) => (e ? no(e) : ok(v)))) };
    case 'assert': return Object.assign((c, m) => { if (!c) throw new ErrorCtor(m || 'Assertion failed'); }, { strictEqual: (a, b, m) => { if (!is(a, b)) throw new ErrorCtor(m || 'Expected values to be strictly equal'); } });
    default: return undefined;
  }
}
const loaded = create(null);
const module = { exports: {}, id: '.', filename: '/main.js', loaded: false };
const require = (name) => {
  name = StringCtor(name).replace(/^node:/, '');
  if (name in loaded) return loaded[name];
  const m = load(name);
  if (m !== undefined) return (loaded[name] = m);
  const e = new ErrorCtor("Cannot find module '" + name + "' (not available in the sandbox)");
  e.code = 'MODULE_NOT_FOUND';
  throw e;
};
require.main = module;

g.global = g;
// A plain data property once read or assigned, as if it had always been one.
const settle = (v) => { define(g, 'process', { __proto__: null, value: v, writable: true, enumerable: true, configurable: true }); return v; };
define(g, 'process', { __proto__: null, get: () => settle(node().getProcess()), set: settle, enumerable: true, configurable: true });
g.require = require;
g.module = module;
g.exports = module.exports;
g.__filename = '/main.js';
g.__dirname = '/';
const log = (...a) => { write(format(a) + '\n'); };
const err = (...a) => { writeErr(format(a) + '\n'); };
const nothing = () => {};
const con = slow();
con.log = con.info = con.debug = con.table = log;
con.error = con.warn = con.trace = err;
con.dir = (v) => log(v);
con.group = con.groupEnd = con.time = con.timeEnd = nothing;
con.assert = (c, ...a) => { if (!c) err('Assertion failed', ...a); };
g.console = con;

// The host's entry: __r1(op, ...). Ops: 0 TICK runs the earliest timer (program code: the host runs
// it asynchronously with a time limit; an exception leaves for the host); 1 POLL: null while a timer
// is due, else the state; 2 STATE: the run's outcome as JSON, from closure variables holding
// primitives only (exitCode a number, callResult JSON text), so that no program code runs; 3 CALL(fn, Solution, name, argsJson) calls the
// tested function: a global of that name, module.exports' one, or a method of class Solution.
define(g, '__r1', { __proto__: null, enumerable: false, writable: false, configurable: false, value: freeze((op, fn, Solution, name, argsJson) => {
  if (op === 0) {
    if (exitCode !== null) return;
    let best = null;
    for (const t of timers) if (!t.cancelled && (best === null || t.due < best.due || (t.due === best.due && t.seq < best.seq))) best = t;
    if (best === null) { timers.length = 0; return; }
    clock = best.due;
    if (best.repeat) { best.due = clock + Math.max(1, best.ms); best.seq = ++seq; } else best.cancelled = true;
    try { best.fn.apply(undefined, best.args); } catch (e) { if (e === EXIT) return; throw e; }
    if (timers.length > 64 && !best.repeat) for (let i = timers.length - 1; i >= 0; i--) if (timers[i].cancelled) timers.splice(i, 1);
    return;
  }
  if (op === 1 && exitCode === null) for (let i = 0; i < timers.length; i++) if (!timers[i].cancelled) return null;
  if (op === 1 || op === 2) {
    // [out, err, truncated, exitCode, callDone, callResult, callError]: strings through stringify
    // (no toJSON lookup for a primitive), the rest primitives concatenated.
    const q = (v) => (v === null || v === undefined ? 'null' : stringify(v));
    return '[' + q(out) + ',' + q(errOut) + ',' + truncated + ',' + exitCode + ',' + callDone + ',' + q(callResult) + ',' + q(callError) + ']';
  }
  if (op === 3) {
    let self;
    const ex = module.exports;
    if (typeof fn !== 'function' && ex) fn = typeof ex === 'function' && (ex.name === name || !ex[name]) ? ex : ex[name];
    if (typeof fn !== 'function' && typeof Solution === 'function' && Solution.prototype && typeof Solution.prototype[name] === 'function') {
      self = new Solution();
      fn = self[name];
    }
    if (typeof fn !== 'function') throw new ErrorCtor('no function named ' + name);
    const r = fn.apply(self, parse(argsJson));
    const done = (v) => { callResult = v === undefined ? undefined : stringify(v); callDone = true; };
    if (r !== null && typeof r === 'object' && typeof r.then === 'function') r.then(done, (e) => { callError = StringCtor((e && e.stack) || e); callDone = true; });
    else done(r);
  }
}) });
})();`;
