import { existsSync } from 'node:fs';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import type { Command } from 'commander';
import { UserError } from '../../errors.ts';

export function register(program: Command): void {
  program
    .command('report')
    .description(
      'rebuild the pages of runs (index.html, each stage’s report.html and samples.html) or of stage folders; with two or more runs, also a page overlaying their curves; with --results, also write the results table and GRPO plots into a Markdown file',
    )
    .argument('<dirs...>', 'run folders (runs/<name>) or stage folders')
    .option(
      '--results <file.md>',
      'write a table of every eval stage and GRPO training curves between <!-- r1:results:start --> and <!-- r1:results:end --> in this file (appended, or a new file, when the markers are absent)',
    )
    .option('--plots <dir>', 'folder for the GRPO plots (SVG); default docs/results next to the --results file')
    .option(
      '--compare <file.html>',
      'with two or more run folders: the page overlaying their curves (default: compare-<a>-vs-<b>.html beside the first run)',
    )
    .action(async (dirs: string[], o: { results?: string; plots?: string; compare?: string }) => {
      // Loaded on use: `r1 --help` and light commands stay fast.
      const { collectEvals, collectGrpo, stageDirs, writeReport, writeResults, writeRunReport } = await import('../../report/index.ts');
      const { writeAtomic } = await import('../../report/common.ts');
      const { renderComparePage } = await import('../../report/pages.ts');
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
        for (const s of stages) {
          process.stdout.write(`${join(dir, s, 'report.html')}\n`);
          if (existsSync(join(dir, s, 'samples.html'))) process.stdout.write(`${join(dir, s, 'samples.html')}\n`);
        }
        process.stdout.write(`${index}\n`);
      }
      // Several runs: one page with their curves overlaid, stage by stage.
      const runs = dirs.filter((d) => !existsSync(join(d, 'metrics.jsonl')));
      if (o.compare !== undefined && runs.length < 2) throw new UserError('--compare needs two or more run folders');
      if (runs.length >= 2) {
        const out = o.compare ?? join(dirname(resolve(runs[0])), `compare-${runs.map((d) => basename(resolve(d))).join('-vs-')}.html`);
        // Links from the page to each run's own pages, relative to where the page is written.
        const hrefs = runs.map((d) => `${relativeHref(dirname(resolve(out)), resolve(d))}/`);
        writeAtomic(out, renderComparePage(runs, { hrefs }));
        process.stdout.write(`${out}\n`);
      }
      if (o.results === undefined) return;
      const evals = collectEvals(dirs).length,
        grpo = collectGrpo(dirs).length;
      if (evals + grpo === 0)
        throw new UserError(
          `${dirs.join(', ')}: no eval stage (eval.json) and no GRPO stage (metrics.jsonl with reward and rewards/accuracy/mean)`,
        );
      const written = writeResults(dirs, o.results, o.plots);
      for (const p of written.plots) process.stdout.write(`${p}\n`);
      const n = (count: number, what: string) => `${count} ${what}${count === 1 ? '' : 's'}`;
      process.stdout.write(`${written.file}: results table of ${n(evals, 'eval')}; trend line and plot of ${n(grpo, 'GRPO stage')}\n`);
    });
}

function relativeHref(from: string, to: string): string {
  const rel = relative(from, to).split(sep).map(encodeURIComponent).join('/');
  return rel === '' ? '.' : rel;
}
