// The report pages: a run's index.html (the pipeline and its eval results first), a stage's
// report.html (its headline charts first, constants as numbers) and samples.html (the completions
// browser), and the page that overlays several runs. Each render function returns the HTML; the
// write functions put it in the run folder, `r1 serve` sends it fresh on each request.
import { existsSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import type { LoggedRow } from '../metrics/logger.ts';
import { lastMean, PALETTE, stageView, type Chart, type ChartSeries } from './charts.ts';
import {
  esc,
  fmtDuration,
  fmtNum,
  manifestRecords,
  readResults,
  readSamples,
  readStageRows,
  recipeStages,
  stageDirs,
  stageType,
  writeAtomic,
  type StageRecord,
  type StageType,
  readJson,
} from './common.ts';
import { expertLoadSection } from './expert-load.ts';
import { crumbs, page } from './html.ts';
import { samplesData } from './samples.ts';

export type RenderOptions = { live?: boolean };

const pct = (v: number) => `${(v * 100).toFixed(1)}%`;

/** What one stage card of the run page shows. */
export type StageCard = {
  name: string;
  type: StageType;
  status: 'done' | 'running' | 'pending';
  seconds: number | null;
  /** Steps the stage has run: its last logged step (rows are logged every logging_steps, so counting
   * them undercounts), or the summary's count once done; null for a stage without steps (an eval). */
  steps: number | null;
  headline: { label: string; value: number; percent: boolean } | null;
  secondary: { label: string; value: number; percent: boolean }[];
  spark: number[];
  hasPage: boolean;
};

/** The one number that matters for each kind of stage, and one or two beside it. */
function headlineOf(
  type: StageType,
  rows: LoggedRow[],
  results: Record<string, unknown> | null,
  summary: Record<string, unknown>,
): Pick<StageCard, 'headline' | 'secondary' | 'spark'> {
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  const item = (label: string, v: unknown, percent = false) => (num(v) === null ? [] : [{ label, value: num(v)!, percent }]);
  const sparkOf = (key: string) => rows.flatMap((r) => (typeof r[key] === 'number' ? [r[key] as number] : []));
  const n = Math.min(10, rows.length);
  if (type === 'grpo') {
    // The accuracy reward is a rate (each completion scores 0 or 1): the headline, as a percentage, like
    // the eval cards. The total reward is a weighted sum of any rewards, so a plain number beside it.
    const last = `(mean of last ${n} steps)`;
    const acc = item(`accuracy ${last}`, lastMean(rows, 'rewards/accuracy/mean'), true);
    const reward = item(acc.length ? 'reward' : `reward ${last}`, lastMean(rows, 'reward'));
    const [h, ...rest] = [...acc, ...reward];
    return {
      headline: h ?? null,
      secondary: [
        ...rest,
        ...item('format', lastMean(rows, 'rewards/format/mean'), true),
        ...item('length', lastMean(rows, 'completions/mean_length')),
      ],
      spark: sparkOf(acc.length ? 'rewards/accuracy/mean' : 'reward'),
    };
  }
  if (type === 'dpo') {
    const [h] = item(`preference accuracy (last ${n} steps)`, lastMean(rows, 'rewards/accuracies'), true);
    return {
      headline: h ?? null,
      secondary: [...item('margin', lastMean(rows, 'rewards/margins')), ...item('final loss', lastMean(rows, 'loss', 1))],
      spark: sparkOf('rewards/accuracies'),
    };
  }
  if (type === 'eval') {
    const r = results ?? summary;
    const maj = Object.keys(r).find((k) => /^maj@\d+$/.test(k));
    const [h] = item('pass@1', r['pass@1'], true);
    return { headline: h ?? null, secondary: [...(maj ? item(maj, r[maj], true) : []), ...item('format', r.format_rate, true)], spark: [] };
  }
  if (type === 'rejection-sampling') {
    const last: Partial<LoggedRow> = rows.at(-1) ?? {};
    const [h] = item('acceptance rate', last.acceptance_rate ?? summary.acceptance_rate, true);
    return { headline: h ?? null, secondary: item('rows written', last.rows_written ?? summary.rows_written), spark: [] };
  }
  const [h] = item('final loss', lastMean(rows, 'loss', 1) ?? summary.final_loss);
  return {
    headline: h ?? null,
    secondary: [
      ...item('held-out loss', lastMean(rows, 'eval/loss', 1) ?? summary.eval_loss),
      ...item('tokens', lastMean(rows, 'num_tokens', 1)),
    ],
    spark: sparkOf('loss'),
  };
}

/** Steps a stage has run (see StageCard.steps). */
function stepsRun(type: StageType, rows: LoggedRow[], rec: StageRecord): number | null {
  if (type === 'eval' || type === 'rejection-sampling') return null;
  const lastLogged = rows.reduce<number | null>(
    (most, r) => (Number.isFinite(r.step) && r.step > (most ?? -Infinity) ? r.step : most),
    null,
  );
  const fromSummary = rec.status === 'done' ? rec.summary?.steps : undefined;
  if (typeof fromSummary !== 'number' || !Number.isFinite(fromSummary)) return lastLogged;
  return Math.max(fromSummary, lastLogged ?? 0);
}

/** The stages of a run, in pipeline order, with those the recipe lists but that have not started yet. */
export function stageCards(runDir: string, now = Date.now()): StageCard[] {
  const records = manifestRecords(runDir);
  const withFiles = new Set(stageDirs(runDir));
  const names = [...new Set([...recipeStages(runDir).map((s) => s.name), ...Object.keys(records), ...withFiles])];
  const order = stageDirs(runDir);
  if (!recipeStages(runDir).length) names.sort((a, b) => (order.indexOf(a) + 1 || 1e9) - (order.indexOf(b) + 1 || 1e9));
  return names.map((name) => {
    const dir = join(runDir, name);
    const rows = readStageRows(dir);
    const rec: StageRecord = records[name] ?? {};
    const type = stageType(runDir, name, rows);
    const status = rec.status === 'done' ? 'done' : rec.status === 'running' || withFiles.has(name) ? 'running' : 'pending';
    const start = rec.started_at ? Date.parse(rec.started_at) : NaN;
    const end = rec.finished_at ? Date.parse(rec.finished_at) : status === 'running' ? now : NaN;
    const lastElapsed = rows.at(-1)?.elapsed_s;
    const seconds = Number.isFinite(end - start) ? (end - start) / 1000 : typeof lastElapsed === 'number' ? lastElapsed : null;
    return {
      name,
      type,
      status,
      seconds,
      steps: stepsRun(type, rows, rec),
      hasPage: withFiles.has(name),
      ...headlineOf(type, rows, readResults(dir), rec.summary ?? {}),
    };
  });
}

/** A tiny line of the headline metric (moving average of 5), drawn as inline SVG: no script needed. */
function sparkline(values: number[]): string {
  if (values.length < 2) return '';
  const sm = values.map((_, i) => {
    const part = values.slice(Math.max(0, i - 2), i + 3);
    return part.reduce((a, b) => a + b, 0) / part.length;
  });
  const step = Math.max(1, Math.floor(sm.length / 120));
  const pts = sm.filter((_, i) => i % step === 0 || i === sm.length - 1);
  const lo = Math.min(...pts),
    hi = Math.max(...pts),
    W = 180,
    H = 34;
  const xy = pts.map(
    (v, i) => `${((i / (pts.length - 1)) * W).toFixed(1)},${(H - 2 - (hi > lo ? (v - lo) / (hi - lo) : 0.5) * (H - 4)).toFixed(1)}`,
  );
  return `<svg class="spark" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" aria-hidden="true"><polyline points="${xy.join(' ')}" fill="none" stroke="#1f6feb" stroke-width="1.5"/></svg>`;
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

const show = (h: { value: number; percent: boolean }) => (h.percent ? pct(h.value) : fmtNum(h.value));

function stageCardHtml(c: StageCard): string {
  const inner = [
    `<div class="name">${esc(c.name)}<span class="badge ${c.status}">${c.status}</span></div>`,
    `<div class="type">${esc(c.type)}${c.steps !== null ? ` · ${plural(c.steps, 'step')}` : ''}${c.seconds !== null ? ` · ${fmtDuration(c.seconds)}` : ''}</div>`,
    c.headline ? `<div class="big">${show(c.headline)}</div><div class="label">${esc(c.headline.label)}</div>` : '<div class="big">–</div>',
    c.secondary.length ? `<div class="more">${c.secondary.map((s) => `${esc(s.label)} ${show(s)}`).join(' · ')}</div>` : '',
    sparkline(c.spark),
  ].join('');
  return c.hasPage
    ? `<a class="stage" data-stage="${esc(c.name)}" href="${encodeURIComponent(c.name)}/report.html">${inner}</a>`
    : `<div class="stage" data-stage="${esc(c.name)}">${inner}</div>`;
}

/** A finished stage's line in the log of `r1 run`: its time, steps and headline numbers as the run
 * page's card shows them ("done in 1m59s: 150 steps · final loss 0.9233 · held-out loss 1.102").
 * The full summary stays in manifest.json. */
export function stageDoneLine(runDir: string, stage: string): string {
  const card = stageCards(runDir).find((c) => c.name === stage);
  if (!card) return 'done';
  const facts = [
    ...(card.steps !== null ? [plural(card.steps, 'step')] : []),
    ...[card.headline, ...card.secondary].flatMap((h) => (h ? [`${h.label} ${show(h)}`] : [])),
  ];
  const results = readResults(join(runDir, stage));
  const size =
    card.type === 'eval' && typeof results?.prompts === 'number' && typeof results?.k === 'number'
      ? ` (${plural(results.prompts, 'prompt')} × ${plural(results.k, 'sample')})`
      : '';
  return `done${card.seconds !== null ? ` in ${fmtDuration(card.seconds)}` : ''}${facts.length ? `: ${facts.join(' · ')}` : ''}${size}`;
}

/** The value at a path of keys through nested JSON objects, or undefined where one is missing. */
const fieldAt = (v: unknown, ...path: string[]): unknown =>
  path.reduce<unknown>((o, k) => (o !== null && typeof o === 'object' ? (o as Record<string, unknown>)[k] : undefined), v);

export type EvalColumn = { label: string; href?: string; results: Record<string, unknown> };

/** One table of every eval: a row per measure, a column per eval stage, each cell with its change from
 * the column before (percentage points for rates). By task and by language where the evals have them. */
export function evalTable(cols: EvalColumn[]): string {
  if (!cols.length) return '';
  type Row = { label: string; get: (r: Record<string, unknown>) => unknown; rate: boolean; group?: boolean };
  const keysMatching = (re: RegExp) =>
    [...new Set(cols.flatMap((c) => Object.keys(c.results).filter((k) => re.test(k))))].sort(
      (a, b) => Number(a.split('@')[1]) - Number(b.split('@')[1]),
    );
  const rows: Row[] = [
    { label: 'pass@1', get: (r) => r['pass@1'], rate: true },
    ...keysMatching(/^maj@\d+$/).map((k) => ({ label: k, get: (r: Record<string, unknown>) => r[k], rate: true })),
    ...keysMatching(/^pass@\d+$/)
      .filter((k) => k !== 'pass@1')
      .map((k) => ({ label: k, get: (r: Record<string, unknown>) => r[k], rate: true })),
    { label: 'format', get: (r) => r.format_rate, rate: true },
    { label: 'language consistency', get: (r) => r.language_consistency, rate: true },
    { label: 'mean length (tokens)', get: (r) => r.mean_length, rate: false },
    {
      label: 'samples (prompts × k)',
      get: (r) => (typeof r.prompts === 'number' && typeof r.k === 'number' ? `${r.prompts} × ${r.k}` : undefined),
      rate: false,
    },
  ];
  for (const [g, title] of [
    ['by_task', 'pass@1 by task'],
    ['by_language', 'pass@1 by language'],
  ] as const) {
    const keys = [...new Set(cols.flatMap((c) => Object.keys((c.results[g] as object | undefined) ?? {})))].sort();
    if (!keys.length) continue;
    rows.push({ label: title, get: () => undefined, rate: false, group: true });
    for (const k of keys) rows.push({ label: `  ${k}`, get: (r) => fieldAt(r, g, k, 'pass@1'), rate: true });
  }
  const present = rows.filter((row) => row.group || cols.some((c) => row.get(c.results) !== undefined && row.get(c.results) !== null));
  const head = `<tr><th></th>${cols.map((c) => `<th class="num">${c.href ? `<a href="${esc(c.href)}">${esc(c.label)}</a>` : esc(c.label)}</th>`).join('')}</tr>`;
  const body = present.map((row) => {
    if (row.group) return `<tr class="group"><td colspan="${cols.length + 1}">${esc(row.label)}</td></tr>`;
    const cells = cols.map((c, i) => {
      const v = row.get(c.results);
      if (typeof v === 'string') return `<td class="num">${esc(v)}</td>`;
      if (typeof v !== 'number' || !Number.isFinite(v)) return '<td class="num">–</td>';
      const prev = i > 0 ? row.get(cols[i - 1].results) : undefined;
      let delta = '';
      if (typeof prev === 'number' && Number.isFinite(prev)) {
        const d = row.rate ? (v - prev) * 100 : v - prev;
        const cls = Math.abs(d) < 0.05 ? 'flat' : !row.rate ? 'flat' : d > 0 ? 'up' : 'down';
        delta = `<span class="delta ${cls}">${d >= 0 ? '+' : '−'}${Math.abs(d).toFixed(1)}${row.rate ? ' pp' : ''}</span>`;
      }
      return `<td class="num">${row.rate ? pct(v) : fmtNum(v)}${delta}</td>`;
    });
    return `<tr><td>${esc(row.label).replace(/^ {2}/, '&nbsp;&nbsp;&nbsp;')}</td>${cells.join('')}</tr>`;
  });
  return `<table class="evals">${head}${body.join('')}</table>`;
}

/** The eval stages of a run as table columns (label: the eval's own label, else the stage name). */
export function evalColumns(runDir: string, hrefPrefix = '', labelPrefix = ''): EvalColumn[] {
  return stageDirs(runDir).flatMap((stage) => {
    const results = readJson(join(runDir, stage, 'eval.json'));
    if (!results) return [];
    const label = typeof results.label === 'string' && results.label.trim() ? results.label.trim() : stage;
    return [{ label: labelPrefix + label, href: `${hrefPrefix}${encodeURIComponent(stage)}/report.html`, results }];
  });
}

/** runs/<name>/index.html. */
export function renderRunPage(runDir: string, opts: RenderOptions = {}): string {
  const name = basename(resolve(runDir));
  const manifest = readJson(join(runDir, 'manifest.json'));
  const cards = stageCards(runDir);
  const evals = evalColumns(runDir);
  const facts = manifest
    ? [
        manifest.recipe_file ? `recipe ${basename(String(manifest.recipe_file))}` : '',
        `seed ${manifest.seed}`,
        manifest.backend ? `backend ${manifest.backend}` : '',
      ].filter(Boolean)
    : [];
  const main = [
    `<h1>Run ${esc(name)}</h1>`,
    facts.length ? `<p class="sub">${esc(facts.join(' · '))}</p>` : '',
    '<h2>Pipeline</h2>',
    cards.length
      ? `<div class="pipeline">${cards.map(stageCardHtml).join('<span class="arrow">→</span>')}</div>`
      : '<p class="empty">No stage has started yet.</p>',
    evals.length
      ? `<h2>Eval results</h2>${evalTable(evals)}<p class="sub">Each change is from the eval to its left (pp: percentage points).</p>`
      : '',
  ].join('\n');
  return page({
    title: `${name} · r1kit run`,
    nav: crumbs([[name, null]]),
    main,
    data: { page: 'run', live: opts.live, running: cards.some((c) => c.status === 'running') },
  });
}

function chartGrid(charts: Chart[]): string {
  return `<div class="charts">${charts.map((c) => `<div class="chart" data-chart="${esc(c.id)}"><h3>${esc(c.title)}</h3><div class="plot"></div>${c.note ? `<p class="note">${esc(c.note)}</p>` : ''}</div>`).join('')}</div>`;
}

/** The sub-title: the stage type; the steps run (and how many were logged, when fewer), or an eval's
 * prompts × samples; the stage's time (the manifest's start to end: an eval logs its one row at the end).
 * The last logged step carries the id the live tests and readers look for. */
function stageSubtitle(type: StageType, rows: LoggedRow[], results: Record<string, unknown> | null, card: StageCard | undefined): string {
  const facts = [esc(type)];
  const last = rows.at(-1)?.step;
  if (type === 'eval') {
    if (typeof results?.prompts === 'number' && typeof results?.k === 'number')
      facts.push(esc(`${plural(results.prompts, 'prompt')} × ${plural(results.k, 'sample')}`));
  } else if (card?.steps != null) {
    const logged = rows.length && rows.length < card.steps ? ` (${rows.length} logged)` : '';
    facts.push(
      last === card.steps
        ? `<b id="r1-last-step">${last}</b> ${card.steps === 1 ? 'step' : 'steps'}${logged}`
        : `${plural(card.steps, 'step')}${logged}`,
    );
    if (last !== undefined && last !== card.steps) facts.push(`last logged step <b id="r1-last-step">${last}</b>`);
  }
  if (card?.seconds != null) facts.push(fmtDuration(card.seconds));
  return facts.join(' · ');
}

/** runs/<name>/<stage>/report.html. */
export function renderStagePage(stageDir: string, opts: RenderOptions = {}): string {
  const runDir = resolve(stageDir, '..');
  const stage = basename(resolve(stageDir));
  const run = basename(runDir);
  const rows = readStageRows(stageDir);
  const type = stageType(runDir, stage, rows);
  const results = readResults(stageDir);
  const record = manifestRecords(runDir)[stage];
  const view = stageView(type, rows);
  const main = view.charts.filter((c) => c.id.startsWith('main:'));
  const more = view.charts.filter((c) => !c.id.startsWith('main:'));
  const [card] = stageCards(runDir).filter((c) => c.name === stage);
  const hasSamples = existsSync(join(stageDir, 'samples.jsonl'));
  const parts = [
    `<h1>${esc(stage)} <span class="badge ${card?.status ?? 'running'}">${esc(card?.status ?? (record?.status || 'running'))}</span></h1>`,
    `<p class="sub">${stageSubtitle(type, rows, results, card)}${hasSamples ? ` · <a href="samples.html">browse the samples →</a>` : ''}</p>`,
  ];
  if (card?.headline)
    parts.push(
      `<div class="numbers">${[card.headline, ...card.secondary].map((h) => `<div class="number"><b>${show(h)}</b><div>${esc(h.label)}</div></div>`).join('')}</div>`,
    );
  if (type === 'eval' && results) parts.push('<h2>Results</h2>', evalTable([{ label: stage, results }]));
  if (main.length) parts.push('<h2>Training</h2>', chartGrid(main));
  const load = expertLoadSection(rows);
  if (load) parts.push(load);
  if (more.length) parts.push(`<h2>${main.length ? 'More metrics' : 'Metrics'}</h2>`, chartGrid(more));
  if (view.numbers.length) {
    parts.push(
      '<h2>Constants and one-off values</h2>',
      `<div class="numbers">${view.numbers.map((n) => `<div class="number" data-number="${esc(n.key)}"><b>${fmtNum(n.value)}</b><div>${esc(n.key)} · ${esc(n.note)}</div></div>`).join('')}</div>`,
    );
  }
  if (results && type !== 'eval') parts.push('<h2>Results</h2>', kvTable(results));
  if (!rows.length && !results) parts.push('<p class="empty">No metrics logged yet.</p>');
  return page({
    title: `${stage} · ${run} · r1kit`,
    nav: crumbs([
      [run, '../index.html'],
      [stage, null],
    ]),
    main: parts.join('\n'),
    data: { page: 'stage', live: opts.live, running: card?.status === 'running', charts: view.charts },
  });
}

function kvTable(obj: Record<string, unknown>, prefix = ''): string {
  const flat = (o: Record<string, unknown>, p: string): [string, unknown][] =>
    Object.entries(o).flatMap(([k, v]): [string, unknown][] =>
      v !== null && typeof v === 'object' && !Array.isArray(v) ? flat(v as Record<string, unknown>, `${p}${k}.`) : [[p + k, v]],
    );
  return `<table>${flat(obj, prefix)
    .map(([k, v]) => `<tr><td>${esc(k)}</td><td class="num">${typeof v === 'number' ? fmtNum(v) : esc(JSON.stringify(v) ?? '')}</td></tr>`)
    .join('')}</table>`;
}

/** runs/<name>/<stage>/samples.html: the filters stay outside the swapped part, the rows are drawn by the script. */
export function renderSamplesPage(stageDir: string, opts: RenderOptions = {}): string {
  const runDir = resolve(stageDir, '..');
  const stage = basename(resolve(stageDir));
  const run = basename(runDir);
  const data = samplesData(readSamples(stageDir));
  const controls = `<div class="controls" id="r1-controls">
<label>step <select id="f-step"><option value="">all</option></select></label>
<label>reward ≥ <input id="f-min" type="number" step="any"></label>
<label>≤ <input id="f-max" type="number" step="any"></label>
<label>finish <select id="f-finish"><option value="">any</option><option>stop</option><option>length</option></select></label>
<label>text <input id="f-text" type="search" placeholder="in prompt or completion"></label>
<label><input id="f-groups" type="checkbox"> best vs worst of each group</label>
<span id="r1-count"></span></div>`;
  const main = [
    `<h1>Samples of ${esc(stage)}</h1>`,
    `<p class="sub">${plural(data.rows.length, 'completion')}${data.steps.length > 1 ? ` from ${data.steps.length} steps` : ''}${data.dropped ? ` (the earliest ${data.dropped} of ${data.total} left out to keep the page light)` : ''}. Rewards coloured from red (the lowest seen) to green (the highest).</p>`,
    '<div id="r1-samples"></div>',
  ].join('\n');
  return page({
    title: `samples · ${stage} · ${run} · r1kit`,
    nav: crumbs([
      [run, '../index.html'],
      [stage, 'report.html'],
      ['samples', null],
    ]),
    controls,
    main,
    data: { page: 'samples', live: opts.live, samples: data },
  });
}

/** Several runs' curves on the same axes, stage by stage (matched by name), and their evals in one table. */
export function renderComparePage(runDirs: string[], opts: RenderOptions & { hrefs?: string[] } = {}): string {
  const names = runDirs.map((d) => basename(resolve(d)));
  const hrefs = opts.hrefs ?? runDirs.map(() => '');
  const evals = runDirs.flatMap((d, i) => evalColumns(d, hrefs[i], `${names[i]} / `));
  const stages = [...new Set(runDirs.flatMap((d) => stageDirs(d)))];
  const charts: Chart[] = [];
  for (const stage of stages) {
    const views = runDirs.map((d) => {
      const rows = readStageRows(join(d, stage));
      return rows.length ? stageView(stageType(d, stage, rows), rows) : null;
    });
    const ids = [...new Set(views.flatMap((v) => v?.charts.map((c) => c.id) ?? []))];
    for (const id of ids) {
      const per = views.map((v) => v?.charts.find((c) => c.id === id) ?? null);
      const title = per.find((c) => c)!.title;
      const x = [...new Set(per.flatMap((c) => c?.x ?? []))].sort((a, b) => a - b);
      const series: ChartSeries[] = per.flatMap((c, r) => {
        if (!c) return [];
        const at = new Map(c.x.map((s, i) => [s, i]));
        return c.series
          .filter((s) => s.main)
          .map((s, j) => ({
            ...s,
            label: `${names[r]} · ${s.label}`,
            color: PALETTE[r % PALETTE.length],
            dash: j ? [6, 3] : undefined,
            faint: false,
            values: x.map((step) => (at.has(step) ? s.values[at.get(step)!] : null)),
          }));
      });
      charts.push({ id: `${stage}:${id}`, title: `${stage}: ${title}`, x, series });
    }
  }
  const main = [
    `<h1>${names.map((n, i) => `<span style="color:${PALETTE[i % PALETTE.length]}">${esc(n)}</span>`).join(' vs ')}</h1>`,
    `<p class="sub">${names.map((n, i) => `<a href="${esc(hrefs[i])}index.html">${esc(n)}</a>`).join(' · ')}</p>`,
    evals.length ? `<h2>Eval results</h2>${evalTable(evals)}` : '',
    charts.length ? `<h2>Curves</h2>${chartGrid(charts)}` : '<p class="empty">No stage of these runs logged metrics.</p>',
  ].join('\n');
  return page({
    title: `${names.join(' vs ')} · r1kit`,
    nav: crumbs([['compare', null]]),
    main,
    data: { page: 'compare', live: opts.live, charts },
  });
}

/** Write every stage's report.html (and samples.html where it has samples) and the run's index.html; returns the index path. */
export function writeRunPages(runDir: string): string {
  for (const stage of stageDirs(runDir)) writeStagePages(join(runDir, stage));
  const out = join(runDir, 'index.html');
  writeAtomic(out, renderRunPage(runDir));
  return out;
}

/** Write <stageDir>/report.html and, when the stage has samples, samples.html; returns report.html's path. */
export function writeStagePages(stageDir: string): string {
  const out = join(stageDir, 'report.html');
  writeAtomic(out, renderStagePage(stageDir));
  if (existsSync(join(stageDir, 'samples.jsonl'))) writeAtomic(join(stageDir, 'samples.html'), renderSamplesPage(stageDir));
  return out;
}
