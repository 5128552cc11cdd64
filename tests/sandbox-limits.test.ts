// Limits that count everything a process does, read by the host rather than reported by the process.
// Walls, each tried by a breached process (arbitrary JavaScript inside a sandbox process,
// sandbox/child/breach.ts) or a hostile program:
//   - a process that uses CPU while it has no program is retired (idle CPU read from /proc);
//   - a process whose resident memory does not come back near its start-up size after a program
//     takes no further program (RSS read from /proc);
//   - JavaScript: a flattened 512 MB string does not pass a 128 MB cap, and the next program in that
//     isolate is not broken by it (the isolate's whole heap is measured after each run);
//   - JavaScript: a FinalizationRegistry callback cannot outlive its test.
// Where the attack can be shown working without the wall (a process outside the pool's checks, a bare
// isolate), it is.
import { createRequire } from 'node:module';
import { afterEach, describe, expect, it } from 'vitest';
import { SandboxPool, resolveLimits, layersFor } from '../sandbox/index.ts';
import { SandboxProcess, treeUsage } from '../sandbox/process.ts';

const linux = process.platform === 'linux';
let pool: SandboxPool | null = null;
afterEach(async () => {
  await pool?.destroy();
  pool = null;
});
const sleep = (ms: number) => new Promise((ok) => setTimeout(ok, ms));
const breachPool = () => (pool = new SandboxPool({ workers: 1, reuse: 'any', isolation: 'process', notice: () => {} }, 'breach'));

/** A breach process outside any pool: nothing checks it between programs. */
async function bareBreach(): Promise<SandboxProcess> {
  const p = new SandboxProcess('javascript', layersFor('process'), resolveLimits({ timeMs: 3000 }), () => {}, 'breach');
  await p.ready;
  return p;
}
const pidOf = (p: SandboxProcess) => (p as unknown as { child: { pid: number } }).child.pid;

const SPIN_BETWEEN = `setInterval(() => { const end = Date.now() + 95; while (Date.now() < end); }, 100); return 'ok\\n';`;
const KEEP_400MB = `globalThis.keep = Buffer.alloc(400 * 2 ** 20, 1); return 'ok\\n';`;

describe.skipIf(!linux)('a breached process between programs', () => {
  it('spinning with no program: keeps a core busy outside the pool; the pool retires it', async () => {
    const bare = await bareBreach();
    try {
      expect(await bare.run({ id: 1, code: SPIN_BETWEEN, tests: [], limits: resolveLimits({}) }, [{ input: '', output: 'ok' }])).toEqual([
        { status: 'pass' },
      ]);
      const before = treeUsage(pidOf(bare))!.cpuMs;
      await sleep(1000);
      expect(treeUsage(pidOf(bare))!.cpuMs - before).toBeGreaterThan(150); // the attack: CPU with no program (a loaded machine gives it less than a core)
    } finally {
      bare.kill('test over');
    }
    const p = breachPool();
    expect((await p.run({ language: 'javascript', code: SPIN_BETWEEN, tests: [{ input: '', output: 'ok' }] })).passed).toBe(1);
    for (let t = 0; t < 40 && !p.stats.javascript.ended['idle-cpu']; t++) await sleep(100);
    expect(p.stats.javascript.ended['idle-cpu']).toBe(1);
    // The next program gets a fresh process and passes.
    expect((await p.run({ language: 'javascript', code: `return 'next\\n';`, tests: [{ input: '', output: 'next' }] })).passed).toBe(1);
    expect(p.stats.javascript.started).toBe(2);
  }, 60_000);

  it('an idle process that does nothing is kept', async () => {
    const p = breachPool();
    await p.run({ language: 'javascript', code: `return 'ok\\n';`, tests: [{ input: '', output: 'ok' }] });
    await sleep(1500);
    await p.run({ language: 'javascript', code: `return 'ok\\n';`, tests: [{ input: 'x', output: 'ok' }] });
    expect(p.stats.javascript.started).toBe(1);
    expect(p.stats.javascript.ended).toEqual({});
  }, 60_000);

  it('holding 400 MB after its program: stays resident outside the pool; the pool retires it', async () => {
    const bare = await bareBreach();
    try {
      const base = treeUsage(pidOf(bare))!.rssBytes;
      await bare.run({ id: 1, code: KEEP_400MB, tests: [], limits: resolveLimits({}) }, [{ input: '', output: 'ok' }]);
      await sleep(200);
      expect(treeUsage(pidOf(bare))!.rssBytes - base).toBeGreaterThan(350 * 2 ** 20); // the attack: memory kept
    } finally {
      bare.kill('test over');
    }
    const p = breachPool();
    expect((await p.run({ language: 'javascript', code: KEEP_400MB, tests: [{ input: '', output: 'ok' }] })).passed).toBe(1);
    expect((await p.run({ language: 'javascript', code: `return 'next\\n';`, tests: [{ input: '', output: 'next' }] })).passed).toBe(1);
    expect(p.stats.javascript.ended.memory).toBe(1);
    expect(p.stats.javascript.started).toBe(2);
  }, 60_000);
});

describe.skipIf(!linux)('per-process peak memory of honest programs', () => {
  it('JavaScript programs using up to half the cap: RSS after each stays under the retirement line, none retired', async () => {
    const memoryMb = 128;
    const p = (pool = new SandboxPool({ workers: 1, isolation: 'process', notice: () => {}, limits: { memoryMb } }));
    let peak = 0,
      baseline = 0;
    for (let k = 0; k < 12; k++) {
      const code = `const a = []; for (let i = 0; i < 1_000_000; i++) a.push({ i, k: ${k} }); console.log(a.length);`; // ~60 MB of objects
      expect((await p.run({ language: 'javascript', code, tests: [{ input: String(k), output: '1000000' }] })).passed).toBe(1);
      const [m] = p.memory('javascript');
      peak = Math.max(peak, m.rssBytes);
      baseline = m.baselineBytes!;
    }
    const mb = (b: number) => Math.round(b / 2 ** 20);
    console.log(`JavaScript process: ${mb(baseline)} MB at start-up, at most ${mb(peak)} MB after each of 12 programs of ~60 MB`);
    expect(peak).toBeLessThan(baseline + (memoryMb + 96) * 2 ** 20);
    expect(p.stats.javascript.started).toBe(1);
    expect(p.stats.javascript.ended).toEqual({});
  }, 60_000);
});

describe('JavaScript: a flattened 512 MB string', () => {
  const BIG = `let s = 'x'.repeat(2 ** 29 - 100); console.log(s.indexOf('y'), s.length);`;

  it('without the heap check: V8 lets it past the isolate cap, leaving the isolate over its limit', async () => {
    const ivm = createRequire(import.meta.url)('isolated-vm') as typeof import('isolated-vm');
    const isolate = new ivm.Isolate({ memoryLimit: 128 });
    try {
      const context = isolate.createContextSync();
      expect(
        await isolate
          .compileScriptSync(`let s = 'x'.repeat(2 ** 29 - 100); s.indexOf('y') + ' ' + s.length`)
          .run(context, { timeout: 5000 }),
      ).toBe(`-1 ${2 ** 29 - 100}`);
      expect(isolate.getHeapStatisticsSync().used_heap_size).toBeGreaterThan(512 * 2 ** 20);
    } finally {
      isolate.dispose();
    }
  }, 30_000);

  it('is a memory verdict under a 128 MB cap, and the tests and programs after it pass', async () => {
    const p = (pool = new SandboxPool({ workers: 1, isolation: 'process', notice: () => {}, limits: { memoryMb: 128 } }));
    const code = `const what = require('fs').readFileSync(0, 'utf8');
if (what === 'big') { ${BIG} } else if (what === 'big, then a timer') { ${BIG} setTimeout(() => console.log('after'), 1); } else console.log('small');`;
    const big = await p.run({
      language: 'javascript',
      code,
      tests: [
        { input: 'big', output: '-1 536870812' },
        { input: 'x', output: 'small' },
        { input: 'big, then a timer', output: '-1 536870812\nafter' },
        { input: 'y', output: 'small' },
      ],
    });
    expect(big.results.map((r) => r.status)).toEqual(['memory', 'pass', 'memory', 'pass']);
    expect(
      (await p.run({ language: 'javascript', code: `console.log([1, 2, 3].join(','))`, tests: [{ input: '', output: '1,2,3' }] })).passed,
    ).toBe(1);
    // The same process goes on, unless the memory-after-program wall retired it because its RSS had
    // not yet come down from the 512 MB strings (seen on a loaded machine): one restart at most.
    expect(p.stats.javascript.started).toBeLessThanOrEqual(2);
  }, 60_000);
});

describe('JavaScript: finaliser bombs end within their test', () => {
  // Garbage with registrations, then enough allocation for the collector to run, then timers.
  const churn = `for (let k = 0; k < 5; k++) { let junk = []; for (let i = 0; i < 20000; i++) { const o = { i }; r.register(o, i); junk.push(o); } junk = null; let a = []; for (let i = 0; i < 200000; i++) a.push({ i }); }`;
  // [program, the verdicts it may end in]: the second's garbage grows with every callback, so it may
  // also reach the memory cap first; either way it ends within its own test.
  const BOMBS: Record<string, [string, string[]]> = {
    'a callback that never returns': [
      `const r = new FinalizationRegistry(() => { for (;;) {} }); ${churn} setTimeout(() => console.log('done'), 5);`,
      ['timeout', 'fail'],
    ],
    'callbacks that register more garbage': [
      `const r = new FinalizationRegistry((h) => { for (let i = 0; i < 1000; i++) r.register({ h }, h); }); ${churn} setTimeout(() => console.log('done'), 5);`,
      ['timeout', 'fail', 'memory'],
    ],
  };
  it.each(Object.entries(BOMBS))(
    '%s: not a pass, within its test, and the next program is untouched',
    async (_, [code, endings]) => {
      const p = (pool = new SandboxPool({ workers: 1, isolation: 'process', notice: () => {}, limits: { timeMs: 3000 } }));
      const r = await p.run({ language: 'javascript', code, tests: [{ input: '', output: 'not this' }] });
      expect(endings).toContain(r.results[0].status);
      // Garbage of the bomb's context may be collected now: its callbacks must not run here.
      const t = performance.now();
      const next = await p.run({
        language: 'javascript',
        code: `let a = []; for (let i = 0; i < 300000; i++) a.push({ i }); setTimeout(() => console.log(a.length), 1);`,
        tests: [
          { input: '', output: '300000' },
          { input: 'x', output: '300000' },
        ],
      });
      expect(next.results).toEqual([{ status: 'pass' }, { status: 'pass' }]);
      expect(performance.now() - t).toBeLessThan(3000);
    },
    60_000,
  );
});
