// The results block of a README (`r1 report <runs...> --results README.md`): a Markdown table of
// every eval stage of the given runs, one line per GRPO stage comparing its first and last steps,
// and SVG plots of those GRPO stages over RL steps. The block sits between two HTML comments, so
// the rest of the file, written by people, is never touched.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { readMetrics, type LoggedRow } from '../metrics/logger.ts';
import { UserError } from '../errors.ts';
import { esc, readJson, series, stageDirs, svgPlot, SVG_CSS, writeAtomic } from './plot.ts';

export const RESULTS_START = '<!-- r1:results:start -->';
export const RESULTS_END = '<!-- r1:results:end -->';
const MISSING = '–';
/** Steps averaged at each end of a GRPO run for the first-vs-last line. */
const TREND_STEPS = 10;
/** Width of the moving average drawn over the noisy per-step values. */
const SMOOTH_STEPS = 10;

/** The GRPO curves worth showing: metric key and panel title. */
const CURVES: { key: string; title: string }[] = [
  { key: 'rewards/accuracy/mean', title: 'accuracy' },
  { key: 'reward', title: 'reward' },
  { key: 'completions/mean_length', title: 'response length (tokens)' },
];

export type EvalEntry = { run: string; stage: string; results: Record<string, unknown> };
export type GrpoEntry = { run: string; stage: string; rows: LoggedRow[] };

const runName = (runDir: string) => basename(resolve(runDir));

/** Every eval stage (a stage folder with eval.json) of the runs, runs in the given order, stages in pipeline order. */
export function collectEvals(runDirs: string[]): EvalEntry[] {
  return runDirs.flatMap((dir) =>
    stageDirs(dir).flatMap((stage) => {
      const results = readJson(join(dir, stage, 'eval.json'));
      return results ? [{ run: runName(dir), stage, results }] : [];
    }),
  );
}

/** Is this metrics log a GRPO run's: a total reward and an accuracy reward per step? */
export function isGrpoLog(rows: LoggedRow[]): boolean {
  const has = (k: string) => rows.some((r) => typeof r[k] === 'number');
  return has('reward') && has('rewards/accuracy/mean');
}

/** Every GRPO stage of the runs, in the same order as collectEvals. */
export function collectGrpo(runDirs: string[]): GrpoEntry[] {
  return runDirs.flatMap((dir) =>
    stageDirs(dir).flatMap((stage) => {
      const file = join(dir, stage, 'metrics.jsonl');
      const rows = existsSync(file) ? readMetrics(file) : [];
      return isGrpoLog(rows) ? [{ run: runName(dir), stage, rows }] : [];
    }),
  );
}

/** A rate in [0, 1] as a percentage with one decimal, halves rounded up (0.3375 -> 33.8); `–` when missing. */
export function pct(v: unknown): string {
  // toPrecision first drops the float noise of v * 100 (33.749999...), which would round the other way.
  return typeof v === 'number' && Number.isFinite(v) ? Number((v * 100).toPrecision(12)).toFixed(1) : MISSING;
}

/** A Markdown table cell: pipes escaped, newlines flattened. */
function mdCell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\s*\n\s*/g, ' ');
}

/** The maj@k value of an eval report, whatever its k. */
function majAtK(r: Record<string, unknown>): unknown {
  return Object.entries(r).find(([k]) => /^maj@\d+$/.test(k))?.[1];
}

/** One table row per eval, in the given order. */
export function resultsTable(evals: EvalEntry[]): string {
  const lines = [
    '| Model | pass@1 (%) | maj@k (%) | format rate (%) | language consistency (%) | mean length (tokens) | samples (prompts × k) |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const { run, stage, results: r } of evals) {
    const label = typeof r.label === 'string' && r.label.trim() ? r.label.trim() : `${run}/${stage}`;
    const len = typeof r.mean_length === 'number' && Number.isFinite(r.mean_length) ? r.mean_length.toFixed(1) : MISSING;
    const samples = typeof r.prompts === 'number' && typeof r.k === 'number' ? `${r.prompts} × ${r.k}` : MISSING;
    const cells = [mdCell(label), pct(r['pass@1']), pct(majAtK(r)), pct(r.format_rate), pct(r.language_consistency), len, samples];
    lines.push(`| ${cells.join(' | ')} |`);
  }
  return lines.join('\n');
}

/** pass@1 of each eval per task and per language (the eval's `by_task` and `by_language`), one column
 * for each key any eval has; null when no eval has a breakdown. */
export function breakdownTable(evals: EvalEntry[]): string | null {
  const groups = ['by_task', 'by_language'] as const;
  const part = (r: Record<string, unknown>, g: string) =>
    r[g] !== null && typeof r[g] === 'object' ? (r[g] as Record<string, { 'pass@1'?: unknown }>) : {};
  const cols = groups.flatMap((g) => [...new Set(evals.flatMap((e) => Object.keys(part(e.results, g))))].sort().map((k) => ({ g, k })));
  if (!cols.length) return null;
  const lines = [`| Model | ${cols.map((c) => `${mdCell(c.k)}`).join(' | ')} |`, `| --- | ${cols.map(() => '---:').join(' | ')} |`];
  for (const { run, stage, results: r } of evals) {
    const label = typeof r.label === 'string' && r.label.trim() ? r.label.trim() : `${run}/${stage}`;
    lines.push(`| ${mdCell(label)} | ${cols.map((c) => pct(part(r, c.g)[c.k]?.['pass@1'])).join(' | ')} |`);
  }
  return lines.join('\n');
}

/** Centered moving average over `window` points (fewer at the ends). */
export function movingAverage(points: [number, number][], window = SMOOTH_STEPS): [number, number][] {
  const half = Math.floor(window / 2);
  return points.map(([x], i) => {
    const part = points.slice(Math.max(0, i - half), Math.min(points.length, i - half + window));
    return [x, part.reduce((a, p) => a + p[1], 0) / part.length];
  });
}

/** Mean of the first and of the last n values (the windows overlap on runs shorter than 2n); null if none. */
export function firstLast(points: [number, number][], n = TREND_STEPS): { first: number; last: number } | null {
  if (points.length === 0) return null;
  const mean = (p: [number, number][]) => p.reduce((a, q) => a + q[1], 0) / p.length;
  return { first: mean(points.slice(0, n)), last: mean(points.slice(-n)) };
}

/** "r1-zero/grpo: accuracy 0.27 → 0.93, reward 0.20 → 0.93, length 34 → 29 tokens over 120 steps". */
export function trendLine({ run, stage, rows }: GrpoEntry): string {
  const part = (key: string, name: string, digits: number, unit = '') => {
    const t = firstLast(series(rows, key));
    return t ? `${name} ${t.first.toFixed(digits)} → ${t.last.toFixed(digits)}${unit}` : `${name} ${MISSING}`;
  };
  const steps = rows.at(-1)?.step ?? 0;
  return `${run}/${stage}: ${part('rewards/accuracy/mean', 'accuracy', 2)}, ${part('reward', 'reward', 2)}, ${part('completions/mean_length', 'length', 0, ' tokens')} over ${steps} steps`;
}

/** One standalone SVG with a panel per GRPO curve (raw per-step values faint, moving average on top);
 * it embeds its styles and a white background, as GitHub shows it as an image on any theme. */
export function trainingSvg(rows: LoggedRow[], title: string): string {
  const W = 360,
    H = 200;
  const panels = CURVES.map((c) => ({ ...c, points: series(rows, c.key) })).filter((c) => c.points.length > 0);
  const width = W * Math.max(1, panels.length);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${H}" width="${width}" height="${H}" role="img" aria-label="${esc(title)}">`,
    `<style>${SVG_CSS}</style>`,
    `<rect width="${width}" height="${H}" fill="#fff"/>`,
    ...panels.map((p, i) => `<g transform="translate(${i * W},0)">${svgPlot(p.title, p.points, movingAverage(p.points))}</g>`),
    '</svg>',
  ].join('\n');
}

/** The Markdown between the markers; `plots` are the SVGs' paths relative to the Markdown file. */
export function resultsMarkdown(evals: EvalEntry[], grpo: GrpoEntry[], plots: string[]): string {
  const parts = ['<!-- written by `npx r1 report --results`: edits between these markers are overwritten -->', ''];
  parts.push(evals.length ? resultsTable(evals) : '_No eval stage found._');
  const breakdown = breakdownTable(evals);
  if (breakdown) parts.push('', 'pass@1 (%) by task and by language:', '', breakdown);
  if (grpo.length) {
    parts.push('', `GRPO, mean of the first ${TREND_STEPS} vs the last ${TREND_STEPS} steps:`, '');
    parts.push(...grpo.map((g) => `- ${trendLine(g)}`));
    parts.push(
      '',
      `Accuracy, reward and response length over RL steps (faint: per step; line: moving average over ${SMOOTH_STEPS} steps):`,
      '',
    );
    parts.push(grpo.map((g, i) => `![${g.run}/${g.stage}: accuracy, reward and response length over RL steps](${plots[i]})`).join('\n\n'));
  }
  return parts.join('\n');
}

/** The file's new text: the block between existing markers replaced (all else kept byte for byte), or a
 * marked block appended, or a new file holding only the block. */
export function spliceResults(existing: string | null, block: string, name = 'the file'): string {
  const marked = `${RESULTS_START}\n${block}\n${RESULTS_END}`;
  if (existing === null) return marked + '\n';
  const i = existing.indexOf(RESULTS_START);
  const j = i === -1 ? -1 : existing.indexOf(RESULTS_END, i + RESULTS_START.length);
  if (i !== -1 && j !== -1) return existing.slice(0, i + RESULTS_START.length) + `\n${block}\n` + existing.slice(j);
  // One marker without the other: appending would leave a stray marker that a later run would pair wrongly.
  if (i !== -1 || existing.includes(RESULTS_END))
    throw new UserError(`${name} has only one of ${RESULTS_START} and ${RESULTS_END} (or the end before the start); fix the markers first`);
  const gap = existing === '' ? '' : existing.endsWith('\n') ? '\n' : '\n\n';
  return existing + gap + marked + '\n';
}

/** Writes the GRPO plots into plotsDir (default <dir of file>/docs/results) and the results block into
 * file; returns every path written. */
export function writeResults(
  runDirs: string[],
  file: string,
  plotsDir = join(dirname(file), 'docs', 'results'),
): { file: string; plots: string[] } {
  const evals = collectEvals(runDirs),
    grpo = collectGrpo(runDirs);
  const plots = grpo.map((g) => join(plotsDir, `${g.run}-${g.stage}.svg`));
  // Markdown links are relative to the file and use forward slashes on every platform.
  const links = plots.map((p) =>
    encodeURI(
      relative(dirname(resolve(file)), resolve(p))
        .split(sep)
        .join('/'),
    ),
  );
  const existing = existsSync(file) ? readFileSync(file, 'utf8') : null;
  // Spliced before anything is written, so broken markers leave every file as it was.
  const text = spliceResults(existing, resultsMarkdown(evals, grpo, links), file);
  if (plots.length) mkdirSync(plotsDir, { recursive: true });
  grpo.forEach((g, i) => writeAtomic(plots[i], trainingSvg(g.rows, `${g.run}/${g.stage}`) + '\n'));
  mkdirSync(dirname(file), { recursive: true });
  writeAtomic(file, text);
  return { file, plots };
}
