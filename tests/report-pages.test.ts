// The report pages without a browser: the pipeline's refresh hook, the live server's routes and
// events, and the eval table's deltas. (tests/report-browser.test.ts opens the pages in chromium.)
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { liveReports } from '../src/report/live.ts';
import { evalTable } from '../src/report/pages.ts';
import { serveRuns } from '../src/report/serve.ts';
import { GRPO_STEPS, grpoRow, makeRun } from './fixtures/report/make-run.ts';

const root = mkdtempSync(join(tmpdir(), 'r1-pages-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
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
  const get = (url: string, path: string) => new Promise<{ status: number; body: string }>((ok, fail) => {
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
      { label: 'base', results: { 'pass@1': 0.2, 'maj@8': 0.25, format_rate: 0.5, mean_length: 40, by_language: { zh: { 'pass@1': 0.1 } } } },
      { label: 'rl', results: { 'pass@1': 0.35, 'maj@8': 0.25, format_rate: 0.25, mean_length: 30, by_language: { zh: { 'pass@1': 0.3 } } } },
    ]);
    const text = html.replace(/<\/t[dh]>/g, '|').replace(/<[^>]+>/g, '').replace(/&nbsp;/g, ' ');
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
