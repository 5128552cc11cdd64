// Which charts a stage page shows, in which order, built as plain data that the page's script hands to
// uPlot. The order answers the questions people ask of each kind of stage (is the reward going up? is
// the model still learning?) instead of following the order the metrics were logged in. A metric that
// never changes, or was logged once, is a number in a table, not a chart.
import type { LoggedRow } from '../metrics/logger.ts';
import type { StageType } from './common.ts';
import { isExpertLoad } from './expert-load.ts';

export const PALETTE = ['#1f6feb', '#d1242f', '#1a7f37', '#8250df', '#bc4c00', '#0598bc', '#953800', '#bf3989'];

export type ChartSeries = {
  label: string;
  values: (number | null)[];
  color: string;
  /** Line width in CSS pixels. */
  width?: number;
  /** Drawn faint: the raw per-step values under their moving average. */
  faint?: boolean;
  dash?: number[];
  /** The right-hand axis (e.g. the learning rate next to the loss). */
  right?: boolean;
  /** Left out of the legend (the edges of a band). */
  quiet?: boolean;
  /** The metric key it plots (compare pages overlay runs by it). */
  key?: string;
  /** The series to overlay when comparing runs. */
  main?: boolean;
};

export type Chart = {
  id: string;
  title: string;
  x: number[];
  series: ChartSeries[];
  /** A shaded band between two series, by index in `series`. */
  bands?: { upper: number; lower: number; color: string }[];
  rightLabel?: string;
  note?: string;
};

export type StageView = { charts: Chart[]; numbers: { key: string; value: number; note: string }[] };

/** Keys that are bookkeeping, not something to plot against steps. */
const NOT_PLOTTED = new Set(['step', 'elapsed_s', 'num_tokens']);

/** Metric values per step, aligned with `steps` (null where a row lacks it). */
function column(rows: LoggedRow[], key: string): (number | null)[] {
  return rows.map((r) => {
    const v = r[key];
    return typeof v === 'number' && Number.isFinite(v) ? round(v) : null;
  });
}

/** Six significant digits: what a chart can show, and a third of the page weight of full floats. */
const round = (v: number) => Number(v.toPrecision(6));

const finite = (vs: (number | null)[]) => vs.filter((v): v is number => v !== null);

/** Does the metric change over the stage (two or more values, not all equal)? */
export function varies(rows: LoggedRow[], key: string): boolean {
  const vs = finite(column(rows, key));
  return vs.length > 1 && vs.some((v) => v !== vs[0]);
}

/** Window of the moving average for n noisy points: none under 8, else about a tenth of the run (3 to 50). */
export function smoothWindow(n: number): number {
  return n < 8 ? 0 : Math.max(3, Math.min(50, Math.round(n / 10)));
}

/** Centred moving average over `window` points, skipping gaps (a gap stays a gap). */
export function movingAverage(values: (number | null)[], window: number): (number | null)[] {
  const half = Math.floor(window / 2);
  return values.map((v, i) => {
    if (v === null) return null;
    const part = finite(values.slice(Math.max(0, i - half), Math.min(values.length, i - half + window)));
    return round(part.reduce((a, b) => a + b, 0) / part.length);
  });
}

/** A metric as one or two series: raw per step (faint when smoothed) and its moving average on top. */
function metricSeries(
  rows: LoggedRow[],
  key: string,
  label: string,
  color: string,
  opts: { smooth?: boolean; right?: boolean } = {},
): ChartSeries[] {
  const values = column(rows, key);
  const w = opts.smooth === false ? 0 : smoothWindow(finite(values).length);
  if (!w) return [{ label, values, color, width: 1.5, key, main: true, right: opts.right }];
  return [
    { label: `${label} per step`, values, color, width: 1, faint: true, key, right: opts.right },
    { label: `${label} (avg of ${w})`, values: movingAverage(values, w), color, width: 2, key, main: true, right: opts.right },
  ];
}

type Builder = { charts: Chart[]; used: Set<string> };

/** A metric of a chart. `always`: drawn whenever it was logged at two steps or more, even flat: a
 * headline (the reward, the loss) that stays at 0 is the news of the stage, not a constant. */
type ChartKey = { key: string; label?: string; right?: boolean; smooth?: boolean; always?: boolean };

/** Logged (finite) at two steps or more. */
const plottable = (rows: LoggedRow[], key: string) => finite(column(rows, key)).length > 1;

/** One chart of the given keys (those that vary, and the `always` ones); nothing when none is left.
 * Keys are marked used either way. */
function add(b: Builder, rows: LoggedRow[], id: string, title: string, keys: ChartKey[], extra: Partial<Chart> = {}): Chart | null {
  for (const k of keys) b.used.add(k.key);
  const live = keys.filter((k) => (k.always ? plottable(rows, k.key) : varies(rows, k.key)));
  if (!live.length) return null;
  const series = live.flatMap((k, i) =>
    metricSeries(rows, k.key, k.label ?? k.key, PALETTE[i % PALETTE.length], { smooth: k.smooth, right: k.right }),
  );
  // With several metrics on a chart, the legend lists each metric once (its moving average); one metric
  // alone keeps both, so hovering shows the step's own value too.
  if (live.length > 1) for (const s of series) if (s.faint) s.quiet = true;
  const chart: Chart = { id, title, x: rows.map((r) => r.step), series, ...extra };
  b.charts.push(chart);
  return chart;
}

/** Every numeric metric key, in the order first logged. */
export function numericKeys(rows: LoggedRow[]): string[] {
  const seen = new Set<string>();
  for (const r of rows)
    for (const [k, v] of Object.entries(r)) if (!NOT_PLOTTED.has(k) && typeof v === 'number' && Number.isFinite(v)) seen.add(k);
  return [...seen];
}

/** Reward functions logged as rewards/<fn>/mean, accuracy first (it is the one people read first). */
export function rewardFunctions(rows: LoggedRow[]): string[] {
  const fns = numericKeys(rows).flatMap((k) => /^rewards\/(.+)\/mean$/.exec(k)?.[1] ?? []);
  return [...fns.filter((f) => f === 'accuracy'), ...fns.filter((f) => f !== 'accuracy')];
}

function grpoCharts(b: Builder, rows: LoggedRow[]): void {
  add(b, rows, 'reward', 'reward', [{ key: 'reward', always: true }]);
  for (const fn of rewardFunctions(rows))
    add(b, rows, `rewards/${fn}`, fn === 'accuracy' ? 'accuracy (reward)' : `reward: ${fn}`, [
      { key: `rewards/${fn}/mean`, label: fn, always: true },
    ]);
  // Completion length: the mean as a line, the shortest and longest of each step as a band around it.
  b.used.add('completions/min_length').add('completions/max_length');
  const len = add(b, rows, 'length', 'completion length (tokens)', [
    { key: 'completions/mean_length', label: 'mean' },
    { key: 'completions/mean_terminated_length', label: 'mean of finished' },
  ]);
  if (len && varies(rows, 'completions/max_length')) {
    const lo = len.series.length;
    len.series.push(
      {
        label: 'max',
        values: column(rows, 'completions/max_length'),
        color: '#8c959f',
        width: 0.5,
        key: 'completions/max_length',
        quiet: true,
      },
      {
        label: 'min',
        values: column(rows, 'completions/min_length'),
        color: '#8c959f',
        width: 0.5,
        key: 'completions/min_length',
        quiet: true,
      },
    );
    len.bands = [{ upper: lo, lower: lo + 1, color: 'rgba(31,111,235,0.10)' }];
    len.note = 'band: shortest to longest completion of each step';
  }
  add(b, rows, 'kl', 'KL to the reference', [{ key: 'kl' }]);
  add(b, rows, 'clip', 'clip ratio', [
    { key: 'clip_ratio/low_mean', label: 'low' },
    { key: 'clip_ratio/high_mean', label: 'high' },
    { key: 'clip_ratio/region_mean', label: 'region' },
    { key: 'cispo_clip_ratio', label: 'cispo' },
  ]);
  add(b, rows, 'entropy', 'entropy', [{ key: 'entropy' }]);
  add(b, rows, 'truncated', 'truncated share (hit max length)', [{ key: 'completions/clipped_ratio', label: 'truncated' }]);
  const time = add(b, rows, 'time', 'time per step (s)', [
    { key: 'time/generate_s', label: 'generate', smooth: false },
    { key: 'time/score_s', label: 'score', smooth: false },
    { key: 'time/update_s', label: 'update', smooth: false },
  ]);
  b.used.add('step_time_s');
  if (time) {
    const total = (k: string) => finite(column(rows, k)).reduce((a, v) => a + v, 0);
    const parts = [
      ['generate', 'time/generate_s'],
      ['score', 'time/score_s'],
      ['update', 'time/update_s'],
    ].map(([n, k]) => [n, total(k)] as const);
    const sum = parts.reduce((a, [, v]) => a + v, 0);
    if (sum > 0) time.note = `share of the time: ${parts.map(([n, v]) => `${n} ${Math.round((100 * v) / sum)}%`).join(', ')}`;
  }
}

function lmCharts(b: Builder, rows: LoggedRow[]): void {
  add(
    b,
    rows,
    'loss',
    'loss',
    [
      { key: 'loss', always: true },
      { key: 'eval/loss', label: 'held-out loss', smooth: false },
      { key: 'learning_rate', label: 'learning rate', right: true, smooth: false },
    ],
    { rightLabel: 'learning rate' },
  );
}

/** A MoE model's balance: max over mean expert load, over all layers and per layer (the loads
 * themselves are the page's heatmap, not a chart each). */
function moeCharts(b: Builder, rows: LoggedRow[]): void {
  const layers = numericKeys(rows).filter((k) => /^moe\/max_over_mean\/\d+$/.test(k));
  if (!layers.length) return;
  add(b, rows, 'balance', 'expert load balance (max / mean load; 1 = even)', [
    { key: 'moe/max_over_mean', label: 'worst layer' },
    ...layers.map((key) => ({ key, label: `layer ${key.split('/').at(-1)}` })),
  ]);
}

function dpoCharts(b: Builder, rows: LoggedRow[]): void {
  add(b, rows, 'accuracy', 'preference accuracy (chosen above rejected)', [{ key: 'rewards/accuracies', label: 'accuracy', always: true }]);
  add(b, rows, 'margins', 'reward margin (chosen − rejected)', [{ key: 'rewards/margins', label: 'margin', always: true }]);
  add(b, rows, 'loss', 'loss', [{ key: 'loss' }, { key: 'learning_rate', label: 'learning rate', right: true, smooth: false }], {
    rightLabel: 'learning rate',
  });
  add(b, rows, 'chosen-rejected', 'implicit rewards', [
    { key: 'rewards/chosen', label: 'chosen' },
    { key: 'rewards/rejected', label: 'rejected' },
  ]);
}

/** The charts of a stage, headline ones first, then one per other varying metric; and the numbers:
 * metrics that never change or were logged once (with their value), and the last of the cumulative ones. */
export function stageView(type: StageType, rows: LoggedRow[]): StageView {
  const b: Builder = { charts: [], used: new Set() };
  if (type === 'grpo') grpoCharts(b, rows);
  else if (type === 'pretrain' || type === 'sft') lmCharts(b, rows);
  else if (type === 'dpo') dpoCharts(b, rows);
  moeCharts(b, rows);
  const headline = b.charts.length;
  add(b, rows, 'memory', 'memory of the process (GiB)', [
    { key: 'memory/rss_gib', label: 'resident at the step', smooth: false },
    { key: 'memory/max_rss_gib', label: 'peak so far', smooth: false },
    { key: 'memory/gpu_max_gib', label: 'GPU buffers, peak so far', smooth: false },
  ]);
  for (const key of numericKeys(rows)) if (!b.used.has(key) && !isExpertLoad(key)) add(b, rows, key, key, [{ key }]);
  b.charts.forEach((c, i) => (c.id = `${i < headline ? 'main' : 'more'}:${c.id}`));
  // A metric drawn in a chart is not also a number (a flat reward is on its chart, not among the constants).
  const charted = new Set(b.charts.flatMap((c) => c.series.map((s) => s.key)));
  const numbers = numericKeys(rows)
    .filter((k) => !varies(rows, k) && !charted.has(k) && !isExpertLoad(k))
    .map((key) => {
      const vs = finite(column(rows, key));
      return { key, value: vs[0], note: vs.length === 1 ? 'logged once' : `same at all ${vs.length} steps` };
    });
  for (const key of ['num_tokens', 'elapsed_s']) {
    const last = finite(column(rows, key)).at(-1);
    if (last !== undefined) numbers.push({ key, value: last, note: 'at the last step' });
  }
  return { charts: b.charts, numbers };
}

/** Mean of the last n values of a metric (the "where did it end" number, less noisy than the last step). */
export function lastMean(rows: LoggedRow[], key: string, n = 10): number | null {
  const vs = finite(column(rows, key)).slice(-n);
  return vs.length ? vs.reduce((a, b) => a + b, 0) / vs.length : null;
}
