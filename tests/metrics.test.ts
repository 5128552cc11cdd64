import { spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PassThrough } from 'node:stream';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { MetricsLogger, Progress, formatDuration, readMetrics } from '../src/metrics/index.ts';
import { stageView, writeRunReport } from '../src/report/index.ts';
import { samplesData } from '../src/report/samples.ts';
import { series, thin, ticks } from '../src/report/plot.ts';

const made: string[] = [];
const tmp = () => {
  made.push(mkdtempSync(join(tmpdir(), 'r1-metrics-')));
  return made.at(-1)!;
};
afterAll(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));
const clock = (ms: number[]) => () => ms.shift() ?? 0;

describe('MetricsLogger', () => {
  it('appends one JSON row per step with elapsed_s and tokens_per_s', () => {
    const file = join(tmp(), 'stage', 'metrics.jsonl');
    const log = new MetricsLogger(file, { now: clock([1000, 3000, 4000]) });
    log.log({ step: 1, loss: 2.5, learning_rate: 1e-3, num_tokens: 4000 });
    log.log({ step: 2, loss: NaN, 'rewards/accuracy/mean': 0.5, num_tokens: 6000, note: 'x' });
    log.close();
    const lines = readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toEqual([
      { step: 1, loss: 2.5, learning_rate: 1e-3, num_tokens: 4000, tokens_per_s: 2000, elapsed_s: 2 },
      { step: 2, loss: null, 'rewards/accuracy/mean': 0.5, num_tokens: 6000, note: 'x', tokens_per_s: 2000, elapsed_s: 3 },
    ]);
  });

  it('loses at most the last line when the writing process is killed', () => {
    const dir = tmp();
    const file = join(dir, 'metrics.jsonl');
    const script = join(dir, 'child.ts');
    const logger = join(import.meta.dirname, '..', 'src', 'metrics', 'logger.ts');
    writeFileSync(
      script,
      `import { MetricsLogger } from ${JSON.stringify(logger)};
const log = new MetricsLogger(${JSON.stringify(file)});
for (let step = 1; step <= 50; step++) log.log({ step, loss: 1 / step });
process.kill(process.pid, 'SIGKILL');\n`,
    );
    const child = spawnSync(process.execPath, ['--import', 'tsx', script], { cwd: join(import.meta.dirname, '..') });
    expect(child.signal).toBe('SIGKILL');
    expect(readMetrics(file).map((r) => r.step)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
  });

  it('reads past a torn last line, but not a broken middle one', () => {
    const file = join(tmp(), 'metrics.jsonl');
    writeFileSync(file, '{"step":1,"loss":3}\n\n{"step":2,"loss":2}\n{"step":3,"lo');
    expect(readMetrics(file).map((r) => r.step)).toEqual([1, 2]);
    writeFileSync(file, '{"step":1,"loss":3}\n{"step":2,"lo\n{"step":3,"loss":1}\n');
    expect(() => readMetrics(file)).toThrow(/metrics\.jsonl:2: not valid JSON/);
    expect(readMetrics(join(tmp(), 'none.jsonl'))).toEqual([]);
  });

  it('on resume drops rows after the checkpoint step and a torn line, and keeps counting time', () => {
    const file = join(tmp(), 'metrics.jsonl');
    writeFileSync(
      file,
      [1, 2, 3, 4].map((s) => JSON.stringify({ step: s, loss: 5 - s, num_tokens: s * 100, elapsed_s: s * 10 }) + '\n').join('') +
        '{"step":5,',
    );
    const log = new MetricsLogger(file, { resumeStep: 2, now: clock([0, 5000]) });
    log.log({ step: 3, loss: 1.5, num_tokens: 300 });
    log.close();
    const rows = readMetrics(file);
    expect(rows.map((r) => r.step)).toEqual([1, 2, 3]);
    expect(rows[2]).toMatchObject({ elapsed_s: 25, tokens_per_s: 20 });
    expect(readFileSync(file, 'utf8').endsWith('}\n')).toBe(true);
  });
});

describe('Progress', () => {
  const sink = (tty: boolean) => {
    const s = new PassThrough() as PassThrough & { isTTY?: boolean; columns?: number };
    const chunks: string[] = [];
    s.on('data', (c: Buffer) => chunks.push(c.toString()));
    if (tty) Object.assign(s, { isTTY: true, columns: 120, cursorTo: () => true, clearLine: () => true, moveCursor: () => true });
    return { s, text: () => chunks.join('') };
  };

  it('prints one plain line every N steps and at the last step when not on a terminal', () => {
    const { s, text } = sink(false);
    const times = [0, ...Array.from({ length: 25 }, (_, i) => (i + 1) * 2000)];
    const p = new Progress({ stage: 'pretrain', total: 25, stream: s, everySteps: 10, now: clock(times) });
    for (let step = 1; step <= 25; step++) p.update(step, { loss: 3 - step / 10, tokens_per_s: 1234.4 });
    p.stop();
    const lines = text().trim().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toBe('[pretrain] step 10/25 (40%) loss 2.0000 | 1234 tok/s | elapsed 2s | eta 3s');
    expect(lines[2]).toMatch(/^\[pretrain\] step 25\/25 \(100%\) loss 0\.5000 .* eta 0s$/);
  });

  it('draws a live bar with step, loss and tokens/s on a terminal', () => {
    const { s, text } = sink(true);
    const p = new Progress({ stage: 'sft', total: 40, stream: s });
    p.update(7, { loss: 1.23456, tokens_per_s: 999 });
    p.stop();
    expect(text()).toMatch(/sft \|.*\| 7\/40 \| loss 1\.2346 \| 999 tok\/s/);
    expect(text()).not.toMatch(/\[sft\] step/);
  });

  it('shows the fields a stage asks for (an RL stage: reward, accuracy, KL, length), plain and on a terminal', () => {
    const fields = [
      { key: 'reward', label: 'reward', digits: 3 },
      { key: 'rewards/accuracy/mean', label: 'accuracy', digits: 3 },
      { key: 'kl', label: 'kl', digits: 4 },
      { key: 'completions/mean_length', label: 'length', digits: 0 },
    ];
    const plain = sink(false);
    const p = new Progress({ stage: 'grpo', total: 2, stream: plain.s, everySteps: 1, fields, now: clock([0, 1000, 2000]) });
    p.update(1, {
      loss: 0.0001,
      reward: 0.61234,
      'rewards/accuracy/mean': 0.5,
      kl: 0.00431,
      'completions/mean_length': 40.6,
      tokens_per_s: 612,
    });
    p.update(2, { reward: 0.7 }); // what a step does not log shows as -
    p.stop();
    const lines = plain.text().trim().split('\n');
    expect(lines[0]).toMatch(/^\[grpo\] step 1\/2 \(50%\) reward 0\.612 \| accuracy 0\.500 \| kl 0\.0043 \| length 41 \| 612 tok\/s/);
    expect(lines[0]).not.toMatch(/loss/);
    expect(lines[1]).toMatch(/reward 0\.700 \| accuracy - \| kl - \| length - \| - tok\/s/);
    const tty = sink(true);
    const bar = new Progress({ stage: 'grpo', total: 2, stream: tty.s, fields });
    bar.update(1, { reward: 0.5, 'rewards/accuracy/mean': 0.25, kl: 0.01, 'completions/mean_length': 12, tokens_per_s: 99 });
    bar.stop();
    expect(tty.text()).toMatch(/grpo \|.*\| 1\/2 \| reward 0\.500 \| accuracy 0\.250 \| kl 0\.0100 \| length 12 \| 99 tok\/s/);
  });

  it('formats durations', () => {
    expect([5, 75, 3725, NaN].map(formatDuration)).toEqual(['5s', '1m15s', '1h02m', '?']);
  });
});

describe('report', () => {
  const rows = Array.from({ length: 30 }, (_, i) => ({
    step: i + 1,
    kl: i / 100,
    reward: i / 30,
    learning_rate: 1e-3,
    loss: 3 - i / 15,
    phase: 'warm',
    grad_norm: i === 4 ? null : 1,
  }));

  it('charts each varying metric vs step, loss first; a constant is a number, not a chart', () => {
    const { charts, numbers } = stageView('pretrain', rows);
    expect(charts.map((c) => c.title)).toEqual(['loss', 'kl', 'reward']);
    // 30 noisy-or-not points get a moving average drawn over the faint per-step line.
    expect(charts[0].series.map((s) => [s.faint ?? false, s.values.length])).toEqual([
      [true, 30],
      [false, 30],
    ]);
    expect(numbers).toContainEqual({ key: 'learning_rate', value: 1e-3, note: 'same at all 30 steps' });
    // grad_norm is 1 wherever it was logged (step 5 has none): a number too.
    expect(numbers).toContainEqual({ key: 'grad_norm', value: 1, note: 'same at all 29 steps' });
  });

  it('the samples browser gets every row with prompts stored once, and drops the earliest whole steps past its budget', () => {
    const raw = Array.from({ length: 8 }, (_, i) => ({
      step: 1 + Math.floor(i / 2),
      prompt: 'P',
      completion: `<think>x${i}</think>`,
      reward: i % 2,
      rewards: { acc: i % 2 },
      finish_reason: 'stop',
    }));
    const all = samplesData(raw);
    expect(all.prompts).toEqual(['P']);
    expect(all.rows.map((r) => r.completion)).toEqual(raw.map((r) => r.completion));
    expect(all.steps).toEqual([1, 2, 3, 4]);
    expect(all.fns).toEqual(['acc']);
    const cut = samplesData(raw, 5 * 120);
    expect(cut.steps).toEqual([3, 4]);
    expect(cut.dropped).toBe(4);
  });

  it('thins long series without losing spikes, and picks round ticks', () => {
    const pts: [number, number][] = Array.from({ length: 10000 }, (_, i) => [i, i === 7777 ? 100 : 1]);
    const t = thin(pts, 800);
    expect(t.length).toBeLessThanOrEqual(800);
    expect(t).toContainEqual([7777, 100]);
    expect(ticks(0, 1)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(ticks(5, 5)).toEqual([5]);
    expect(ticks(3, 97)).toEqual([20, 40, 60, 80]);
    expect(
      series(
        [
          { step: 1, a: 1 },
          { step: 2, a: null },
          { step: 3, a: 2 },
        ],
        'a',
      ),
    ).toEqual([
      [1, 1],
      [3, 2],
    ]);
  });

  it('writes a report per stage and an index in manifest order; r1 report rebuilds them', async () => {
    const run = join(tmp(), 'r1-zero');
    for (const stage of ['pretrain', 'grpo', 'eval']) {
      mkdirSync(join(run, stage), { recursive: true });
      appendFileSync(join(run, stage, 'metrics.jsonl'), rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
    }
    mkdirSync(join(run, 'empty'));
    mkdirSync(join(run, 'final-eval'));
    writeFileSync(join(run, 'final-eval', 'eval.json'), JSON.stringify({ 'pass@1': 0.75, 'maj@4': 1 }));
    // the pipeline's manifest keys stages by name, in run order
    const manifest = {
      stages: { pretrain: { status: 'done', summary: { final_loss: 1.25 } }, grpo: { status: 'running' }, eval: { status: 'done' } },
    };
    writeFileSync(join(run, 'manifest.json'), JSON.stringify(manifest));
    const index = readFileSync(writeRunReport(run), 'utf8');
    expect([...index.matchAll(/class="stage" data-stage="[^"]+" href="([^"]+)\/report\.html"/g)].map((m) => m[1])).toEqual([
      'pretrain',
      'grpo',
      'eval',
      'final-eval',
    ]);
    const card = (name: string) =>
      index
        .match(new RegExp(`data-stage="${name}"[^]*?</a>`))![0]
        .replace(/<[^>]+>/g, ' ')
        .replace(/\s+/g, ' ');
    expect(card('pretrain')).toMatch(/pretrain done pretrain · 30 steps 1\.067 final loss/);
    // an undeclared stage that logged a reward is read as GRPO: its headline is the reward of the last 10 steps
    expect(card('grpo')).toMatch(/grpo running grpo · 30 steps .*0\.8167 reward \(mean of last 10 steps\)/);
    expect(existsSync(join(run, 'grpo', 'report.html'))).toBe(true);
    expect(existsSync(join(run, 'empty', 'report.html'))).toBe(false);
    expect(index).toContain('final-eval/report.html');
    expect(readFileSync(join(run, 'final-eval', 'report.html'), 'utf8')).toMatch(/<td>pass@1<\/td><td class="num">75\.0%<\/td>/);
    expect(index).toMatch(/<td>pass@1<\/td><td class="num">75\.0%<\/td>/);

    const { Command } = await import('commander');
    const { register } = await import('../src/cli/commands/report.ts');
    const report = async (dir: string) => {
      const program = new Command('r1').exitOverride();
      register(program);
      await program.parseAsync(['report', dir], { from: 'user' });
    };
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    try {
      writeFileSync(join(run, 'eval', 'report.html'), 'stale');
      await report(run);
      expect(readFileSync(join(run, 'eval', 'report.html'), 'utf8')).toMatch(/^<!doctype html>/);
      await report(join(run, 'grpo'));
      await expect(report(join(run, 'empty'))).rejects.toMatchObject({ exitCode: 2, message: expect.stringMatching(/no stage folders/) });
      await expect(report(join(run, 'nope'))).rejects.toMatchObject({ exitCode: 2, message: expect.stringMatching(/no such folder/) });
    } finally {
      spy.mockRestore();
    }
  });
});

describe('process memory in the logged rows (memory/rss_gib, memory/max_rss_gib)', () => {
  it('resident memory follows a 256 MiB buffer written and freed; the peak keeps it', () => {
    const module = fileURLToPath(new URL('../src/metrics/memory.ts', import.meta.url));
    const script = `
      import { processMemory } from ${JSON.stringify(module)};
      const base = processMemory();
      let big = Buffer.alloc(256 * 2 ** 20, 1);
      const held = processMemory();
      big = null;
      globalThis.gc();
      const after = processMemory();
      console.log(JSON.stringify({ base, held, after }));
    `;
    const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const m = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(m.held.rss - m.base.rss).toBeGreaterThan(0.24);
    expect(m.held.rss - m.after.rss).toBeGreaterThan(0.2);
    expect(m.after.maxRss).toBeGreaterThanOrEqual(m.held.rss);
  });
});
