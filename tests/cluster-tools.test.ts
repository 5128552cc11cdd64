// Multi-turn rollouts on a cluster: the trainer samples the turns, the tool calls go to reward
// workers as tool jobs (cluster/tools.ts). A trajectory's session travels with each job (its earlier
// cells), so state is kept within a trajectory and absent from the next whichever worker serves a
// call; a call no worker can run is an error message; and the tools micro recipe's GRPO runs through a
// worker process with its calls in the job log.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterPool } from '../src/cluster/pool.ts';
import { resolveCluster } from '../src/cluster/config.ts';
import { ClusterToolRunner } from '../src/cluster/tools.ts';
import { Rng } from '../src/engine/rng.ts';
import type { Completion, SamplingOptions } from '../src/model/generate.ts';
import { Tokenizer } from '../src/model/tokenizer.ts';
import { readMetrics } from '../src/metrics/logger.ts';
import { runRecipe } from '../src/pipeline/run.ts';
import { loadRecipe } from '../src/recipe/index.ts';
import { generateWithTools } from '../src/rollout/multi-turn.ts';
import { ToolSession } from '../src/rollout/tools.ts';
import { HAVE_NATS, quiet, startCluster, startWorker, type Cluster } from './cluster-helpers.ts';

const tok = Tokenizer.train(['<code>print(x * 7)</code> <output>\n42\n</output> <answer>42</answer> abcdefghijklmnopqrstuvwxyz'], {
  vocabSize: 300,
  specialTokens: ['<|eos|>'],
});
const EOS = tok.tokenId('<|eos|>')!;

/** Turn k of a trajectory (k = outputs in its context) is script[k]; a call stops at </code>. */
const scripted =
  (scripts: Map<string, string[]>) =>
  (contexts: number[][], opts: SamplingOptions): Completion[] =>
    contexts.map((ctx) => {
      const text = tok.decode(ctx);
      const prompt = [...scripts.keys()].find((p) => text.startsWith(p))!;
      const turn = scripts.get(prompt)![(text.match(/<output>/g) ?? []).length];
      const stops = turn.endsWith('</code>') && opts.stopStrings?.includes('</code>');
      const tokens = stops ? tok.encode(turn) : [...tok.encode(turn), EOS];
      return { tokens, logprobs: tokens.map(() => -1), text: turn, finishReason: 'stop' };
    });

describe.skipIf(!HAVE_NATS)('tool calls on reward workers', () => {
  let c: Cluster;
  const lines: string[] = [];
  beforeAll(async () => {
    c = await startCluster();
    startWorker(c, 'tw1', 'reward');
  });
  afterAll(async () => c?.close());

  it('keeps a session within its trajectory and out of the next; a crash is an error the model sees', async () => {
    const settings = resolveCluster({ url: c.server.url, job_timeout_s: 20 }, process.cwd())!;
    const pool = await ClusterPool.open(settings, { tok, stageDir: join(c.dir, 'stage'), log: (l) => lines.push(l) });
    try {
      const runner = new ClusterToolRunner(pool, { timeoutS: 2, outputChars: 4096 }, { isolation: 'process' });
      const scripts = new Map([
        ['A: ', ['<code>x = 6</code>', '<code>print(x * 7)</code>', '<answer>42</answer>']],
        ['B: ', ['<code>print(x)</code>', '<code>print(1 / 0)</code>', '<answer>0</answer>']],
      ]);
      const [a, b] = await generateWithTools(
        scripted(scripts),
        tok,
        runner,
        [tok.encode('A: '), tok.encode('B: ')],
        { maxNewTokens: 300, stopTokens: [EOS] },
        new Rng(0),
        { names: ['python'], max_turns: 4, max_output_tokens: 200, timeout_s: 2, format: 'r1' },
      );
      const calls = (x: Completion) => x.trajectory!.turns.filter((t) => t.call).map((t) => [t.call!.output, t.call!.error]);
      expect(calls(a)).toEqual([
        ['', null],
        ['42\n', null],
      ]);
      expect(calls(b)[0][1]).toMatch(/NameError/);
      expect(calls(b)[1][1]).toMatch(/ZeroDivisionError/);
      expect(runner.takeMetrics()).toEqual({ calls: 4, errors: 2, timeouts: 0 });
      // The session is the trainer's: A's cell that ran is in its history, B's failed ones are not.
      const session = new ToolSession();
      session.remember('python', 'x = 6');
      expect((await runner.call(session, 'python', 'print(x + 1)')).output).toBe('7\n');
      const jobs = readFileSync(join(c.dir, 'stage', 'cluster-jobs.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(jobs.filter((j: { kind: string; worker: string }) => j.kind === 'tool' && j.worker === 'tw1')).toHaveLength(5);
    } finally {
      await pool.close();
    }
  }, 60_000);

  it('a call no worker can run costs its trajectory an error message, not the step', async () => {
    const runner = new ClusterToolRunner(
      { runTool: () => Promise.reject(new Error('cluster: reward job x failed by worker w: sandbox gone')) },
      { timeoutS: 1, outputChars: 100 },
    );
    const call = await runner.call(new ToolSession(), 'python', 'print(1)');
    expect(call.error).toMatch(/no reward worker could run the call: .*sandbox gone/);
    expect(runner.takeMetrics()).toEqual({ calls: 1, errors: 1, timeouts: 0 });
  });

  it('GRPO with tools and cluster: set: the trainer samples, the worker runs the calls (job log kind tool)', async () => {
    const out = join(c.dir, 'runs');
    const set = [`output_dir=${out}`, 'sandbox.isolation=process', `cluster.url=${c.server.url}`, 'cluster.job_timeout_s=20'];
    const { runDir } = await runRecipe(loadRecipe(resolve('tests/fixtures/tools/tools.yaml'), { set }), quiet);
    const metrics = readMetrics(join(runDir, 'grpo', 'metrics.jsonl'));
    expect(metrics).toHaveLength(2);
    const jobs = readFileSync(join(runDir, 'grpo', 'cluster-jobs.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { kind: string; worker: string });
    const calls = metrics.reduce((n, m) => n + Number(m['tools/calls_per_trajectory']) * 8, 0);
    expect(calls).toBeGreaterThan(0);
    // Every well-formed call is one tool job (a malformed one never leaves the trainer).
    expect(jobs.length).toBeGreaterThan(0);
    expect(jobs.every((j) => j.kind === 'tool' && j.worker === 'tw1')).toBe(true);
    expect(jobs.length).toBeLessThanOrEqual(calls);
    expect(metrics[0]).toHaveProperty('cluster/jobs');
  }, 300_000);
});
