// The JavaScript realm of a sandbox process, closed before the first program runs. These are the
// in-language layer (the process's permission model and the OS namespaces are the walls): capabilities
// no program needs are removed, and the objects a breakout would first reach for are frozen, so a
// getter planted on Object.prototype or a stack-trace hook set from inside cannot be installed.
// (Error stays writable: pyodide sets Error.stackTraceLimit.)
const denied = function denied(): never {
  throw new Error('not available in the sandbox');
};

export function hardenRealm(): void {
  const proc = process as unknown as Record<string, unknown>;
  // No addon loading (the JavaScript process needs --allow-addons for isolated-vm, and Node 20 lets
  // an allowed process dlopen any file), no signals, no internal bindings.
  for (const key of [
    'dlopen',
    'kill',
    '_kill',
    'binding',
    '_linkedBinding',
    'abort',
    'chdir',
    'setuid',
    'setgid',
    'seteuid',
    'setegid',
    'setgroups',
    'initgroups',
    'getBuiltinModule',
    '_debugProcess',
  ]) {
    if (key in proc) Object.defineProperty(process, key, { value: denied, writable: false, configurable: false });
  }
  // No new code from strings in this realm (the programs' own code runs in isolates or in Python).
  for (const f of [function () {}, async function () {}, function* () {}, async function* () {}]) {
    Object.defineProperty(Object.getPrototypeOf(f), 'constructor', { value: denied, writable: false, configurable: false });
  }
  Object.defineProperty(globalThis, 'eval', { value: denied, writable: false, configurable: false });
  Object.defineProperty(Error, 'prepareStackTrace', { value: undefined, writable: false, configurable: false });
  // Sealed, not frozen: no property can be added (a planted getter) or turned into an accessor, while
  // assigning an own property over an inherited one still works (pyodide sets `x.constructor`; with a
  // frozen Object.prototype that assignment throws).
  for (const o of [
    Object.prototype,
    Function.prototype,
    Array.prototype,
    Error.prototype,
    Promise.prototype,
    Object,
    Function,
    Error,
    Reflect,
    JSON,
  ])
    Object.seal(o);
}
