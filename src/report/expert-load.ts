// The expert-load heatmap of a MoE stage page: for each MoE layer, a row per routed expert and a
// column per logged step (or per run of steps, when there are more than fit), coloured by the
// expert's load over the layer's mean load. White is an even share, red an overloaded expert, blue an
// idle one; a balanced router fades to white as the bias update works. Drawn as inline SVG by the
// server, so the page needs no script for it. Nothing is ever dropped (there is no capacity limit):
// each column's loads add up to the step's tokens x experts per token.
import type { LoggedRow } from '../metrics/logger.ts';

const LOAD = /^moe\/load\/(\d+)\/(\d+)$/;

export type LoadHeatmap = {
  layer: number;
  /** The last step of each column. */
  steps: number[];
  /** [expert][column]: the expert's load over the layer's mean load in that column (1 = even). */
  share: number[][];
};

/** Is this key one expert's load (`moe/load/<layer>/<expert>`)? The heatmap shows these, not charts. */
export const isExpertLoad = (key: string) => LOAD.test(key);

/** One heatmap per MoE layer from the logged `moe/load/<layer>/<expert>` counts; at most `maxColumns`
 * columns, consecutive logged steps summed into one where there are more. Empty for a dense model. */
export function expertLoadHeatmaps(rows: LoggedRow[], maxColumns = 160): LoadHeatmap[] {
  const layers = new Map<number, number>(); // layer -> number of experts
  for (const r of rows)
    for (const k of Object.keys(r)) {
      const m = LOAD.exec(k);
      if (m) layers.set(Number(m[1]), Math.max(layers.get(Number(m[1])) ?? 0, Number(m[2]) + 1));
    }
  const logged = rows.filter((r) => Object.keys(r).some(isExpertLoad));
  const per = Math.max(1, Math.ceil(logged.length / maxColumns));
  const buckets = Array.from({ length: Math.ceil(logged.length / per) }, (_, i) => logged.slice(i * per, (i + 1) * per));
  return [...layers]
    .sort(([a], [b]) => a - b)
    .map(([layer, experts]) => {
      const share = Array.from({ length: experts }, () => [] as number[]);
      for (const bucket of buckets) {
        const load = Array.from({ length: experts }, (_, e) => bucket.reduce((a, r) => a + (Number(r[`moe/load/${layer}/${e}`]) || 0), 0));
        const mean = load.reduce((a, b) => a + b, 0) / experts;
        load.forEach((n, e) => share[e].push(mean > 0 ? n / mean : 1));
      }
      return { layer, steps: buckets.map((b) => b.at(-1)!.step), share };
    });
}

/** Diverging colour for a share of the mean load: white at 1, red toward 4x, blue toward 0 (log scale). */
export function shareColor(share: number): string {
  const t = Math.max(-1, Math.min(1, Math.log2(Math.max(share, 1 / 16)) / 2)); // 1/4x .. 4x -> -1 .. 1
  const fade = (c: number) => Math.round(255 + (c - 255) * Math.abs(t));
  const [r, g, b] = t >= 0 ? [209, 36, 47] : [31, 111, 235];
  return `rgb(${fade(r)},${fade(g)},${fade(b)})`;
}

/** One layer's heatmap as SVG: experts down, steps across, a hover title on every cell. */
export function heatmapSvg(h: LoadHeatmap): string {
  const cols = h.steps.length,
    rows = h.share.length;
  const cw = Math.max(2, Math.min(12, Math.floor(720 / Math.max(cols, 1)))),
    ch = 14,
    left = 30,
    top = 4;
  const W = left + cols * cw + 4,
    H = top + rows * ch + 18;
  const cells = h.share.flatMap((line, e) =>
    line.map(
      (s, c) =>
        `<rect x="${left + c * cw}" y="${top + e * ch}" width="${cw}" height="${ch - 1}" fill="${shareColor(s)}"><title>expert ${e}, step ${h.steps[c]}: ${s.toFixed(2)}x the mean load</title></rect>`,
    ),
  );
  const labels = h.share.map((_, e) => `<text x="${left - 4}" y="${top + e * ch + ch - 4}" text-anchor="end">${e}</text>`);
  const axis = [
    `<text x="${left}" y="${H - 4}">step ${h.steps[0] ?? ''}</text>`,
    `<text x="${left + cols * cw}" y="${H - 4}" text-anchor="end">step ${h.steps.at(-1) ?? ''}</text>`,
  ];
  return `<svg class="heatmap" data-layer="${h.layer}" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-size="10" fill="#656d76" role="img" aria-label="expert load of layer ${h.layer}">${[...cells, ...labels, ...axis].join('')}</svg>`;
}

/** The heatmaps section of a stage page, or '' for a stage without expert loads. */
export function expertLoadSection(rows: LoggedRow[]): string {
  const maps = expertLoadHeatmaps(rows);
  if (!maps.length) return '';
  const key = [0.25, 0.5, 1, 2, 4].map((s) => `<span class="r" style="background:${shareColor(s)}">${s}x</span>`).join('');
  return [
    '<h2>Expert load</h2>',
    `<p class="sub">Each routed expert's share of its layer's tokens over the mean share (1x = even), per logged step. ${key} No token is dropped: there is no capacity limit.</p>`,
    `<div class="charts">${maps.map((h) => `<div class="chart"><h3>layer ${h.layer} · ${h.share.length} experts</h3>${heatmapSvg(h)}</div>`).join('')}</div>`,
  ].join('\n');
}
