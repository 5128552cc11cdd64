import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Writable } from 'node:stream';
import type { Command } from 'commander';
import { UserError } from '../../errors.ts';
import { flagNumber } from '../numbers.ts';

type Row = Record<string, unknown>;
type ScoreOptions = { input: string; rewards: string; output?: string; onError: string; batchSize: string };

const write = (out: Writable, text: string) => new Promise<void>((ok, fail) => out.write(text, (err) => (err ? fail(err) : ok())));

export function register(program: Command): void {
  program
    .command('score')
    .description(
      'score completions offline: each JSONL row (completion, optional prompt, answer/tests/language...) gets "rewards" and "reward"',
    )
    .requiredOption('--input <file>', 'JSONL rows, each with a string "completion"')
    .option('--rewards <names>', 'comma-separated built-ins or module paths (./my.ts#fn), each optionally name=weight', 'accuracy,format')
    .option('--output <file>', 'where to write the scored rows (default: standard output)')
    .option('--on-error <mode>', 'a reward that breaks its contract: fail | zero', 'fail')
    // Rows are scored in chunks: the code reward runs a chunk in parallel, and memory stays bounded.
    .option('--batch-size <n>', 'rows scored together', '1000')
    .action(async (o: ScoreOptions) => {
      // Loaded on use, like the other commands: `r1 --help` stays fast.
      const { closeRewards, loadRewards, scoreBatch } = await import('../../../rewards/registry.ts');
      if (!existsSync(o.input)) throw new UserError(`--input: file not found: ${o.input}`);
      if (o.onError !== 'fail' && o.onError !== 'zero') throw new UserError(`--on-error must be fail or zero, got '${o.onError}'`);
      const batchSize = flagNumber('--batch-size', o.batchSize, { integer: true, min: 1 });
      const specs = o.rewards
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
        .map((s) => {
          const eq = s.lastIndexOf('=');
          if (eq === -1) return { name: s };
          const weight = Number(s.slice(eq + 1));
          if (!Number.isFinite(weight))
            throw new UserError(`--rewards: weight of '${s.slice(0, eq)}' is not a number: '${s.slice(eq + 1)}'`);
          return { name: s.slice(0, eq), weight };
        });
      if (!specs.length) throw new UserError('--rewards: no reward functions given');
      const rewards = await loadRewards(specs, process.cwd());
      const out: Writable = o.output ? createWriteStream(o.output) : process.stdout;
      let bad = 0,
        scored = 0,
        lineNo = 0,
        warnings = 0;
      let chunk: Row[] = [];
      const flush = async () => {
        if (!chunk.length) return;
        const batch = {
          prompts: chunk.map((r) => (typeof r.prompt === 'string' ? r.prompt : '')),
          completions: chunk.map((r) => r.completion as string),
          rows: chunk,
        };
        const res = await scoreBatch(rewards, batch, { onError: o.onError as 'fail' | 'zero' });
        for (const e of res.errors) process.stderr.write(`r1 score: warning: ${e}\n`);
        warnings += res.errors.length;
        const lines = chunk.map((row, i) =>
          JSON.stringify({
            ...row,
            rewards: Object.fromEntries(Object.entries(res.byFunction).map(([k, v]) => [k, v[i]])),
            reward: res.total[i],
          }),
        );
        await write(out, lines.join('\n') + '\n');
        scored += chunk.length;
        chunk = [];
      };
      try {
        for await (const line of createInterface({ input: createReadStream(o.input), crlfDelay: Infinity })) {
          lineNo++;
          if (!line.trim()) continue;
          const problem = rowProblem(line);
          if (typeof problem === 'string') {
            bad++;
            process.stderr.write(`r1 score: ${o.input} line ${lineNo}: ${problem}; skipped\n`);
            continue;
          }
          chunk.push(problem);
          if (chunk.length >= batchSize) await flush();
        }
        await flush();
      } finally {
        await closeRewards(rewards);
        if (out !== process.stdout) await new Promise<void>((ok) => out.end(ok));
      }
      process.stderr.write(
        `r1 score: ${scored} rows scored${bad ? `, ${bad} malformed lines skipped` : ''}${warnings ? `, ${warnings} reward warnings` : ''}\n`,
      );
      if (bad) process.exitCode = 1;
    });
}

/** The parsed row, or what is wrong with the line. */
function rowProblem(line: string): Row | string {
  let row: unknown;
  try {
    row = JSON.parse(line);
  } catch (err) {
    return `invalid JSON (${(err as Error).message})`;
  }
  if (row === null || typeof row !== 'object' || Array.isArray(row)) return 'not a JSON object';
  const r = row as Row;
  if (typeof r.completion !== 'string')
    return `field "completion" must be a string, got ${r.completion === undefined ? 'nothing' : typeof r.completion}`;
  if (r.prompt !== undefined && typeof r.prompt !== 'string') return `field "prompt" must be a string, got ${typeof r.prompt}`;
  return r;
}
