// The JavaScript sandbox's fast path keeps its guarantees: the prelude builds process and the modules
// on first use, the host asks a synchronous POLL (no program code) between asynchronous runs, and a
// timer handle keeps the timer's record private. Each test still sees a fresh context.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SandboxPool, type Test } from '../sandbox/index.ts';

let pool: SandboxPool;
beforeAll(() => {
  // reuse: any: every program in the one process, so a program that poisons its process is followed
  // there by the next (the replay wall, tests/sandbox-replay.test.ts, would run them apart).
  pool = new SandboxPool({ workers: 1, limits: { timeMs: 300, memoryMb: 48, outputBytes: 1 << 16 }, reuse: 'any' });
});
afterAll(async () => {
  await pool?.destroy();
});

const run = async (code: string, tests: Test[] = [{ input: '', output: 'ok' }]) =>
  (await pool.run({ language: 'javascript', code, tests })).results;
const statuses = async (code: string, tests?: Test[]) => (await run(code, tests)).map((r) => r.status);

describe('JavaScript sandbox: lazy prelude, POLL between runs', () => {
  it('nothing of one test is visible in the next: globals, modules, process, console', async () => {
    const code = `
      const fs = require('fs'), rl = require('readline');
      const clean = !globalThis.leak && !fs.marked && !rl.marked && !process.marked && !process.stdin.marked && !console.marked && !Object.prototype.polluted;
      globalThis.leak = fs.marked = rl.marked = process.marked = process.stdin.marked = console.marked = Object.prototype.polluted = true;
      console.log(clean ? 'ok' : 'leaked');`;
    expect(
      await statuses(code, [
        { input: '', output: 'ok' },
        { input: '', output: 'ok' },
        { input: '', output: 'ok' },
      ]),
    ).toEqual(['pass', 'pass', 'pass']);
    expect(await statuses(code)).toEqual(['pass']);
  });

  it('process is one object however it is reached, and assignable', async () => {
    expect(
      await statuses(
        `console.log(process === require('process') && process === require('node:process') && process.stdin === process.stdin && typeof process.exit === 'function' ? 'ok' : 'no')`,
      ),
    ).toEqual(['pass']);
    expect(
      await statuses(
        `const d = Object.getOwnPropertyDescriptor(globalThis, 'process'); process; const e = Object.getOwnPropertyDescriptor(globalThis, 'process'); console.log(d.enumerable && e.writable && 'value' in e ? 'ok' : 'no')`,
      ),
    ).toEqual(['pass']);
    expect(await statuses(`process = { x: 1 }; console.log(process.x === 1 ? 'ok' : 'no')`)).toEqual(['pass']);
    expect(await statuses(`var process; console.log(typeof process.stdout.write === 'function' ? 'ok' : 'no')`)).toEqual(['pass']);
  });

  it('console, fs, process and the streams are ordinary objects', async () => {
    const code = `const fs = require('fs'), objs = [console, fs, process, process.stdin, process.stdout, require('readline').createInterface({ input: process.stdin })];
      const plain = objs.every((o) => o instanceof Object && typeof o.hasOwnProperty === 'function' && String(o) === '[object Object]');
      const own = console.hasOwnProperty('log') && Object.keys(fs).includes('readFileSync') && typeof process.stdout.on === 'function' && !process.hasOwnProperty('on');
      console.log(plain && own ? 'ok' : 'no');`;
    expect(await statuses(code)).toEqual(['pass']);
  });

  it('timers that microtasks set after the last timer still run', async () => {
    expect(await statuses(`setTimeout(() => Promise.resolve().then(() => setTimeout(() => console.log('ok'), 5)), 5);`)).toEqual(['pass']);
    expect(await statuses(`Promise.resolve().then(() => setImmediate(() => console.log('ok')));`)).toEqual(['pass']);
  });

  it('emitters chain and keep their own listeners', async () => {
    const code = `let d = ''; process.stdin.setEncoding('utf8'); process.stdin.on('data', (c) => (d += c)).on('end', () => console.log(d.trim()));
      const rl = require('readline').createInterface({ input: process.stdin }); let n = 0; rl.on('line', () => n++).on('close', () => console.log(n));`;
    expect(await statuses(code, [{ input: 'a\nb', output: 'a\nb\n2' }])).toEqual(['pass']);
    expect(
      await statuses(
        `const o = process.stdout; o.once('x', () => console.log('ok')); o.emit('x'); o.emit('x'); console.log(o.listenerCount('x'))`,
        [{ input: '', output: 'ok\n0' }],
      ),
    ).toEqual(['pass']);
  });

  it('a timer handle does not expose the record the host reads synchronously', async () => {
    const code = `const h = setTimeout(() => {}, 10); console.log(Object.keys(h).join() === 'id' && !('_t' in h) && typeof h.ref === 'function' && +h === h.id ? 'ok' : 'no');`;
    expect(await statuses(code)).toEqual(['pass']);
    // Getters a program puts on what it can reach do not run in the host's synchronous reads.
    const hostile = `const h = setTimeout(() => {}, 10); for (const k of ['cancelled', 'due', 'seq']) Object.defineProperty(h, k, { get() { (function f() { Promise.resolve().then(f); })(); return false; } });
      Object.defineProperty(Object.prototype, 'cancelled', { get() { (function f() { Promise.resolve().then(f); })(); return false; } });
      clearTimeout(h); console.log('ok');`;
    expect(await statuses(hostile)).toEqual(['pass']);
  });

  it('the exit code is a number before the host reads it', async () => {
    expect(await statuses(`process.exitCode = { valueOf() { return 3; }, toJSON() { for (;;); } }; process.exit();`)).toEqual(['error']);
    expect((await run(`process.exitCode = '2'; process.exit();`))[0].detail).toMatch(/exit code 2/);
    expect(await statuses(`console.log('ok'); process.exit()`)).toEqual(['pass']);
  });

  it('a microtask flood started by a timer or by the tested function is a timeout, and the worker goes on', async () => {
    expect(await statuses(`setTimeout(() => { (function f() { Promise.resolve().then(f); })(); }, 1);`)).toEqual(['timeout']);
    expect(
      await statuses(`function f() { (function g() { Promise.resolve().then(g); })(); return 1; }`, [{ fn: 'f', args: [], expected: 1 }]),
    ).toEqual(['timeout']);
    expect(await statuses(`console.log('ok')`)).toEqual(['pass']);
  });

  it('the host entry cannot be replaced or extended', async () => {
    expect(
      await statuses(
        `'use strict'; try { __r1.x = 1; console.log('no'); } catch { console.log(typeof __r1 === 'function' && Object.isFrozen(__r1) ? 'ok' : 'no'); }`,
      ),
    ).toEqual(['pass']);
    expect(await statuses(`let __r1 = () => '{"out":"ok\\\\n"}';`)).toEqual(['error']);
  });
});
