// The report pages without a browser: the pipeline's refresh hook, the live server's routes and
// events, and the eval table's deltas. (tests/report-browser.test.ts opens the pages in chromium.)
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { liveReports } from '../src/report/live.ts';
import { fmtDuration } from '../src/report/common.ts';
import { stageView } from '../src/report/charts.ts';
import { evalTable, renderRunPage, renderStagePage, stageCards, stageDoneLine } from '../src/report/pages.ts';
import { questionOf, samplesData } from '../src/report/samples.ts';
import { serveRuns } from '../src/report/serve.ts';
import { GRPO_STEPS, grpoRow, makeRun } from './fixtures/report/make-run.ts';

const root = mkdtempSync(join(tmpdir(), 'r1-pages-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** A page's visible text, tags dropped and spaces collapsed (the inlined scripts and styles left out). */
const text = (html: string) =>
  html
    .replace(/<(script|style)[^>]*>[\s\S]*?<\/\1>/g, '')
    .replace(/<[^>]+>/g, ' ')
    .replace(/&nbsp;/g, ' ')
    .replace(/\s+/g, ' ');
const lastStep = (file: string) => /id="r1-last-step">(\d+)/.exec(readFileSync(file, 'utf8'))?.[1];

describe('pages during a run', () => {
  it('r1 run rewrites the stage page and the run page at start, every N logged steps, and on refresh', async () => {
    const run = makeRun(join(root, 'live-hook'));
    const grpo = join(run, 'grpo');
    const pages = liveReports(run, grpo, () => {}, { everySteps: 2, minIntervalMs: 0, checkMs: 10 });
    try {
      expect(lastStep(join(grpo, 'report.html'))).toBe(String(GRPO_STEPS));
      expect(readFileSync(join(run, 'index.html'), 'utf8')).toContain('data-stage="grpo"');
      appendFileSync(join(grpo, 'metrics.jsonl'), JSON.stringify(grpoRow(GRPO_STEPS + 1)) + '\n');
      await sleep(100);
      // one step is fewer than N = 2: not yet
      expect(lastStep(join(grpo, 'report.html'))).toBe(String(GRPO_STEPS));
      appendFileSync(join(grpo, 'metrics.jsonl'), JSON.stringify(grpoRow(GRPO_STEPS + 2)) + '\n');
      for (let i = 0; i < 50 && lastStep(join(grpo, 'report.html')) !== String(GRPO_STEPS + 2); i++) await sleep(20);
      expect(lastStep(join(grpo, 'report.html'))).toBe(String(GRPO_STEPS + 2));
      expect(readFileSync(join(grpo, 'samples.html'), 'utf8')).toContain('id="f-text"');
    } finally {
      pages.stop();
    }
    appendFileSync(join(grpo, 'metrics.jsonl'), JSON.stringify(grpoRow(GRPO_STEPS + 3)) + '\n');
    pages.refresh();
    expect(lastStep(join(grpo, 'report.html'))).toBe(String(GRPO_STEPS + 3));
  });
});

describe('r1 serve', () => {
  const get = (url: string, path: string) =>
    new Promise<{ status: number; body: string }>((ok, fail) => {
      // node:http sends the path as given (fetch would resolve the dots away).
      const req = request(url, { path }, (res) => {
        let body = '';
        res.on('data', (c) => (body += c)).on('end', () => ok({ status: res.statusCode!, body }));
      });
      req.on('error', fail).end();
    });

  it('renders pages fresh and live, serves run files, refuses paths outside the folder, and tells listeners which folder changed', async () => {
    const run = makeRun(join(root, 'served'));
    const server = await serveRuns(root, { port: 0, pollMs: 30 });
    try {
      const stage = await get(server.url, '/served/grpo/report.html');
      expect(stage.status).toBe(200);
      expect(stage.body).toContain('"live":true');
      expect((await get(server.url, '/served/')).body).toContain('data-stage="eval-base"');
      expect((await get(server.url, '/')).body).toContain('value="served"');
      expect((await get(server.url, '/served/grpo/samples.html')).body).toContain('"page":"samples"');
      expect(JSON.parse((await get(server.url, '/served/eval/eval.json')).body)['pass@1']).toBe(0.725);
      expect((await get(server.url, '/..%2f..%2f..%2fetc%2fpasswd')).status).toBe(403);
      expect((await get(server.url, '/served/nope.txt')).status).toBe(404);

      const events: string[] = [];
      const done = new Promise<void>((ok) => {
        request(server.url, { path: '/__r1/events' }, (res) => {
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            for (const m of chunk.matchAll(/^data: (.*)$/gm)) events.push(JSON.parse(m[1]).dir);
            if (events.length) ok();
          });
          // Start writing only once the stream is open (the server takes its first look then).
          setTimeout(() => appendFileSync(join(run, 'grpo', 'metrics.jsonl'), JSON.stringify(grpoRow(GRPO_STEPS + 1)) + '\n'), 100);
        }).end();
      });
      await done;
      expect(events).toEqual(['served/grpo']);
      expect(/id="r1-last-step">(\d+)/.exec((await get(server.url, '/served/grpo/report.html')).body)?.[1]).toBe(String(GRPO_STEPS + 1));
    } finally {
      await server.close();
    }
  });
});

describe('eval table', () => {
  it('a column per eval, rates as percentages, each with its change from the eval before in percentage points', () => {
    const html = evalTable([
      {
        label: 'base',
        results: { 'pass@1': 0.2, 'maj@8': 0.25, format_rate: 0.5, mean_length: 40, by_language: { zh: { 'pass@1': 0.1 } } },
      },
      {
        label: 'rl',
        results: { 'pass@1': 0.35, 'maj@8': 0.25, format_rate: 0.25, mean_length: 30, by_language: { zh: { 'pass@1': 0.3 } } },
      },
    ]);
    const text = html
      .replace(/<\/t[dh]>/g, '|')
      .replace(/<[^>]+>/g, '')
      .replace(/&nbsp;/g, ' ');
    expect(text).toContain('pass@1|20.0%|35.0%+15.0 pp|');
    expect(text).toContain('maj@8|25.0%|25.0%+0.0 pp|');
    expect(text).toContain('format|50.0%|25.0%−25.0 pp|');
    expect(text).toContain('mean length (tokens)|40|30−10.0|');
    expect(text).toContain('zh|10.0%|30.0%+20.0 pp|');
    expect(html).toMatch(/class="delta up">\+15\.0 pp/);
    expect(html).toMatch(/class="delta down">−25\.0 pp/);
    // no language consistency in either: no row for it
    expect(text).not.toContain('language consistency');
  });
});

describe('numbers on the pages', () => {
  it('durations are rounded once, to the unit shown: never 1m60s', () => {
    expect([0, 4.25, 9.96, 12.4, 59.6, 75, 119.7, 3599.7, 3725, 7199.9].map(fmtDuration)).toEqual([
      '0.0s',
      '4.3s',
      '10s',
      '12s',
      '1m00s',
      '1m15s',
      '2m00s',
      '1h00m',
      '1h02m',
      '2h00m',
    ]);
    expect(fmtDuration(NaN)).toBe('–');
  });

  it('a stage logged every 10 steps shows the steps it ran, not the rows it logged; a done stage its summary', () => {
    const run = makeRun(join(root, 'sparse-log'));
    // pretrain logged every 10 of 150 steps, as logging_steps 10 does
    writeFileSync(
      join(run, 'pretrain', 'metrics.jsonl'),
      Array.from({ length: 15 }, (_, i) => JSON.stringify({ step: (i + 1) * 10, loss: 5 - i * 0.2, elapsed_s: (i + 1) * 8 })).join('\n') +
        '\n',
    );
    const manifest = JSON.parse(readFileSync(join(run, 'manifest.json'), 'utf8'));
    manifest.stages.pretrain.summary = { final_loss: 2.2, steps: 150 };
    manifest.stages.pretrain.finished_at = new Date(Date.parse(manifest.stages.pretrain.started_at) + 119_700).toISOString();
    writeFileSync(join(run, 'manifest.json'), JSON.stringify(manifest));
    const cards = stageCards(run);
    expect(cards.find((c) => c.name === 'pretrain')).toMatchObject({ steps: 150, seconds: 119.7 });
    // the running DPO stage: its last logged step
    expect(cards.find((c) => c.name === 'dpo')!.steps).toBe(8);
    // evals have no steps
    expect(cards.find((c) => c.name === 'eval')!.steps).toBeNull();
    const index = text(renderRunPage(run));
    expect(index).toContain('pretrain · 150 steps · 2m00s');
    expect(index).not.toMatch(/\b15 steps|1m60s/);
    expect(text(renderStagePage(join(run, 'pretrain')))).toContain('pretrain · 150 steps (15 logged) · 2m00s');
    expect(stageDoneLine(run, 'pretrain')).toBe('done in 2m00s: 150 steps · final loss 2.2');
  });

  it("GRPO's card leads with the accuracy reward as a percentage; the eval page gives prompts × samples, not logged steps", () => {
    const run = makeRun(join(root, 'rates'));
    const grpo = stageCards(run).find((c) => c.name === 'grpo')!;
    expect(grpo.headline).toMatchObject({ label: 'accuracy (mean of last 10 steps)', percent: true });
    expect(grpo.secondary.map((s) => [s.label, s.percent])).toEqual([
      ['reward', false],
      ['format', true],
      ['length', false],
    ]);
    const card = text(renderRunPage(run)).split('grpo').slice(1).join('grpo');
    expect(card).toMatch(
      /^\s*done\s*grpo · 12 steps · 18s\s*\d+\.\d%\s*accuracy \(mean of last 10 steps\)\s*reward \d\.\d+ · format \d+\.\d% · length/,
    );
    const evalPage = text(renderStagePage(join(run, 'eval')));
    expect(evalPage).toContain('eval · 10 prompts × 4 samples · 2.0s');
    expect(evalPage).not.toMatch(/logged steps|last step \d/);
    expect(stageDoneLine(run, 'eval')).toBe('done in 2.0s: pass@1 72.5% · maj@4 75.0% · format 100.0% (10 prompts × 4 samples)');
  });

  it('a reward that stays 0 at every step is a chart (the news of the stage), not a constant', () => {
    const rows = Array.from({ length: 6 }, (_, i) => ({
      step: i + 1,
      reward: 0,
      'rewards/accuracy/mean': 0,
      'rewards/format/mean': 0.1 * i,
      learning_rate: 1e-4,
      kl: 0.001 * i,
    }));
    const view = stageView('grpo', rows);
    expect(view.charts.map((c) => c.id).slice(0, 3)).toEqual(['main:reward', 'main:rewards/accuracy', 'main:rewards/format']);
    expect(view.numbers.map((n) => n.key)).toEqual(['learning_rate']);
    // one logged value is still a number, not a one-point chart
    expect(stageView('grpo', rows.slice(0, 1)).charts).toEqual([]);
  });
});

describe('samples', () => {
  it('each prompt carries its question: the one the stage wrote, or the part inside a named template', () => {
    const r1zero =
      'A conversation between User and Assistant. The user asks a question, and the Assistant solves it. The assistant first thinks about the reasoning process in the mind and then provides the user with the answer. The reasoning process and answer are enclosed within <think> </think> and <answer> </answer> tags, respectively, i.e., <think> reasoning process here </think> <answer> answer here </answer>. User: What is 2 + 2?. Assistant:';
    expect(questionOf(r1zero, undefined)).toBe('What is 2 + 2?');
    expect(questionOf('Q: x A:', 'x')).toBe('x');
    expect(questionOf('<|user|>hi<|assistant|>', undefined)).toBeNull();
    const data = samplesData([
      { step: 1, prompt: r1zero, completion: 'a' },
      { step: 1, prompt: r1zero, completion: 'b' },
      { step: 1, prompt: 'Q: x A:', question: 'x', completion: 'c' },
    ]);
    expect(data.prompts).toHaveLength(2);
    expect(data.questions).toEqual(['What is 2 + 2?', 'x']);
  });

  it('carries the turns of a completion with tool calls, each part cut to size; rows without turns carry none', () => {
    const long = 'y'.repeat(5000);
    const data = samplesData([
      {
        step: 1,
        prompt: 'p',
        completion: 'c',
        turns: [
          { text: 'a <code>print(1)</code>', call: { tool: 'python', code: 'print(1)', output: long, error: null } },
          { text: 'done', call: null },
        ],
        model_tokens: 7,
        tool_tokens: 3,
      },
      { step: 1, prompt: 'p', completion: 'plain' },
    ]);
    const [withTurns, plain] = data.rows;
    expect(withTurns.turns![0].call).toMatchObject({ tool: 'python', code: 'print(1)', error: null });
    expect(withTurns.turns![0].call!.output).toBe(`${'y'.repeat(2000)} …[cut]`);
    expect(withTurns.turns![1]).toEqual({ text: 'done', call: null });
    expect([withTurns.modelTokens, withTurns.toolTokens]).toEqual([7, 3]);
    expect(plain.turns).toBeUndefined();
  });
});
