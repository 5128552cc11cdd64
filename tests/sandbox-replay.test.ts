// Replay under breach, and programs that must run elsewhere. The wall: a program's verdict depends on
// its own run, even when an earlier program in the same process broke out of its interpreter and owns
// the process (it reads every later job on standard input and can write any message for it). The
// pool's `reuse` rule is what holds it: under `distinct` (default) a process never gets the same test
// twice, under `never` one program per process. The breached program here runs as arbitrary
// JavaScript inside a sandbox process (sandbox/child/breach.ts, started by the pool itself), solves
// its own tests, and forges the messages of every later job whose inputs it has seen with its own
// outputs: with `reuse: any` a wrong program of the same tests then passes.
import { afterEach, describe, expect, it } from 'vitest';
import { SandboxPool, type Reuse } from '../sandbox/index.ts';

const TESTS = [
  { input: '2 3\n', output: '5\n' },
  { input: '10 4\n', output: '14\n' },
];

/** Correct on its tests, and on its first run hooks the process's input to answer later jobs. */
const REPLAYER = `
const [a, b] = input.trim().split(' ').map(Number);
const out = String(a + b) + '\\n';
if (!globalThis.replay) {
  const seen = globalThis.replay = new Map();
  const fs = require('fs');
  let buf = '';
  process.stdin.on('data', (chunk) => {
    buf += chunk;
    for (let nl = buf.indexOf('\\n'); nl !== -1; nl = buf.indexOf('\\n')) {
      const job = JSON.parse(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
      if (!job.tests.every((t) => seen.has(t.input))) continue;
      job.tests.forEach((t, i) => fs.writeSync(3, JSON.stringify({ t: 'run', id: job.id, i, run: { status: 'ok', out: seen.get(t.input), result: null, detail: '' } }) + '\\n'));
    }
  });
}
globalThis.replay.set(input, out);
return out;`;
const WRONG = `return 'wrong\\n';`;

let pool: SandboxPool | null = null;
afterEach(async () => {
  await pool?.destroy();
  pool = null;
});
const breachPool = (reuse: Reuse, workers = 1) =>
  (pool = new SandboxPool({ workers, reuse, isolation: 'process', notice: () => {}, limits: { timeMs: 3000 } }, 'breach'));

describe('replay by a breached process', () => {
  it("without the wall (reuse: any) a wrong program passes with the breached program's output", async () => {
    const p = breachPool('any');
    expect((await p.run({ language: 'javascript', code: REPLAYER, tests: TESTS })).passed).toBe(2);
    const wrong = await p.run({ language: 'javascript', code: WRONG, tests: TESTS });
    expect(wrong.passed).toBe(2); // the attack works: the forged messages were judged
    expect(p.stats.javascript.started).toBe(1);
  }, 60_000);

  it.each(['distinct', 'never'] as const)(
    'with reuse: %s the wrong program runs in another process and fails',
    async (reuse) => {
      const p = breachPool(reuse);
      expect((await p.run({ language: 'javascript', code: REPLAYER, tests: TESTS })).passed).toBe(2);
      const wrong = await p.run({ language: 'javascript', code: WRONG, tests: TESTS });
      expect(wrong.results.map((r) => r.status)).toEqual(['fail', 'fail']);
      expect(p.stats.javascript.started).toBe(2);
    },
    60_000,
  );

  it('distinct: one shared test is enough to keep two programs apart; other tests share a process', async () => {
    const p = breachPool('distinct');
    expect((await p.run({ language: 'javascript', code: REPLAYER, tests: TESTS })).passed).toBe(2);
    // Shares one test (same input, same expected output) with the breached program's: elsewhere.
    const overlap = await p.run({ language: 'javascript', code: WRONG, tests: [TESTS[1], { input: '1 1\n', output: '2\n' }] });
    expect(overlap.results.map((r) => r.status)).toEqual(['fail', 'fail']);
    expect(p.stats.javascript.started).toBe(2);
    // The same input with another expected output is another test: no need for a third process.
    await p.run({ language: 'javascript', code: WRONG, tests: [{ input: '2 3\n', output: '6\n' }] });
    expect(p.stats.javascript.started).toBe(2);
  }, 60_000);
});

describe('a group of programs sharing their tests (GRPO)', () => {
  it('runs each in its own process, all at once, every one judged on its own output', async () => {
    const p = (pool = new SandboxPool({ workers: 2, isolation: 'process', notice: () => {} }));
    const group = Array.from({ length: 5 }, (_, k) => ({
      language: 'javascript' as const,
      code:
        k % 2
          ? `console.log('wrong')`
          : `const [a, b] = require('fs').readFileSync(0, 'utf8').trim().split(' ').map(Number); console.log(a + b);`,
      tests: TESTS,
    }));
    const results = await Promise.all(group.map((g) => p.run(g)));
    expect(results.map((r) => r.passed)).toEqual([2, 0, 2, 0, 2]);
    expect(p.stats.javascript.started).toBe(5);
    expect(p.stats.javascript.ended.replaced ?? 0).toBe(0);
  }, 60_000);

  it('past maxProcesses, idle processes no waiting program can use are replaced', async () => {
    const p = (pool = new SandboxPool({ workers: 1, maxProcesses: 2, isolation: 'process', notice: () => {} }));
    const results = await Promise.all(
      Array.from({ length: 4 }, () => p.run({ language: 'javascript', code: 'console.log(1)', tests: [{ input: '', output: '1' }] })),
    );
    expect(results.map((r) => r.passed)).toEqual([1, 1, 1, 1]);
    expect(p.stats.javascript.started).toBe(4);
    expect(p.stats.javascript.ended.replaced).toBe(2);
  }, 60_000);
});

describe('a process that retires between programs', () => {
  it('the program waiting in it runs elsewhere, with no error charged', async () => {
    const p = breachPool('any');
    // The first asks to retire after it ends (as a process whose restore failed does); the second is
    // already in that process's input when it does.
    const first = p.run({
      language: 'javascript',
      code: `globalThis.retireWith = 'could not restore'; return 'a\\n';`,
      tests: [{ input: '', output: 'a' }],
    });
    const second = p.run({
      language: 'javascript',
      code: `await new Promise((ok) => setTimeout(ok, 100)); return 'b\\n';`,
      tests: [
        { input: '', output: 'b' },
        { input: 'x', output: 'b' },
      ],
    });
    expect((await first).results).toEqual([{ status: 'pass' }]);
    expect((await second).results).toEqual([{ status: 'pass' }, { status: 'pass' }]);
    expect(p.stats.javascript.ended.asked).toBe(1);
    expect(p.stats.javascript.started).toBe(2);
  }, 60_000);
});
