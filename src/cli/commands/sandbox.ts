// `r1 sandbox`: runs a JSONL file of programs against their tests in the sandbox pool, and
// `--check` says which walls the sandbox processes get on this machine.
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Writable } from 'node:stream';
import type { Command } from 'commander';
// The languages table loads nothing else: `r1 --help` stays fast.
import { LANGUAGES, LANGUAGE_NAMES, isLanguage, languageList, type Language } from '../../../sandbox/languages.ts';
import type { Isolation, Reuse, SandboxOptions } from '../../../sandbox/index.ts';
import { UserError } from '../../errors.ts';
import { flagNumber } from '../numbers.ts';

type SandboxCliOptions = {
  input?: string;
  check?: boolean;
  isolation?: string;
  reuse?: string;
  output?: string;
  workers?: string;
  timeMs?: string;
  memoryMb?: string;
  outputBytes?: string;
};
type Result = { passed: number; total: number; results: { status: string; detail?: string }[]; error?: string };

const write = (out: Writable, text: string) => new Promise<void>((ok, fail) => out.write(text, (err) => (err ? fail(err) : ok())));

const positive = (flag: string, value: string | undefined, integer = false) =>
  value === undefined ? undefined : flagNumber(flag, value, { gt: 0, integer });

/** The program on a line, or what is wrong with the line. */
export function parseProgramLine(line: string): { language: Language; code: string; tests: unknown } | string {
  let row: unknown;
  try {
    row = JSON.parse(line);
  } catch (err) {
    return `invalid JSON (${(err as Error).message})`;
  }
  if (row === null || typeof row !== 'object' || Array.isArray(row)) return 'not a JSON object';
  const r = row as Record<string, unknown>;
  if (!isLanguage(r.language)) return `field "language" must be ${languageList('"')}, got ${JSON.stringify(r.language) ?? 'nothing'}`;
  if (typeof r.code !== 'string') return `field "code" must be a string, got ${r.code === undefined ? 'nothing' : typeof r.code}`;
  if (r.tests === undefined) return 'field "tests" is missing';
  return { language: r.language, code: r.code, tests: r.tests };
}

/** The pool's options from the command's flags (the pool checks isolation and reuse, naming the bad value). */
export function poolOptions(o: SandboxCliOptions): SandboxOptions {
  const limits = Object.fromEntries(
    Object.entries({
      timeMs: positive('--time-ms', o.timeMs),
      memoryMb: positive('--memory-mb', o.memoryMb),
      outputBytes: positive('--output-bytes', o.outputBytes),
    }).filter(([, v]) => v !== undefined),
  );
  return { workers: positive('--workers', o.workers, true), limits, isolation: o.isolation as Isolation, reuse: o.reuse as Reuse };
}

export function register(program: Command): void {
  program
    .command('sandbox')
    .description('run programs against their tests in the sandbox; one JSON result line per input line, in order')
    .option(
      '--input <file>',
      `JSONL, each line { "language": ${LANGUAGE_NAMES.map((l) => `"${l}"`).join(' | ')}, "code": "...", "tests": [...] }`,
    )
    .option('--isolation <level>', 'strict (refuse without the os layer) | standard (os layer where available) | process', 'standard')
    .option(
      '--reuse <rule>',
      'what one sandbox process may run in its life: distinct (never two programs of the same test, so a breached process has no other output to replay) | ' +
        'never (one program per process: a process start per program, ~0.15 s JavaScript, ~2.5 s Python) | any (no rule; for measuring its cost)',
      'distinct',
    )
    .option('--check', 'print which walls the sandbox processes get here, start one per language, and exit (2 when strict cannot be met)')
    .option('--output <file>', 'where to write the results (default: standard output)')
    .option('--workers <n>', 'worker threads per language (default: one per core)')
    .option('--time-ms <ms>', 'time limit of one test execution')
    .option('--memory-mb <mb>', 'memory limit of one test execution')
    .option('--output-bytes <n>', 'standard output kept per test execution')
    .action(async (o: SandboxCliOptions) => {
      if (o.check) return check(o.isolation ?? 'standard');
      if (o.input === undefined) throw new UserError('--input <file> is required (or --check)');
      if (!existsSync(o.input)) throw new UserError(`--input: file not found: ${o.input}`);
      const options = poolOptions(o);
      // Loaded on use, like the other commands: `r1 --help` stays fast.
      const { SandboxPool } = await import('../../../sandbox/index.ts');
      const pool = new SandboxPool(options);
      const out: Writable = o.output ? createWriteStream(o.output) : process.stdout;
      // Lines run concurrently (a few per worker) and are written in input order.
      const window = 4 * pool.workers;
      const pending: Promise<Result>[] = [];
      let lineNo = 0,
        bad = 0,
        done = 0;
      const flushOne = async () => {
        await write(out, JSON.stringify(await pending.shift()!) + '\n');
        done++;
      };
      const runLine = async (line: string, n: number): Promise<Result> => {
        const fail = (why: string): Result => {
          bad++;
          process.stderr.write(`r1 sandbox: ${o.input} line ${n}: ${why}\n`);
          return { passed: 0, total: 0, results: [], error: `line ${n}: ${why}` };
        };
        const p = parseProgramLine(line);
        if (typeof p === 'string') return fail(p);
        try {
          return await pool.run(p);
        } catch (err) {
          // Only bad input rejects (malformed tests): the program's behaviour never does.
          return fail((err as Error).message);
        }
      };
      try {
        for await (const line of createInterface({ input: createReadStream(o.input), crlfDelay: Infinity })) {
          lineNo++;
          if (!line.trim()) continue;
          pending.push(runLine(line, lineNo));
          if (pending.length >= window) await flushOne();
        }
        while (pending.length) await flushOne();
      } finally {
        await pool.destroy();
        if (out !== process.stdout) await new Promise<void>((ok) => out.end(ok));
      }
      process.stderr.write(`r1 sandbox: ${done} programs run${bad ? `, ${bad} malformed lines` : ''}\n`);
      if (bad) process.exitCode = 1;
    });
}

/** `r1 sandbox --check`: the layers, and one program per language through a real process. */
async function check(isolation: string): Promise<void> {
  const { SandboxPool, describeLayers } = await import('../../../sandbox/index.ts');
  const pool = new SandboxPool({ workers: 1, isolation: isolation as Isolation, notice: () => {} });
  process.stdout.write(
    `isolation: ${isolation}\n${describeLayers(pool.layers)
      .map((l) => `  ${l}`)
      .join('\n')}\n`,
  );
  const programs = LANGUAGE_NAMES.map((language) => ({ language, code: LANGUAGES[language].doubler }));
  let failed = 0;
  try {
    for (const p of programs) {
      const t = performance.now();
      const r = await pool.run({ ...p, tests: [{ input: '21\n', output: '42' }] });
      const ok = r.passed === 1;
      failed += Number(!ok);
      process.stdout.write(
        `  ${p.language}: ${ok ? 'ok' : `FAILED (${JSON.stringify(r.results[0])})`} in ${Math.round(performance.now() - t)} ms (start-up included)\n`,
      );
    }
  } finally {
    await pool.destroy();
  }
  if (failed) process.exitCode = 1;
}
