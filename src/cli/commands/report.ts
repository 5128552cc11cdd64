import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { UserError } from '../../errors.ts';
import { stageDirs, writeReport, writeRunReport } from '../../metrics/index.ts';

export function register(program: Command): void {
  program
    .command('report')
    .description('rebuild report.html of every stage of a run (and its index.html), or of one stage folder')
    .argument('<dir>', 'a run folder (runs/<name>) or one stage folder')
    .action((dir: string) => {
      if (!existsSync(dir)) throw new UserError(`no such folder: ${dir}`);
      if (existsSync(join(dir, 'metrics.jsonl'))) {
        process.stdout.write(`${writeReport(dir)}\n`);
        return;
      }
      const stages = stageDirs(dir);
      if (stages.length === 0) throw new UserError(`${dir}: no stage folders with metrics.jsonl, samples.jsonl or results.json`);
      const index = writeRunReport(dir);
      for (const s of stages) process.stdout.write(`${join(dir, s, 'report.html')}\n`);
      process.stdout.write(`${index}\n`);
    });
}
