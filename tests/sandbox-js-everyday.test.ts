// Everyday JavaScript programs work in the sandbox as they do under Node: timers, Date, Math.random,
// recursion to a modest depth, JSON, reading standard input in the usual ways, and FinalizationRegistry
// and WeakRef (issue 30: they were removed, and an honest program using them got a ReferenceError).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SandboxPool } from '../sandbox/index.ts';

let pool: SandboxPool;
beforeAll(() => {
  pool = new SandboxPool({ workers: 1, isolation: 'process', notice: () => {} });
});
afterAll(() => pool.destroy());

const PROGRAMS: Record<string, { code: string; input?: string; output: string }> = {
  'timers in order, with arguments, cleared and repeating': {
    code: `const out = [];
setTimeout(() => out.push('b'), 20);
setTimeout((x) => out.push(x), 10, 'a');
const never = setTimeout(() => out.push('never'), 15);
clearTimeout(never);
let n = 0;
const tick = setInterval(() => { if (++n === 3) clearInterval(tick); }, 5);
setImmediate(() => out.push('immediate'));
Promise.resolve().then(() => out.push('micro'));
setTimeout(() => console.log(out.join(','), n), 50);`,
    output: 'micro,immediate,a,b 3',
  },
  'Date and performance.now': {
    code: `const d = new Date(Date.UTC(2024, 1, 29, 12));
console.log(d.toISOString(), d.getUTCDay(), typeof Date.now(), Date.now() > 1.6e12, performance.now() >= 0);`,
    output: '2024-02-29T12:00:00.000Z 4 number true true',
  },
  'Math.random within [0, 1)': {
    code: `let ok = true; for (let i = 0; i < 1000; i++) { const r = Math.random(); ok = ok && r >= 0 && r < 1; } console.log(ok);`,
    output: 'true',
  },
  'recursion 5,000 deep': {
    code: `const depth = (n) => (n === 0 ? 0 : 1 + depth(n - 1)); console.log(depth(5000));`,
    output: '5000',
  },
  'JSON round trip': {
    code: `const v = JSON.parse(require('fs').readFileSync(0, 'utf8')); v.sum = v.xs.reduce((a, b) => a + b, 0); console.log(JSON.stringify(v));`,
    input: '{"xs":[1,2,3.5],"name":"ü"}',
    output: '{"xs":[1,2,3.5],"name":"ü","sum":6.5}',
  },
  'stdin through readline': {
    code: `const rl = require('readline').createInterface({ input: process.stdin }); const ls = []; rl.on('line', (l) => ls.push(l)); rl.on('close', () => console.log(ls.reverse().join(' ')));`,
    input: 'a\nb\nc\n',
    output: 'c b a',
  },
  'stdin through process.stdin events': {
    code: `let s = ''; process.stdin.setEncoding('utf8'); process.stdin.on('data', (c) => (s += c)); process.stdin.on('end', () => console.log(s.trim().split(/\\s+/).map(Number).reduce((a, b) => a + b)));`,
    input: '1 2\n3\n',
    output: '6',
  },
  'async/await with a timer': {
    code: `const wait = (ms) => new Promise((ok) => setTimeout(ok, ms)); (async () => { await wait(10); console.log('waited'); })();`,
    output: 'waited',
  },
  'WeakRef and FinalizationRegistry': {
    code: `const target = { v: 1 };
const ref = new WeakRef(target);
const seen = [];
const registry = new FinalizationRegistry((held) => seen.push(held));
const token = {};
registry.register({ garbage: true }, 'held', token);
console.log(ref.deref() === target, registry.unregister(token), registry.unregister(token), typeof seen.length, Object.prototype.toString.call(registry));`,
    output: 'true true false number [object FinalizationRegistry]',
  },
};

describe('everyday JavaScript programs', () => {
  it.each(Object.entries(PROGRAMS))(
    '%s',
    async (_, p) => {
      const r = await pool.run({ language: 'javascript', code: p.code, tests: [{ input: p.input ?? '', output: p.output }] });
      expect(r.results).toEqual([{ status: 'pass' }]);
    },
    30_000,
  );

  it('a FinalizationRegistry callback runs during its own test once its targets are collected', async () => {
    const code = `let n = 0;
const r = new FinalizationRegistry(() => { n++; });
for (let k = 0; k < 5; k++) { let junk = []; for (let i = 0; i < 20000; i++) { const o = { i }; r.register(o, i); junk.push(o); } junk = null; let a = []; for (let i = 0; i < 200000; i++) a.push({ i }); }
let k = 0;
const t = setInterval(() => { let a = []; for (let i = 0; i < 20000; i++) a.push({ i }); if (++k === 20) { clearInterval(t); console.log(n > 0 ? 'collected' : 'none yet'); } }, 1);`;
    const r = await pool.run({ language: 'javascript', code, tests: [{ input: '', output: 'collected' }] });
    expect(r.results).toEqual([{ status: 'pass' }]);
  }, 30_000);
});
