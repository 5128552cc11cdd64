// The report pages opened in a real browser (Debian's chromium, driven by puppeteer-core): no console
// errors; the charts named in the README are there and drawn with data; the samples filters narrow
// the rows; a page served by `r1 serve` shows a step a run writes after it was opened. Without
// chromium these tests are skipped with one line saying so; with CI=true that is a failure.
//
// It also takes the screenshots in docs/ (the run page, the GRPO page, the samples browser), of the
// test's own tiny run or of any run folder:
//   R1_SCREENSHOT_RUN=runs/r1-zero-quick R1_SCREENSHOT_DIR=docs npx vitest run tests/report-browser.test.ts -t screenshots
// R1_SCREENSHOT_RUN: the run folder (copied without its checkpoints and its pages drawn afresh, so the
// folder itself is untouched); R1_SCREENSHOT_DIR: where the PNGs go (default: a temporary folder, so a
// plain test run checks the step without changing docs/).
import { appendFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser, Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { renderSamplesPage, stageCards, writeRunPages } from '../src/report/pages.ts';
import { serveRuns, type RunningServer } from '../src/report/serve.ts';
import { GENERATIONS, GROUPS_PER_STEP, GRPO_STEPS, grpoRow, grpoSamples, makeRun } from './fixtures/report/make-run.ts';

// The callbacks below run in the page; the project compiles without the DOM library, so its few names
// are declared here, as far as the callbacks use them: uPlot's plots as the report keeps them
// (window.r1.plots), and the element properties the checks read.
type PlotAxis = { side: number; font: string[]; _values?: unknown[]; ticks: { size: number }; gap: number; _size: number };
type Plot = {
  axes: PlotAxis[];
  ctx: { font: string; measureText(text: string): { width: number } };
  series: { label: string }[];
  bands: unknown[];
  data: number[][];
};
declare const window: { r1: { plots: Map<string, Plot> }; marker?: string; devicePixelRatio: number };
declare const document: {
  readyState: string;
  documentElement: { scrollHeight: number };
  querySelector(selector: string): { textContent: string | null } | null;
};
type PageElement = {
  dataset: Record<string, string | undefined>;
  value: string;
  hidden: boolean;
  open: boolean;
  checkVisibility(): boolean;
};
declare function getComputedStyle(el: unknown): { backgroundColor: string };

const CHROMIUM = process.env.R1_CHROMIUM ?? '/usr/bin/chromium';
const haveBrowser = existsSync(CHROMIUM);
const inCI = process.env.CI === 'true';
if (!haveBrowser && !inCI)
  process.stderr.write(`\n  report browser tests SKIPPED: no browser at ${CHROMIUM} (apt-get install chromium, or set R1_CHROMIUM)\n\n`);

describe.runIf(!haveBrowser && inCI)('browser', () => {
  it('is installed on CI', () => {
    expect.fail(`CI=true but no browser at ${CHROMIUM}: .ci/run installs Debian's chromium; the report pages must be tested in it`);
  });
});

describe.runIf(haveBrowser)('report pages in chromium', () => {
  let browser: Browser;
  let root: string, run: string;
  const errors: string[] = [];

  /** A new page that records console errors, uncaught exceptions and failed requests into `errors`. */
  async function open(url: string): Promise<Page> {
    const page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 900 });
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(`${url}: console: ${m.text()}`);
    });
    page.on('pageerror', (e) => errors.push(`${url}: ${(e as Error).message}`));
    page.on('requestfailed', (r) => errors.push(`${url}: request failed: ${r.url()}`));
    await page.goto(url, { waitUntil: 'load' });
    return page;
  }
  const file = (...p: string[]) => pathToFileURL(join(run, ...p)).href;

  /** For each chart: its id, title, the number of steps, and whether its canvas has coloured pixels. */
  const charts = (page: Page) =>
    page.$$eval('[data-chart]', (els) =>
      els.map((el) => {
        const canvas = el.querySelector('canvas');
        let inked = 0;
        if (canvas) {
          const d = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
          // Lines are drawn in colour (r, g, b apart); grid and text are grey.
          for (let i = 0; i < d.length; i += 4)
            if (d[i + 3] > 0 && Math.max(d[i], d[i + 1], d[i + 2]) - Math.min(d[i], d[i + 1], d[i + 2]) > 60) inked++;
        }
        return {
          id: (el as PageElement).dataset.chart!,
          title: el.querySelector('h3')!.textContent,
          points: Number((el as PageElement).dataset.points ?? 0),
          inked,
          axes: el.querySelectorAll('.u-axis').length,
        };
      }),
    );

  /** Value axes narrower than their widest tick label: "chart id / axis: label needs N px, has M". */
  const axesTooNarrow = (page: Page) =>
    page.evaluate(() => {
      const out: string[] = [];
      for (const [id, plot] of window.r1.plots) {
        plot.axes.forEach((axis, i) => {
          if (axis.side !== 1 && axis.side !== 3) return; // the step axis runs along the bottom
          const ctx = plot.ctx;
          ctx.font = axis.font[0];
          const widest = Math.max(0, ...(axis._values ?? []).map((v) => ctx.measureText(String(v)).width / window.devicePixelRatio));
          const need = widest + axis.ticks.size + axis.gap;
          if (axis._size < need)
            out.push(`${id} / axis ${i}: '${(axis._values ?? []).join(', ')}' needs ${need.toFixed(1)} px, has ${axis._size}`);
        });
      }
      return out;
    });

  beforeAll(async () => {
    const { default: puppeteer } = await import('puppeteer-core');
    root = mkdtempSync(join(tmpdir(), 'r1-browser-'));
    run = makeRun(join(root, 'fixture'));
    writeRunPages(run);
    browser = await puppeteer.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
  });
  afterAll(async () => {
    await browser?.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('run page: the pipeline as stage cards with status and headline, every eval in one table with deltas, links to stages', async () => {
    const page = await open(file('index.html'));
    const cards = await page.$$eval('.stage', (els) =>
      els.map((e) => ({ name: (e as PageElement).dataset.stage, text: e.textContent!.replace(/\s+/g, ' '), href: e.getAttribute('href') })),
    );
    expect(cards.map((c) => c.name)).toEqual(['pretrain', 'eval-base', 'grpo', 'eval', 'dpo']);
    expect(cards[0].text).toMatch(/done.*20 steps · 30s.*final loss/);
    expect(cards[1].text).toMatch(/20\.0%pass@1/);
    // GRPO's headline is a rate, so a percentage like the eval cards; the reward beside it
    expect(cards[2].text).toMatch(/grpo · 12 steps · 18s\s*\d+\.\d%\s*accuracy \(mean of last 10 steps\)\s*reward \d\.\d+/);
    expect(cards[4].text).toMatch(/running.*preference accuracy/);
    expect(cards.every((c) => c.href === `${c.name}/report.html`)).toBe(true);
    const table = await page.$eval('table.evals', (t) =>
      [...t.querySelectorAll('tr')].map((r) => [...r.children].map((c) => c.textContent!.trim())),
    );
    expect(table[0]).toEqual(['', 'eval-base', 'eval']);
    expect(table).toContainEqual(['pass@1', '20.0%', '72.5%+52.5 pp']);
    expect(table).toContainEqual(['countdown', '12.5%', '46.3%+33.8 pp']);
    expect(table).toContainEqual(['mean length (tokens)', '31.5', '24.25−7.3']);
    await page.close();
    expect(errors).toEqual([]);
  });

  it('GRPO page: reward and each reward function first, then length band, KL, clip ratio, entropy, truncation, time; all drawn; constants as numbers', async () => {
    const page = await open(file('grpo', 'report.html'));
    const all = await charts(page);
    const main = all.filter((c) => c.id.startsWith('main:')).map((c) => c.id);
    expect(main).toEqual([
      'main:reward',
      'main:rewards/accuracy',
      'main:rewards/format',
      'main:length',
      'main:kl',
      'main:clip',
      'main:entropy',
      'main:truncated',
      'main:time',
    ]);
    for (const c of all) {
      expect(c.points, c.id).toBe(GRPO_STEPS);
      expect(c.inked, `${c.id} has drawn lines`).toBeGreaterThan(100);
    }
    // every value axis is wide enough for its tick labels (the KL's 5.00e-4 was cut off at the left)
    const tight = await axesTooNarrow(page);
    expect(tight).toEqual([]);
    expect(await page.evaluate(() => window.r1.plots.get('main:kl')!.axes[1]._values!.join(' '))).toMatch(/e-4/);
    // the reward is smoothed: a faint per-step line and a moving average
    expect(await page.evaluate(() => window.r1.plots.get('main:reward')!.series.map((s) => s.label))).toEqual([
      'step',
      'reward per step',
      'reward (avg of 3)',
    ]);
    // completion length: a band between the shortest and longest completion
    expect(await page.evaluate(() => window.r1.plots.get('main:length')!.bands.length)).toBe(1);
    const numbers = await page.$$eval('[data-number]', (els) => els.map((e) => (e as PageElement).dataset.number));
    expect(numbers).toEqual(expect.arrayContaining(['learning_rate', 'clip_ratio/region_mean', 'time/score_s']));
    expect(all.map((c) => c.id)).not.toContain('more:learning_rate');
    expect(await page.$eval('a[href="samples.html"]', (a) => a.textContent)).toMatch(/samples/);
    await page.close();
    expect(errors).toEqual([]);
  });

  it('pretrain page: loss with the learning rate on a second axis; DPO page: preference accuracy and margins first; eval page: a table, no one-point charts', async () => {
    let page = await open(file('pretrain', 'report.html'));
    let all = await charts(page);
    expect(all[0]).toMatchObject({ id: 'main:loss', points: 20, axes: 3 });
    expect(all[0].inked).toBeGreaterThan(100);
    await page.close();
    page = await open(file('dpo', 'report.html'));
    all = await charts(page);
    expect(all.slice(0, 2).map((c) => c.id)).toEqual(['main:accuracy', 'main:margins']);
    expect(all.every((c) => c.inked > 50)).toBe(true);
    expect(await axesTooNarrow(page)).toEqual([]);
    await page.close();
    page = await open(file('eval', 'report.html'));
    expect(await charts(page)).toEqual([]);
    expect(await page.$eval('.sub', (e) => e.textContent)).toMatch(/^eval · 10 prompts × 4 samples · 2\.0s/);
    expect(await page.$eval('table.evals', (t) => t.textContent)).toMatch(/pass@172\.5%/);
    await page.close();
    expect(errors).toEqual([]);
  });

  it('samples browser: filters by text, step and reward narrow the rows; best and worst of each group side by side', async () => {
    const page = await open(file('grpo', 'samples.html'));
    const rows = () => page.$$eval('tr.sample', (r) => r.length);
    const total = GRPO_STEPS * GROUPS_PER_STEP * GENERATIONS;
    expect(await rows()).toBe(total);
    // the latest step comes first, its rewards coloured
    expect(await page.$eval('tr.sample td', (td) => td.textContent)).toBe(String(GRPO_STEPS));
    // each row shows its question first, whole; the template around it is folded away
    const prompt = await page.$eval('tr.sample td.prompt', (td) => ({
      first: td.firstElementChild!.className,
      question: td.querySelector('pre.question')!.textContent,
      folded: !(td.querySelector('details') as PageElement).open,
      whole: td.querySelector('details pre')!.textContent,
    }));
    expect(prompt).toEqual({
      first: 'question',
      question: `What is ${GRPO_STEPS} + 0?`,
      folded: true,
      whole: `User: What is ${GRPO_STEPS} + 0? Assistant:`,
    });
    expect(await page.$eval('tr.sample td.prompt pre.question', (e) => (e as PageElement).checkVisibility())).toBe(true);
    expect(await page.$eval('tr.sample td.prompt details pre', (e) => (e as PageElement).checkVisibility())).toBe(false);
    expect(await page.$eval('tr.sample .r', (s) => getComputedStyle(s).backgroundColor)).not.toBe('rgba(0, 0, 0, 0)');
    await page.type('#f-text', 'and more words');
    expect(await rows()).toBe(GRPO_STEPS * GROUPS_PER_STEP);
    await page.select('#f-step', '5');
    expect(await rows()).toBe(GROUPS_PER_STEP);
    expect(await page.$$eval('tr.sample td:first-child', (tds) => tds.map((t) => t.textContent))).toEqual(['5', '5']);
    await page.$eval('#f-text', (i) => {
      (i as PageElement).value = '';
      i.dispatchEvent(new Event('input'));
    });
    expect(await rows()).toBe(GROUPS_PER_STEP * GENERATIONS);
    await page.type('#f-min', '2');
    const kept = grpoSamples(5).filter((s) => (s.reward as number) >= 2).length;
    expect(await rows()).toBe(kept);
    expect(await page.$eval('#r1-count', (e) => e.textContent)).toBe(`${kept} of ${total} completions`);
    await page.$eval('#f-min', (i) => {
      (i as PageElement).value = '';
      i.dispatchEvent(new Event('input'));
    });
    await page.click('#f-groups');
    const groups = await page.$$eval('.sample-group', (gs) => gs.map((g) => [...g.querySelectorAll('.pair h4')].map((h) => h.textContent)));
    expect(groups).toHaveLength(GROUPS_PER_STEP);
    expect(groups[0][0]).toMatch(/^best reward 2/);
    expect(groups[0][1]).toMatch(/^worst reward 0/);
    await page.close();
    expect(errors).toEqual([]);
  });

  it('samples browser: a completion with tool calls shows its turns as turns (model text, call, output, error apart), in rows and in groups', async () => {
    // A run of its own, outside `root` (the served root lists root's runs).
    const toolsRun = mkdtempSync(join(tmpdir(), 'r1-browser-tools-'));
    onTestFinished(() => rmSync(toolsRun, { recursive: true, force: true }));
    const stageDir = join(toolsRun, 'grpo');
    mkdirSync(stageDir, { recursive: true });
    const turns = [
      {
        text: 'I will multiply. <code>x = 123 * 45\nprint(x)</code>',
        call: { tool: 'python', code: 'x = 123 * 45\nprint(x)', output: '5535\n', error: null },
      },
      {
        text: ' and check <code>print(y)</code>',
        call: { tool: 'python', code: 'print(y)', output: '', error: "NameError: name 'y' is not defined" },
      },
      { text: ' <answer>5535</answer>', call: null },
    ];
    const row = (reward: number) => ({
      step: 1,
      prompt: 'What is 123 * 45?',
      question: 'What is 123 * 45?',
      completion: turns.map((t) => t.text).join('\n<output>\n...\n</output>\n'),
      reward,
      advantage: reward - 0.5,
      rewards: { accuracy: reward },
      finish_reason: 'stop',
      turns,
      model_tokens: 40,
      tool_tokens: 12,
    });
    writeFileSync(join(stageDir, 'samples.jsonl'), [row(1), row(0)].map((r) => JSON.stringify(r) + '\n').join(''));
    writeFileSync(join(stageDir, 'samples.html'), renderSamplesPage(stageDir));
    const page = await open(pathToFileURL(join(stageDir, 'samples.html')).href);
    const shown = () =>
      page.$$eval('.turns', (boxes) =>
        boxes.map((box) =>
          [...box.querySelectorAll(':scope > .turn')].map((turn) =>
            [...turn.children].map((el) => [el.className, el.querySelector('pre')?.textContent ?? el.textContent]),
          ),
        ),
      );
    const want = [
      [
        ['turn-text', 'I will multiply. '],
        ['turn-call', '<code>x = 123 * 45\nprint(x)</code>'],
        ['turn-output', '5535\n'],
      ],
      [
        ['turn-text', ' and check '],
        ['turn-call', '<code>print(y)</code>'],
        ['turn-error', "NameError: name 'y' is not defined"],
      ],
      [['turn-text', ' <answer>5535</answer>']],
    ];
    expect(await shown()).toEqual([want, want]);
    expect(await page.$eval('td.completion .turn-call .turn-label', (e) => e.textContent)).toBe('call · python');
    expect(await page.$eval('td.completion .turn-sum', (e) => e.textContent)).toBe('3 turns · 2 callsmodel tokens 40tool tokens 12');
    await page.click('#f-groups');
    expect(await page.$$eval('.pair .turns', (b) => b.length)).toBe(2);
    expect(await shown()).toEqual([want, want]);
    await page.close();
    expect(errors).toEqual([]);
  });

  describe('screenshots', () => {
    /** Width and height of a PNG, from its IHDR chunk. */
    const pngSize = (png: Buffer) => ({ width: png.readUInt32BE(16), height: png.readUInt32BE(20) });

    /** The whole page at 1280 px wide, cut at `maxHeight` (a GRPO page of many charts runs long). */
    async function shoot(url: string, out: string, maxHeight: number): Promise<void> {
      const page = await open(url);
      // Charts are drawn by the page's script; the samples browser fills its table the same way.
      await page.waitForFunction(() => document.readyState === 'complete', { polling: 50 });
      const height = Math.min(maxHeight, await page.evaluate(() => document.documentElement.scrollHeight));
      await page.setViewport({ width: 1280, height });
      await page.screenshot({ path: out as `${string}.png`, clip: { x: 0, y: 0, width: 1280, height } });
      await page.close();
    }

    it('screenshots of the run page, the GRPO page and the samples browser (R1_SCREENSHOT_RUN, R1_SCREENSHOT_DIR)', async () => {
      const given = process.env.R1_SCREENSHOT_RUN;
      let shotRun = run;
      if (given) {
        if (!existsSync(join(given, 'manifest.json'))) throw new Error(`R1_SCREENSHOT_RUN=${given}: not a run folder (no manifest.json)`);
        // A copy without the checkpoints, its pages drawn by this code: the run folder stays as it was.
        // (Outside `root`, which the served tests below list as runs.)
        const copies = mkdtempSync(join(tmpdir(), 'r1-screenshots-'));
        onTestFinished(() => rmSync(copies, { recursive: true, force: true }));
        shotRun = join(copies, basename(resolve(given)));
        cpSync(given, shotRun, { recursive: true, filter: (f) => !/[\\/]checkpoint[^\\/]*$/.test(f) });
        writeRunPages(shotRun);
      }
      const outDir = resolve(process.env.R1_SCREENSHOT_DIR ?? join(root, '..', `${basename(root)}-shots`));
      if (!process.env.R1_SCREENSHOT_DIR) onTestFinished(() => rmSync(outDir, { recursive: true, force: true }));
      mkdirSync(outDir, { recursive: true });
      const grpo = stageCards(shotRun).find((c) => c.type === 'grpo' && c.hasPage);
      expect(grpo, `${shotRun} has no GRPO stage with pages`).toBeDefined();
      const shots: [string, string, number][] = [
        ['report-run.png', 'index.html', 1000],
        ['report-grpo.png', join(grpo!.name, 'report.html'), 2000],
        ['report-samples.png', join(grpo!.name, 'samples.html'), 1200],
      ];
      for (const [name, page, maxHeight] of shots) {
        await shoot(pathToFileURL(join(shotRun, page)).href, join(outDir, name), maxHeight);
        const png = readFileSync(join(outDir, name));
        expect(png.subarray(1, 4).toString(), name).toBe('PNG');
        expect(pngSize(png).width, name).toBe(1280);
        expect(pngSize(png).height, name).toBeGreaterThan(300);
      }
      if (process.env.R1_SCREENSHOT_DIR)
        process.stderr.write(`\n  screenshots of ${shotRun}: ${shots.map(([n]) => join(outDir, n)).join(', ')}\n`);
      expect(errors).toEqual([]);
    }, 60_000);
  });

  describe('served live', () => {
    let server: RunningServer;
    beforeAll(async () => {
      server = await serveRuns(root, { port: 0, pollMs: 100 });
    });
    afterAll(() => server?.close());

    it('a served stage page shows a new step after the run writes one, without a reload; the run page follows', async () => {
      const page = await open(`${server.url}fixture/grpo/report.html`);
      const index = await open(`${server.url}fixture/index.html`);
      expect(await page.$eval('#r1-live', (e) => (e as PageElement).hidden)).toBe(false);
      expect(await page.$eval('#r1-last-step', (e) => e.textContent)).toBe(String(GRPO_STEPS));
      await page.evaluate(() => (window.marker = 'same page'));
      await page.waitForFunction(() => document.querySelector('#r1-live')!.textContent === 'live', { polling: 100 });
      // the run writes step 13 (and its samples) as the pipeline does: appended lines
      const next = GRPO_STEPS + 1;
      appendFileSync(join(run, 'grpo', 'metrics.jsonl'), JSON.stringify({ ...grpoRow(next), reward: 1.5 }) + '\n');
      await page.waitForFunction(
        (n) => document.querySelector('#r1-last-step')?.textContent === String(n),
        { timeout: 5000, polling: 100 },
        next,
      );
      expect(await page.evaluate(() => window.marker)).toBe('same page');
      const reward = await page.evaluate(() => window.r1.plots.get('main:reward')!.data);
      expect(reward[0].at(-1)).toBe(next);
      expect(reward[1].at(-1)).toBe(1.5);
      await index.waitForFunction(
        (n) => document.querySelector('[data-stage="grpo"]')?.textContent?.includes(`${n} steps`),
        { timeout: 5000, polling: 100 },
        next,
      );
      await page.close();
      await index.close();
      expect(errors).toEqual([]);
    });

    it('the served root lists the runs; two runs overlay on the compare page', async () => {
      makeRun(join(root, 'fixture-b'));
      const page = await open(server.url);
      expect(await page.$$eval('input[name="runs"]', (i) => i.map((e) => (e as PageElement).value))).toEqual(['fixture', 'fixture-b']);
      await page.goto(`${server.url}__r1/compare?runs=fixture&runs=fixture-b`, { waitUntil: 'load' });
      const all = await charts(page);
      expect(all.map((c) => c.id)).toContain('grpo:main:reward');
      expect(await page.evaluate(() => window.r1.plots.get('grpo:main:reward')!.series.map((s) => s.label))).toEqual([
        'step',
        'fixture · reward (avg of 3)',
        'fixture-b · reward (avg of 3)',
      ]);
      await page.close();
      expect(errors).toEqual([]);
    });
  });
});
