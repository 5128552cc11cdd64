// report.html for a stage: inline SVG line plots of every numeric metric in metrics.jsonl against
// step (loss and learning rate first), a table of last values, results.json / eval.json if the
// stage wrote one, and a few rows of samples.jsonl. Self-contained: no scripts, no external files.
import { existsSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseJsonLines, readMetrics, type LoggedRow } from './logger.ts';

const FIRST = ['loss', 'learning_rate'];
/** Files a stage may write with its headline results (the eval stage writes eval.json). */
const RESULT_FILES = ['results.json', 'eval.json'];
const SAMPLE_ROWS = 5;
const MAX_POINTS = 800;

export type ReportInput = {
  title: string;
  rows: LoggedRow[];
  samples?: Record<string, unknown>[];
  results?: Record<string, unknown> | null;
};

/** Names of the metrics worth plotting: numeric somewhere, step excluded; loss and learning rate first. */
export function numericMetrics(rows: LoggedRow[]): string[] {
  const seen = new Set<string>();
  for (const r of rows) for (const [k, v] of Object.entries(r)) if (k !== 'step' && typeof v === 'number' && Number.isFinite(v)) seen.add(k);
  const names = [...seen];
  return [...FIRST.filter((n) => seen.has(n)), ...names.filter((n) => !FIRST.includes(n))];
}

/** The (step, value) points of one metric; missing or non-finite values leave gaps. */
export function series(rows: LoggedRow[], name: string): [number, number][] {
  return rows.flatMap((r): [number, number][] => {
    const v = r[name];
    return typeof v === 'number' && Number.isFinite(v) ? [[r.step, v]] : [];
  });
}

/** At most ~max points: the min and max of each bucket, so spikes survive the thinning. */
export function thin(points: [number, number][], max = MAX_POINTS): [number, number][] {
  if (points.length <= max) return points;
  const per = Math.ceil(points.length / (max / 2));
  const out: [number, number][] = [];
  for (let i = 0; i < points.length; i += per) {
    const bucket = points.slice(i, i + per);
    let lo = bucket[0], hi = bucket[0];
    for (const p of bucket) {
      if (p[1] < lo[1]) lo = p;
      if (p[1] > hi[1]) hi = p;
    }
    out.push(...(lo[0] <= hi[0] ? [lo, hi] : [hi, lo]));
  }
  return out;
}

/** About n round tick values covering [lo, hi]. */
export function ticks(lo: number, hi: number, n = 4): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const fit = (s: number) => Math.abs((hi - lo) / s - n);
  const step = [1, 2, 5, 10].map((m) => m * mag).reduce((a, b) => (fit(b) < fit(a) ? b : a));
  const out: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push(Number(t.toPrecision(12)));
  return out;
}

/** One line plot as an inline SVG element. With `smooth` (e.g. a moving average of the same points),
 * the raw points are drawn faint and the smooth line over them, on the raw points' scale. */
export function svgPlot(name: string, points: [number, number][], smooth?: [number, number][]): string {
  const W = 360, H = 200, L = 56, R = 10, T = 22, B = 28;
  const pts = thin(points);
  const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (x1 === x0) [x0, x1] = [x0 - 1, x1 + 1];
  if (y1 === y0) [y0, y1] = [y0 - (Math.abs(y0) || 1) * 0.1, y1 + (Math.abs(y1) || 1) * 0.1];
  const sx = (x: number) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
  const sy = (y: number) => T + (1 - (y - y0) / (y1 - y0)) * (H - T - B);
  const yTicks = ticks(y0, y1).map(
    (t) => `<line x1="${L}" x2="${W - R}" y1="${sy(t).toFixed(1)}" y2="${sy(t).toFixed(1)}" class="grid"/><text x="${L - 4}" y="${(sy(t) + 3).toFixed(1)}" text-anchor="end">${fmtNum(t)}</text>`,
  );
  const xTicks = ticks(x0, x1).map((t) => `<text x="${sx(t).toFixed(1)}" y="${H - B + 14}" text-anchor="middle">${fmtNum(t)}</text>`);
  const polyline = (p: [number, number][], cls: string) => `<polyline points="${p.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ')}" class="${cls}"/>`;
  const line = pts.length === 1
    ? `<circle cx="${sx(xs[0]).toFixed(1)}" cy="${sy(ys[0]).toFixed(1)}" r="3" class="dot"/>`
    : smooth && smooth.length > 1 ? polyline(pts, 'raw') + polyline(thin(smooth), 'line') : polyline(pts, 'line');
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(name)} vs step">`,
    `<text x="${L}" y="14" class="title">${esc(name)}</text>`,
    ...yTicks,
    ...xTicks,
    `<rect x="${L}" y="${T}" width="${W - L - R}" height="${H - T - B}" class="frame"/>`,
    line,
    `<text x="${W - R}" y="${H - 2}" text-anchor="end" class="axis">step</text>`,
    '</svg>',
  ].join('');
}

/** The whole page for one stage. */
export function renderReport({ title, rows, samples = [], results = null }: ReportInput): string {
  const names = numericMetrics(rows);
  const plots = names.map((n) => `<figure>${svgPlot(n, series(rows, n))}</figure>`).join('\n');
  const lastRows = names.map((n) => {
    const s = series(rows, n);
    const vals = s.map((p) => p[1]);
    return `<tr><td>${esc(n)}</td><td>${fmtNum(s.at(-1)![1])}</td><td>${fmtNum(Math.min(...vals))}</td><td>${fmtNum(Math.max(...vals))}</td><td>${s.at(-1)![0]}</td></tr>`;
  });
  const lastStep = rows.at(-1)?.step;
  const parts = [
    `<!doctype html><html><head><meta charset="utf-8"><title>${esc(title)}</title><style>${CSS}</style></head><body>`,
    `<h1>${esc(title)}</h1>`,
    `<p>${rows.length} logged steps${lastStep !== undefined ? `, last step ${lastStep}` : ''}.</p>`,
  ];
  if (results && Object.keys(results).length > 0) {
    parts.push('<h2>Results</h2>', kvTable(flatten(results)));
  }
  if (names.length > 0) {
    parts.push('<h2>Metrics</h2>', `<div class="plots">${plots}</div>`);
    parts.push('<h2>Last values</h2>', `<table><tr><th>metric</th><th>last</th><th>min</th><th>max</th><th>at step</th></tr>${lastRows.join('')}</table>`);
  } else parts.push('<p>No metrics logged yet.</p>');
  if (samples.length > 0) {
    const shown = samples.slice(-SAMPLE_ROWS);
    const cols = [...new Set(shown.flatMap((s) => Object.keys(s)))];
    const body = shown.map((s) => `<tr>${cols.map((c) => `<td>${cell(s[c])}</td>`).join('')}</tr>`).join('');
    parts.push(`<h2>Samples (last ${shown.length} of ${samples.length})</h2>`, `<table class="samples"><tr>${cols.map((c) => `<th>${esc(c)}</th>`).join('')}</tr>${body}</table>`);
  }
  parts.push('</body></html>');
  return parts.join('\n');
}

/** Render <stageDir>/report.html from its metrics.jsonl, samples.jsonl and results (results.json or eval.json). */
export function writeReport(stageDir: string, title = basename(stageDir)): string {
  const rows = readMetrics(join(stageDir, 'metrics.jsonl'));
  const samplesFile = join(stageDir, 'samples.jsonl');
  const samples = existsSync(samplesFile) ? parseJsonLines<Record<string, unknown>>(readFileSync(samplesFile, 'utf8'), samplesFile) : [];
  const out = join(stageDir, 'report.html');
  const results = RESULT_FILES.map((f) => readJson(join(stageDir, f))).find((r) => r !== null) ?? null;
  writeAtomic(out, renderReport({ title, rows, samples, results }));
  return out;
}

/** Stage folders of a run: those holding metrics.jsonl, samples.jsonl or results, in pipeline order
 * when the run manifest lists the stages, else by name. */
export function stageDirs(runDir: string): string[] {
  if (!existsSync(runDir)) return [];
  const dirs = readdirSync(runDir).filter((d) => {
    const p = join(runDir, d);
    return statSync(p).isDirectory() && ['metrics.jsonl', 'samples.jsonl', ...RESULT_FILES].some((f) => existsSync(join(p, f)));
  });
  const order = manifestStages(runDir);
  const rank = (d: string) => (order.includes(d) ? order.indexOf(d) : order.length);
  return dirs.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

/** Write every stage's report.html and an index.html linking them; returns the index path. */
export function writeRunReport(runDir: string): string {
  const stages = stageDirs(runDir);
  const records = readJson(join(runDir, 'manifest.json'))?.stages;
  const items = stages.map((name) => {
    writeReport(join(runDir, name), `${basename(runDir)} / ${name}`);
    const rows = readMetrics(join(runDir, name, 'metrics.jsonl'));
    const last = rows.at(-1);
    // The pipeline's headline numbers for the stage if it recorded them, else the last logged ones.
    const rec = records && !Array.isArray(records) ? (records[name] as { status?: unknown; summary?: Record<string, unknown> } | undefined) : undefined;
    const headline = rec?.summary && Object.keys(rec.summary).length ? rec.summary : Object.fromEntries(['loss', 'reward', 'accuracy'].map((k) => [k, last?.[k]]));
    const summary = Object.entries(headline)
      .filter(([, v]) => typeof v === 'number' || typeof v === 'string')
      .map(([k, v]) => `${esc(k)} ${typeof v === 'number' ? fmtNum(v) : esc(String(v))}`);
    if (typeof rec?.status === 'string') summary.unshift(esc(rec.status));
    const lossPlot = series(rows, 'loss');
    const rewardPlot = series(rows, 'reward');
    const mini = lossPlot.length > 1 ? svgPlot('loss', lossPlot) : rewardPlot.length > 1 ? svgPlot('reward', rewardPlot) : '';
    return `<li><a href="${encodeURI(name)}/report.html">${esc(name)}</a> — ${rows.length} steps${summary.length ? `; ${summary.join(', ')}` : ''}<br>${mini}</li>`;
  });
  const html = [
    `<!doctype html><html><head><meta charset="utf-8"><title>${esc(basename(runDir))}</title><style>${CSS}</style></head><body>`,
    `<h1>Run ${esc(basename(runDir))}</h1>`,
    stages.length ? `<ol class="stages">${items.join('\n')}</ol>` : '<p>No stage has logged anything yet.</p>',
    '</body></html>',
  ].join('\n');
  const out = join(runDir, 'index.html');
  writeAtomic(out, html);
  return out;
}

function manifestStages(runDir: string): string[] {
  for (const f of ['manifest.json', 'run.json']) {
    const m = readJson(join(runDir, f));
    const stages = m?.stages;
    if (Array.isArray(stages)) return stages.map((s) => (typeof s === 'string' ? s : String((s as { name?: unknown })?.name ?? '')));
    if (stages && typeof stages === 'object') return Object.keys(stages);
  }
  return [];
}

/** A JSON object file, or null when it is missing, unreadable or not an object. */
export function readJson(file: string): Record<string, any> | null {
  if (!existsSync(file)) return null;
  try {
    const v = JSON.parse(readFileSync(file, 'utf8')) as unknown;
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, any>) : null;
  } catch {
    return null;
  }
}

function flatten(obj: Record<string, unknown>, prefix = ''): [string, unknown][] {
  return Object.entries(obj).flatMap(([k, v]): [string, unknown][] =>
    v !== null && typeof v === 'object' && !Array.isArray(v) ? flatten(v as Record<string, unknown>, `${prefix}${k}.`) : [[prefix + k, v]],
  );
}

function kvTable(entries: [string, unknown][]): string {
  return `<table>${entries.map(([k, v]) => `<tr><td>${esc(k)}</td><td>${cell(v)}</td></tr>`).join('')}</table>`;
}

function cell(v: unknown): string {
  if (typeof v === 'number') return fmtNum(v);
  const text = typeof v === 'string' ? v : JSON.stringify(v) ?? '';
  const cut = text.length > 2000 ? text.slice(0, 2000) + ' …' : text;
  return typeof v === 'string' && (v.includes('\n') || v.length > 60) ? `<pre>${esc(cut)}</pre>` : esc(cut);
}

/** Numbers as people read them: 4 significant digits, exponent form for the very small or large. */
export function fmtNum(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v) && Math.abs(v) < 1e6) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e6) ? Number(v.toPrecision(3)).toExponential() : String(Number(v.toPrecision(4)));
}

export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Write through a temporary file and a rename, so a reader never sees half a file. */
export function writeAtomic(file: string, text: string): void {
  writeFileSync(`${file}.tmp`, text);
  renameSync(`${file}.tmp`, file);
}

/** Styles of svgPlot's classes; standalone SVG files embed them. */
export const SVG_CSS = `svg text{font:10px system-ui,sans-serif;fill:#555}svg .title{font-size:12px;fill:#222;font-weight:600}
.grid{stroke:#eee}.frame{fill:none;stroke:#bbb}.line{fill:none;stroke:#1f6feb;stroke-width:1.5}.dot{fill:#1f6feb}
.raw{fill:none;stroke:#1f6feb;stroke-opacity:.25;stroke-width:1}`;

const CSS = `body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}
.plots{display:flex;flex-wrap:wrap;gap:8px}figure{margin:0}
${SVG_CSS}
table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
pre{margin:0;white-space:pre-wrap;max-width:60ch;font-size:12px}`;
