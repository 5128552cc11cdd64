import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { UserError } from '../../errors.ts';
import { collectEvals, collectGrpo, stageDirs, writeReport, writeResults, writeRunReport } from '../../metrics/index.ts';

export function register(program: Command): void {
  program
    .command('report')
    .description('rebuild report.html of every stage of runs (and their index.html), or of stage folders; with --results, also write the results table and GRPO plots into a Markdown file')
    .argument('<dirs...>', 'run folders (runs/<name>) or stage folders')
    .option('--results <file.md>', 'write a table of every eval stage and GRPO training curves between <!-- r1:results:start --> and <!-- r1:results:end --> in this file (appended, or a new file, when the markers are absent)')
    .option('--plots <dir>', 'folder for the GRPO plots (SVG); default docs/results next to the --results file')
    .action((dirs: string[], o: { results?: string; plots?: string }) => {
      for (const dir of dirs) if (!existsSync(dir)) throw new UserError(`no such folder: ${dir}`);
      if (o.plots !== undefined && o.results === undefined) throw new UserError('--plots goes with --results');
      for (const dir of dirs) {
        if (existsSync(join(dir, 'metrics.jsonl'))) {
          process.stdout.write(`${writeReport(dir)}\n`);
          continue;
        }
        const stages = stageDirs(dir);
        if (stages.length === 0) throw new UserError(`${dir}: no stage folders with metrics.jsonl, samples.jsonl or results.json`);
        const index = writeRunReport(dir);
        for (const s of stages) process.stdout.write(`${join(dir, s, 'report.html')}\n`);
        process.stdout.write(`${index}\n`);
      }
      if (o.results === undefined) return;
      const evals = collectEvals(dirs).length, grpo = collectGrpo(dirs).length;
      if (evals + grpo === 0) throw new UserError(`${dirs.join(', ')}: no eval stage (eval.json) and no GRPO stage (metrics.jsonl with reward and rewards/accuracy/mean)`);
      const written = writeResults(dirs, o.results, o.plots);
      for (const p of written.plots) process.stdout.write(`${p}\n`);
      const n = (count: number, what: string) => `${count} ${what}${count === 1 ? '' : 's'}`;
      process.stdout.write(`${written.file}: results table of ${n(evals, 'eval')}; trend line and plot of ${n(grpo, 'GRPO stage')}\n`);
    });
}
