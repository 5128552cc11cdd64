// Sandbox benchmark: short JavaScript and Python programs with a few stdin/stdout tests each, run
// through one SandboxPool on all cores. Reports test executions per second (one execution = one
// test in a fresh context), programs per second and the p50/p99 latency of a program (submission to
// result, with a window of 2 programs per worker in flight). Worker start-up (pyodide loads in
// seconds) is paid before the clock starts. Bar: 1,500 JS and 300 Python executions/s on 2 cores in
// the default setting; an infinite loop costs its time limit and no more.
//
// Workloads: `distinct` programs of different problems (every test differs: the common case for the
// replay wall, which never gives one process the same test twice), and `groups`: GRPO's shape, batches
// of 16 prompts x 8 programs submitted at once, the 8 of a prompt sharing their tests, where the wall
// needs 8 processes per prompt; that one is measured under each `reuse` (distinct, the default; any, no
// wall; never, one program per process) so the wall's cost reads off the lines.
import { availableParallelism } from 'node:os';
import type { BenchOptions } from '../commands/bench.ts';
import { SandboxPool, layersFor, type Program, type Reuse } from '../../../sandbox/index.ts';

/** The languages the bench has workloads for (its programs are written per language). */
type Benched = 'javascript' | 'python';
type Task = { make: (lang: Benched, i: number) => string; cases: (i: number) => { input: string; output: string }[] };

// Each program differs a little (a constant in it), so no cache can serve a later one, and every test
// of program i has i in its input: programs of different i are different problems.
const TASKS: Task[] = [
  {
    make: (l, i) =>
      l === 'javascript'
        ? `const [a, b] = require('fs').readFileSync(0, 'utf8').trim().split(/\\s+/).map(Number);\nconsole.log(a + b + ${i} - ${i});`
        : `a, b = map(int, input().split())\nprint(a + b + ${i} - ${i})`,
    cases: (i) =>
      [
        [1, 2 + i],
        [i, 7],
        [-3, i],
      ].map(([a, b]) => ({ input: `${a} ${b}\n`, output: `${a + b}\n` })),
  },
  {
    make: (l, i) =>
      l === 'javascript'
        ? `const rl = require('readline').createInterface({ input: process.stdin });\nconst xs = [];\nrl.on('line', (l) => xs.push(Number(l)));\nrl.on('close', () => console.log(Math.max(...xs.slice(1)) + ${i % 3} - ${i % 3}));`
        : `n = int(input())\nxs = [int(input()) for _ in range(n)]\nprint(max(xs) + ${i % 3} - ${i % 3})`,
    cases: (i) =>
      [
        [3, 1, 4, -i],
        [i, 2, 9, 5],
        [-1, -7, -i],
      ].map((xs) => ({ input: `${xs.length}\n${xs.join('\n')}\n`, output: `${Math.max(...xs)}\n` })),
  },
  {
    make: (l, i) =>
      l === 'javascript'
        ? `const s = require('fs').readFileSync(0, 'utf8').trim();\nlet r = '';\nfor (let k = s.length - 1; k >= 0; k--) r += s[k];\nconsole.log(r); // ${i}`
        : `s = input().strip()\nprint(s[::-1])  # ${i}`,
    cases: (i) => [`hello${i}`, `abc${i}`, `racecar${i}`].map((s) => ({ input: s + '\n', output: [...s].reverse().join('') + '\n' })),
  },
  {
    // The second number of the input is the problem's tag (read and ignored).
    make: (l, i) =>
      l === 'javascript'
        ? `const n = Number(require('fs').readFileSync(0, 'utf8').trim().split(' ')[0]);\nlet f = [0, 1];\nfor (let k = 2; k <= n; k++) f.push(f[k - 1] + f[k - 2]);\nconsole.log(f[n] + ${i} * 0);`
        : `n = int(input().split()[0])\na, b = 0, 1\nfor _ in range(n): a, b = b, a + b\nprint(a + ${i} * 0)`,
    cases: (i) =>
      [10, 20, 5 + (i % 10)].map((n) => {
        let a = 0,
          b = 1;
        for (let k = 0; k < n; k++) [a, b] = [b, a + b];
        return { input: `${n} ${i}\n`, output: `${a}\n` };
      }),
  },
];

/** `n` programs; with `group` > 1, each run of `group` consecutive programs solves one problem (the
 * same tests), as the G completions of one GRPO prompt do. `from` offsets the problems. */
export function benchPrograms(language: Benched, n: number, group = 1, from = 0): Program[] {
  return Array.from({ length: n }, (_, k) => {
    const i = from + Math.floor(k / group),
      t = TASKS[i % TASKS.length];
    return { language, code: t.make(language, i), tests: t.cases(i) };
  });
}

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};

/** Runs the programs with `window` in flight; latencies of each and the wall time. */
async function runAll(pool: SandboxPool, programs: Program[], window: number) {
  const latencies: number[] = [];
  let next = 0,
    passed = 0,
    executions = 0;
  const t0 = performance.now();
  const lane = async () => {
    while (next < programs.length) {
      const p = programs[next++];
      const t = performance.now();
      const r = await pool.run(p);
      latencies.push(performance.now() - t);
      passed += r.passed;
      executions += r.total;
    }
  };
  await Promise.all(Array.from({ length: window }, lane));
  return { seconds: (performance.now() - t0) / 1000, latencies, passed, executions };
}

/** GRPO's shape: batches of `prompts` x `group` programs submitted at once, each batch after the last. */
async function runGroups(pool: SandboxPool, language: Benched, batches: number, prompts: number, group: number, from: number) {
  let passed = 0,
    executions = 0;
  const t0 = performance.now();
  for (let b = 0; b < batches; b++) {
    const results = await Promise.all(benchPrograms(language, prompts * group, group, from + b * prompts).map((p) => pool.run(p)));
    for (const r of results) {
      passed += r.passed;
      executions += r.total;
    }
  }
  return { seconds: (performance.now() - t0) / 1000, passed, executions };
}

export async function run(opts: BenchOptions): Promise<Record<string, unknown>[]> {
  const workers = opts.workers !== undefined ? Number(opts.workers) : availableParallelism();
  const counts = { javascript: opts.quick ? 200 : 2000, python: opts.quick ? 30 : 300 };
  const bars = { javascript: 1500, python: 300 };
  const timeMs = 500;
  const lines: Record<string, unknown>[] = [];
  const os = layersFor('standard').os;
  // Each configuration of walls in turn, so the cost of the os layer reads off two lines.
  const configs = [{ isolation: 'process' as const }, ...(os ? [{ isolation: 'strict' as const }] : [])];
  for (const { isolation } of configs) {
    const pool = new SandboxPool({ workers, limits: { timeMs }, isolation, notice: () => {} });
    const layers = pool.layers.os ? 'process+os' : 'process';
    try {
      for (const language of ['javascript', 'python'] as const) {
        // Start every process (pyodide loads once per process) before the clock.
        const t = performance.now();
        await Promise.all(benchPrograms(language, 2 * workers, 1, 1_000_000).map((p) => pool.run(p)));
        const warmup = (performance.now() - t) / 1000;
        const programs = benchPrograms(language, counts[language]);
        const before = { ...pool.stats[language], ended: { ...pool.stats[language].ended } };
        const r = await runAll(pool, programs, 2 * workers);
        lines.push({
          bench: 'sandbox',
          language,
          layers,
          reuse: pool.reuse,
          workload: 'distinct',
          workers,
          programs: programs.length,
          tests_per_program: 3,
          executions: r.executions,
          passed: r.passed,
          seconds: Number(r.seconds.toFixed(3)),
          executions_per_s: Math.round(r.executions / r.seconds),
          programs_per_s: Math.round(programs.length / r.seconds),
          p50_ms: Number(quantile(r.latencies, 0.5).toFixed(2)),
          p99_ms: Number(quantile(r.latencies, 0.99).toFixed(2)),
          bar_executions_per_s: bars[language],
          warmup_seconds: Number(warmup.toFixed(2)),
          processes_started: pool.stats[language].started - before.started,
          processes_ended: diff(pool.stats[language].ended, before.ended),
        });
      }
      // An infinite loop should cost its time limit and no more.
      for (const language of ['javascript', 'python'] as const) {
        const t = performance.now();
        const r = await pool.run({
          language,
          code: language === 'javascript' ? 'while (true) {}' : 'while True: pass',
          tests: [{ input: '', output: '' }],
        });
        lines.push({
          bench: 'sandbox',
          language,
          layers,
          case: 'infinite loop',
          time_limit_ms: timeMs,
          status: r.results[0].status,
          ms: Math.round(performance.now() - t),
        });
      }
    } finally {
      await pool.destroy();
    }
  }
  // GRPO-shaped batches under each reuse rule, with every layer this machine has. The first batch
  // starts the processes the rule needs (reported as its own line); the timed ones after it are the
  // steady state of a training run, whose processes persist from step to step.
  const group = 8,
    prompts = 16;
  const timed: Record<Reuse, Record<Benched, number>> = {
    any: { javascript: opts.quick ? 1 : 4, python: 1 },
    distinct: { javascript: opts.quick ? 1 : 4, python: 1 },
    never: { javascript: 1, python: opts.quick ? 0 : 1 },
  };
  for (const reuse of ['any', 'distinct', 'never'] as const) {
    const pool = new SandboxPool({ workers, limits: { timeMs }, isolation: os ? 'strict' : 'process', reuse, notice: () => {} });
    try {
      for (const language of ['javascript', 'python'] as const) {
        const n = timed[reuse][language];
        if (!n) continue;
        // never: short batches (a process start per program).
        const perBatch = reuse === 'never' ? (language === 'python' ? 1 : 2) : prompts;
        let from = 3_000_000;
        const measure = async (batches: number, phase: string) => {
          const before = { ...pool.stats[language], ended: { ...pool.stats[language].ended } };
          const r = await runGroups(pool, language, batches, perBatch, group, from);
          from += batches * perBatch;
          lines.push({
            bench: 'sandbox',
            language,
            layers: os ? 'process+os' : 'process',
            reuse,
            workload: `groups of ${group} sharing tests, ${perBatch * group} programs per batch`,
            phase,
            workers,
            programs: batches * perBatch * group,
            executions: r.executions,
            passed: r.passed,
            seconds: Number(r.seconds.toFixed(3)),
            executions_per_s: Math.round(r.executions / r.seconds),
            processes_started: pool.stats[language].started - before.started,
            processes_ended: diff(pool.stats[language].ended, before.ended),
          });
        };
        if (reuse !== 'never') await measure(1, 'first batch (starts the processes)');
        await measure(n, reuse === 'never' ? 'every batch' : 'steady state');
      }
    } finally {
      await pool.destroy();
    }
  }
  return lines;
}

const diff = (now: Record<string, number | undefined>, before: Record<string, number | undefined>) =>
  Object.fromEntries(
    Object.entries(now)
      .map(([k, v]) => [k, (v ?? 0) - (before[k] ?? 0)])
      .filter(([, v]) => v),
  );
