// The expert-load heatmap of a MoE stage page: shares of the mean load per expert and step, columns
// summed when there are more steps than fit, colours around an even share, and the page showing one
// heatmap per MoE layer instead of a chart per expert.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { expertLoadHeatmaps, shareColor } from '../src/report/expert-load.ts';
import { renderStagePage } from '../src/report/pages.ts';
import { stageView } from '../src/report/charts.ts';
import type { LoggedRow } from '../src/metrics/logger.ts';
import { makeRun } from './fixtures/report/make-run.ts';

const root = mkdtempSync(join(tmpdir(), 'r1-load-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A pretrain row of a model with MoE layers 1 and 2 of 4 experts: layer 1 starts on expert 0 and
 * evens out, layer 2 is even throughout. */
function row(step: number, steps: number): LoggedRow {
  const t = step / steps;
  const l1 = [400 - 300 * t, 100 + (100 * t) / 3, (200 * t) / 3 + 50 * (1 - t), 100 * t + 50 * (1 - t)].map(Math.round); // step 10: 390, 101, 51, 52
  const out: LoggedRow & Record<string, number> = { step, loss: 5 - t, learning_rate: 1e-3, lm_loss: 4 - t, balance_loss: 1e-4 * (1 + t) };
  l1.forEach((n, e) => (out[`moe/load/1/${e}`] = n));
  for (let e = 0; e < 4; e++) out[`moe/load/2/${e}`] = 150;
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  out['moe/max_over_mean/1'] = Math.max(...l1) / mean(l1);
  out['moe/max_over_mean/2'] = 1;
  out['moe/max_over_mean'] = out['moe/max_over_mean/1'];
  return out;
}

describe('expert load heatmap', () => {
  it('gives each expert its load over the layer mean, per logged step', () => {
    const rows = [
      { step: 10, 'moe/load/3/0': 30, 'moe/load/3/1': 10, 'moe/load/3/2': 0, 'moe/load/3/3': 0 },
      { step: 20, 'moe/load/3/0': 10, 'moe/load/3/1': 10, 'moe/load/3/2': 10, 'moe/load/3/3': 10 },
    ];
    const [h, ...rest] = expertLoadHeatmaps(rows);
    expect(rest).toEqual([]);
    expect(h.layer).toBe(3);
    expect(h.steps).toEqual([10, 20]);
    expect(h.share).toEqual([
      [3, 1],
      [1, 1],
      [0, 1],
      [0, 1],
    ]);
  });

  it('sums consecutive steps into one column when there are more than fit, keeping the last step as its label', () => {
    const rows = Array.from({ length: 5 }, (_, i) => ({ step: i + 1, 'moe/load/1/0': i === 4 ? 0 : 3, 'moe/load/1/1': 1 }));
    const [h] = expertLoadHeatmaps(rows, 2);
    expect(h.steps).toEqual([3, 5]);
    // columns: steps 1-3 (loads 9 and 3, mean 6) and steps 4-5 (3 and 2, mean 2.5)
    expect(h.share[0]).toEqual([1.5, 1.2]);
    expect(h.share[1]).toEqual([0.5, 0.8]);
  });

  it('has nothing to show for a dense model', () => {
    expect(expertLoadHeatmaps([{ step: 1, loss: 2 }])).toEqual([]);
  });

  it('colours an even share white, an overloaded expert red and an idle one blue', () => {
    expect(shareColor(1)).toBe('rgb(255,255,255)');
    expect(shareColor(4)).toBe('rgb(209,36,47)');
    expect(shareColor(0)).toBe('rgb(31,111,235)');
    const [r, g, b] = shareColor(2).match(/\d+/g)!.map(Number);
    expect(r).toBeGreaterThan(b);
    expect(g).toBeLessThan(255);
  });

  it('puts one heatmap per MoE layer on the stage page and a balance chart, not a chart per expert', () => {
    const run = makeRun(join(root, 'moe'));
    const rows = Array.from({ length: 30 }, (_, i) => row((i + 1) * 10, 300));
    writeFileSync(join(run, 'pretrain', 'metrics.jsonl'), rows.map((r) => JSON.stringify(r) + '\n').join(''));
    const html = renderStagePage(join(run, 'pretrain'));
    expect(html).toContain('<h2>Expert load</h2>');
    expect(html.match(/<svg class="heatmap" data-layer="(\d+)"/g)).toEqual([
      '<svg class="heatmap" data-layer="1"',
      '<svg class="heatmap" data-layer="2"',
    ]);
    expect(html.match(/<rect /g)?.length).toBe(2 * 4 * 30);
    expect(html).toContain('expert 0, step 10: 2.63x the mean load');
    const view = stageView('pretrain', rows);
    const ids = view.charts.map((c) => c.id);
    expect(ids).toContain('main:balance');
    expect(ids.some((id) => id.includes('moe/load/'))).toBe(false);
    expect(view.numbers.some((n) => n.key.startsWith('moe/load/'))).toBe(false);
    const balance = view.charts.find((c) => c.id === 'main:balance')!;
    // layer 2 never changes, so only the worst layer and layer 1 are drawn
    expect(balance.series.filter((s) => s.main).map((s) => s.key)).toEqual(['moe/max_over_mean', 'moe/max_over_mean/1']);
  });

  it('leaves a dense stage page without the section', () => {
    const run = makeRun(join(root, 'dense'));
    expect(renderStagePage(join(run, 'pretrain'))).not.toContain('Expert load');
  });
});
