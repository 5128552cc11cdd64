// The report pages of a run folder: each stage's report.html (and samples.html) and the run's
// index.html, drawn by pages.ts (uPlot charts bundled into each page). What is drawn here: the
// inline-SVG plot that the README results block (results.ts) uses for images GitHub can show, where
// no script runs.
import { basename } from 'node:path';
import { esc, fmtNum } from './common.ts';
import { writeRunPages, writeStagePages } from './pages.ts';

export { esc, fmtNum, readJson, series, stageDirs, writeAtomic } from './common.ts';

const MAX_POINTS = 800;

/** At most ~max points: the min and max of each bucket, so spikes survive the thinning. */
export function thin(points: [number, number][], max = MAX_POINTS): [number, number][] {
  if (points.length <= max) return points;
  const per = Math.ceil(points.length / (max / 2));
  const out: [number, number][] = [];
  for (let i = 0; i < points.length; i += per) {
    const bucket = points.slice(i, i + per);
    let lo = bucket[0],
      hi = bucket[0];
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
  const W = 360,
    H = 200,
    L = 56,
    R = 10,
    T = 22,
    B = 28;
  const pts = thin(points);
  const xs = pts.map((p) => p[0]),
    ys = pts.map((p) => p[1]);
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (x1 === x0) [x0, x1] = [x0 - 1, x1 + 1];
  if (y1 === y0) [y0, y1] = [y0 - (Math.abs(y0) || 1) * 0.1, y1 + (Math.abs(y1) || 1) * 0.1];
  const sx = (x: number) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
  const sy = (y: number) => T + (1 - (y - y0) / (y1 - y0)) * (H - T - B);
  const yTicks = ticks(y0, y1).map(
    (t) =>
      `<line x1="${L}" x2="${W - R}" y1="${sy(t).toFixed(1)}" y2="${sy(t).toFixed(1)}" class="grid"/><text x="${L - 4}" y="${(sy(t) + 3).toFixed(1)}" text-anchor="end">${fmtNum(t)}</text>`,
  );
  const xTicks = ticks(x0, x1).map((t) => `<text x="${sx(t).toFixed(1)}" y="${H - B + 14}" text-anchor="middle">${fmtNum(t)}</text>`);
  const polyline = (p: [number, number][], cls: string) =>
    `<polyline points="${p.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ')}" class="${cls}"/>`;
  const line =
    pts.length === 1
      ? `<circle cx="${sx(xs[0]).toFixed(1)}" cy="${sy(ys[0]).toFixed(1)}" r="3" class="dot"/>`
      : smooth && smooth.length > 1
        ? polyline(pts, 'raw') + polyline(thin(smooth), 'line')
        : polyline(pts, 'line');
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

/** Render <stageDir>/report.html (and samples.html when the stage wrote samples); returns report.html's path.
 * The title is the folder names: kept as a parameter for callers of the earlier API. */
export function writeReport(stageDir: string, _title = basename(stageDir)): string {
  return writeStagePages(stageDir);
}

/** Write every stage's pages and the run's index.html; returns the index path. */
export function writeRunReport(runDir: string): string {
  return writeRunPages(runDir);
}

/** Styles of svgPlot's classes; standalone SVG files embed them. */
export const SVG_CSS = `svg text{font:10px system-ui,sans-serif;fill:#555}svg .title{font-size:12px;fill:#222;font-weight:600}
.grid{stroke:#eee}.frame{fill:none;stroke:#bbb}.line{fill:none;stroke:#1f6feb;stroke-width:1.5}.dot{fill:#1f6feb}
.raw{fill:none;stroke:#1f6feb;stroke-opacity:.25;stroke-width:1}`;
