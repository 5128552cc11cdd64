// The Node-like surface a JavaScript program sees inside its isolate, run in every fresh context
// before the program: console, process (stdin/stdout/exit), require('fs' | 'readline' | ...),
// timers on a virtual clock. Nothing real is behind it: standard input is the test's input,
// standard output a capped string, there is no file, network or process. The host reads the run
// through the frozen `__r1` object (tick, call, state), whose internals the program cannot reach.
// Globals the host sets first: __r1_in (the input) and __r1_cap (the output cap, in characters).
export const PRELUDE = String.raw`(() => {
'use strict';
const g = globalThis;
const input = String(g.__r1_in), cap = g.__r1_cap;
delete g.__r1_in; delete g.__r1_cap;
// Shared memory, Atomics.wait and WebAssembly memory are ways around the limits; programs rarely need them.
for (const k of ['SharedArrayBuffer', 'Atomics', 'WebAssembly']) delete g[k];
// Captured now: the program may replace any of these.
const stringify = JSON.stringify, parse = JSON.parse, keys = Object.keys, isArray = Array.isArray, is = Object.is;
const freeze = Object.freeze, create = Object.create, define = Object.defineProperty, ErrorCtor = Error, StringCtor = String;
const resolved = Promise.resolve(), then = Promise.prototype.then, MapCtor = Map, SetCtor = Set;
const EXIT = freeze(create(null));
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

function emitter(target) {
  const on = create(null);
  const add = (ev, fn, once) => { (on[ev] = on[ev] || []).push({ fn, once }); return target; };
  target.on = target.addListener = (ev, fn) => add(ev, fn, false);
  target.once = (ev, fn) => add(ev, fn, true);
  target.off = target.removeListener = (ev, fn) => { on[ev] = (on[ev] || []).filter((l) => l.fn !== fn); return target; };
  target.removeAllListeners = (ev) => { if (ev === undefined) { for (const k of keys(on)) delete on[k]; } else delete on[ev]; return target; };
  target.listenerCount = (ev) => (on[ev] || []).length;
  target.emit = (ev, ...args) => {
    const ls = on[ev] || [];
    on[ev] = ls.filter((l) => !l.once);
    for (const l of ls) l.fn.apply(target, args);
    return ls.length > 0;
  };
  return target;
}

// Timers run in order of their due time on a virtual clock: a program's waits cost nothing.
let clock = 0, seq = 0;
const timers = [];
function addTimer(fn, ms, args, repeat) {
  if (typeof fn !== 'function') throw new TypeError('The "callback" argument must be of type function');
  ms = Math.max(0, Number(ms) || 0);
  const t = { id: ++seq, due: clock + ms, ms, fn, args, repeat, seq: seq, cancelled: false };
  timers.push(t);
  return { id: t.id, ref() { return this; }, unref() { return this; }, hasRef: () => true, refresh() { return this; }, [Symbol.toPrimitive]: () => t.id, _t: t };
}
function clearTimer(h) {
  for (const t of timers) if (h && (t === h._t || t.id === h || t.id === Number(h))) t.cancelled = true;
}
const task = (fn) => addTimer(fn, 0, [], false);
g.setTimeout = (fn, ms, ...args) => addTimer(fn, ms, args, false);
g.setInterval = (fn, ms, ...args) => addTimer(fn, ms, args, true);
g.setImmediate = (fn, ...args) => addTimer(fn, 0, args, false);
g.clearTimeout = g.clearInterval = g.clearImmediate = clearTimer;
g.queueMicrotask = (fn) => { then.call(resolved, () => fn()); };
if (typeof g.performance === 'undefined') g.performance = { now: () => clock };

const splitLines = (s) => {
  const ls = s.split(/\r?\n/);
  if (ls.length && ls[ls.length - 1] === '') ls.pop();
  return ls;
};
const stdinBuffer = () => { const b = new StringCtor(input); return b; };

// process.stdin: 'data' then 'end' once somebody listens; read() for 'readable' users.
let stdinScheduled = false, stdinRead = false;
const stdin = emitter({ fd: 0, isTTY: false, readable: true });
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
for (const k of ['on', 'addListener', 'once']) {
  const f = stdin[k];
  stdin[k] = (ev, fn) => { f(ev, fn); if (ev === 'data' || ev === 'end' || ev === 'readable') scheduleStdin(); return stdin; };
}
stdin.setEncoding = (enc) => { stdin._enc = enc || 'utf8'; return stdin; };
stdin.resume = () => { scheduleStdin(); return stdin; };
stdin.pause = () => stdin;
stdin.read = () => { if (stdinRead || !input.length) return null; stdinRead = true; return stdin._enc ? input : stdinBuffer(); };
stdin[Symbol.asyncIterator] = async function* () { if (input.length) yield stdin._enc ? input : stdinBuffer(); };

const stdout = emitter({ fd: 1, isTTY: false, columns: 80, write: (s, enc, cb) => { write(s); if (typeof cb === 'function') cb(); return true; } });
const stderr = emitter({ fd: 2, isTTY: false, write: (s) => writeErr(s) });
const exit = (code) => {
  if (exitCode === null) exitCode = code === undefined ? (process.exitCode ?? 0) : Number(code) || 0;
  throw EXIT;
};
const process = emitter({
  argv: ['node', '/main.js'], env: create(null), platform: 'linux', version: 'v20.0.0', versions: { node: '20.0.0' }, pid: 1, arch: 'x64',
  stdin, stdout, stderr, exit, exitCode: undefined, cwd: () => '/',
  hrtime: Object.assign((prev) => { const ns = clock * 1e6; const s = Math.floor(ns / 1e9), n = ns % 1e9; return prev ? [s - prev[0], n - prev[1]] : [s, n]; }, { bigint: () => BigInt(Math.round(clock * 1e6)) }),
  memoryUsage: () => ({ rss: 0, heapTotal: 0, heapUsed: 0, external: 0, arrayBuffers: 0 }),
  nextTick: (fn, ...args) => { then.call(resolved, () => fn(...args)); },
  uptime: () => clock / 1000,
});

function createInterface(opts) {
  const rl = emitter({ closed: false, terminal: false, line: '', input: (opts && opts.input) || stdin, output: opts && opts.output });
  const lines = splitLines(input);
  let next = 0;
  rl.close = () => { if (!rl.closed) { rl.closed = true; rl.emit('close'); } };
  rl.setPrompt = () => {}; rl.prompt = () => {}; rl.pause = () => rl; rl.resume = () => rl;
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
const readlinePromises = { createInterface: (o) => {
  const rl = createInterface(o);
  const q = rl.question;
  rl.question = (s) => new Promise((ok) => q(s, ok));
  return rl;
} };

const notHere = (what) => () => { const e = new ErrorCtor(what + ' is not available in the sandbox'); e.code = 'EACCES'; throw e; };
const isStdin = (p) => p === 0 || p === '/dev/stdin' || p === '/proc/self/fd/0' || p === 'stdin';
const fs = {
  readFileSync(p, o) {
    if (!isStdin(p)) { const e = new ErrorCtor("ENOENT: no such file or directory, open '" + StringCtor(p) + "'"); e.code = 'ENOENT'; throw e; }
    const enc = typeof o === 'string' ? o : o && o.encoding;
    return enc ? input : stdinBuffer();
  },
  writeSync(fd, s) { if (fd === 1) return write(s), s.length; if (fd === 2) return writeErr(s), s.length; return notHere('writing files')(); },
  writeFileSync(p, s) { if (p === '/dev/stdout' || p === 1) return void write(s); if (p === '/dev/stderr' || p === 2) return void writeErr(s); notHere('writing files')(); },
  existsSync: () => false,
};
for (const k of ['readFile', 'writeFile', 'appendFileSync', 'openSync', 'readdirSync', 'statSync', 'mkdirSync', 'unlinkSync', 'createReadStream', 'createWriteStream']) fs[k] = notHere('fs.' + k);
const modules = {
  fs, readline: { createInterface, promises: readlinePromises }, 'readline/promises': readlinePromises, process, os: { EOL: '\n', cpus: () => [], platform: () => 'linux' },
  util: { inspect: (v) => inspect(v, 1), format: (...a) => format(a), promisify: (f) => (...a) => new Promise((ok, no) => f(...a, (e, v) => (e ? no(e) : ok(v)))) },
  assert: Object.assign((c, m) => { if (!c) throw new ErrorCtor(m || 'Assertion failed'); }, { strictEqual: (a, b, m) => { if (!is(a, b)) throw new ErrorCtor(m || 'Expected values to be strictly equal'); } }),
};
const module = { exports: {}, id: '.', filename: '/main.js', loaded: false };
const require = (name) => {
  name = StringCtor(name).replace(/^node:/, '');
  if (Object.prototype.hasOwnProperty.call(modules, name)) return modules[name];
  const e = new ErrorCtor("Cannot find module '" + name + "' (not available in the sandbox)");
  e.code = 'MODULE_NOT_FOUND';
  throw e;
};
require.main = module;

g.global = g;
g.process = process;
g.require = require;
g.module = module;
g.exports = module.exports;
g.__filename = '/main.js';
g.__dirname = '/';
const log = (...a) => { write(format(a) + '\n'); };
const err = (...a) => { writeErr(format(a) + '\n'); };
g.console = { log, info: log, debug: log, error: err, warn: err, trace: err, dir: (v) => log(v), table: log, group: () => {}, groupEnd: () => {}, time: () => {}, timeEnd: () => {}, assert: (c, ...a) => { if (!c) err('Assertion failed', ...a); } };

const encode = (v) => (v === undefined ? undefined : stringify(v));
define(g, '__r1', { enumerable: false, writable: false, configurable: false, value: freeze({
  // Runs the earliest timer; true while more are due. An exception leaves for the host.
  tick() {
    if (exitCode !== null) return false;
    let best = null;
    for (const t of timers) if (!t.cancelled && (best === null || t.due < best.due || (t.due === best.due && t.seq < best.seq))) best = t;
    if (best === null) { timers.length = 0; return false; }
    clock = best.due;
    if (best.repeat) { best.due = clock + Math.max(1, best.ms); best.seq = ++seq; } else best.cancelled = true;
    try { best.fn.apply(undefined, best.args); } catch (e) { if (e === EXIT) return false; throw e; }
    if (timers.length > 64 && !best.repeat) for (let i = timers.length - 1; i >= 0; i--) if (timers[i].cancelled) timers.splice(i, 1);
    return exitCode === null && timers.some((t) => !t.cancelled);
  },
  // Calls the tested function: a global of that name, module.exports' one, or a method of class Solution.
  call(fn, Solution, name, argsJson) {
    let self;
    const ex = module.exports;
    if (typeof fn !== 'function' && ex) fn = typeof ex === 'function' && (ex.name === name || !ex[name]) ? ex : ex[name];
    if (typeof fn !== 'function' && typeof Solution === 'function' && Solution.prototype && typeof Solution.prototype[name] === 'function') {
      self = new Solution();
      fn = self[name];
    }
    if (typeof fn !== 'function') throw new ErrorCtor('no function named ' + name);
    const r = fn.apply(self, parse(argsJson));
    const done = (v) => { callResult = encode(v); callDone = true; };
    if (r !== null && typeof r === 'object' && typeof r.then === 'function') r.then(done, (e) => { callError = StringCtor((e && e.stack) || e); callDone = true; });
    else done(r);
  },
  state() {
    const s = create(null);
    s.out = out; s.err = errOut; s.truncated = truncated; s.exitCode = exitCode;
    s.callDone = callDone; s.callResult = callResult === undefined ? null : callResult; s.callError = callError;
    return stringify(s);
  },
  isExit: (e) => e === EXIT,
}) });
})();`;
