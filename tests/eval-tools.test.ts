// Tools in the sampling stages that do not train: eval and rejection sampling take the same `tools:`
// block as GRPO and run the same multi-turn loop (stages/sample.ts -> rollout/engines.ts ->
// multi-turn.ts). The eval's samples record the turns, its pass@1 reads the trajectory's final
// answer, and the rewards see the turns; rejection sampling keeps whole trajectories.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runRecipe } from '../src/pipeline/run.ts';
import { loadRecipe } from '../src/recipe/index.ts';
import { validateRecipe } from '../src/recipe/load.ts';
import { R1_FORMAT } from '../src/rollout/multi-turn.ts';

type Turn = { text: string; call: { tool: string; code: string; output: string; error: string | null } | null };
type Sample = { completion: string; answer: string; rewards: Record<string, number>; turns?: Turn[]; tool_tokens?: number };

const readJsonl = <T>(file: string): T[] =>
  readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as T);

describe('eval and rejection sampling with tools (pretrain on tool traces -> evals with and without the JavaScript tool -> rejection sampling)', () => {
  const RUNS = mkdtempSync(join(tmpdir(), 'r1-eval-tools-'));
  let runDir = '';
  afterAll(() => rmSync(RUNS, { recursive: true, force: true }));
  beforeAll(async () => {
    const recipe = loadRecipe(resolve('tests/fixtures/tools/eval-tools.yaml'), {
      set: [`output_dir=${RUNS}`, 'sandbox.isolation=process'],
    });
    const quiet = { log: () => {}, progressStream: Object.assign(new Writable({ write: (_c, _e, cb) => cb() }), { isTTY: false }) };
    ({ runDir } = await runRecipe(recipe, quiet));
  }, 300_000);

  it('records the turns of each eval sample, the calls run in the sandbox with their outputs', () => {
    const samples = readJsonl<Sample>(join(runDir, 'eval-with-tools', 'samples.jsonl'));
    expect(samples).toHaveLength(12);
    const calls = samples.flatMap((s) => s.turns!.filter((t) => t.call).map((t) => t.call!));
    expect(calls.length).toBeGreaterThan(0); // the pretrained model writes <code> and the tool runs
    // The completion is the turns in order, each call's output between them.
    for (const s of samples) {
      let at = 0;
      for (const t of s.turns!) {
        expect(s.completion.indexOf(t.text, at)).toBe(at);
        at += t.text.length;
        if (t.call) at = s.completion.indexOf('</output>\n', at) + '</output>\n'.length;
      }
    }
    // The sandbox ran the code: a call printing a sum shows that sum (JavaScript computed it).
    const sums = calls.filter((c) => !c.error && /^console\.log\((\d+)\+(\d+)\)$/.test(c.code.trim()));
    expect(sums.length).toBeGreaterThan(0);
    for (const c of sums) {
      const [, a, b] = /(\d+)\+(\d+)/.exec(c.code)!;
      expect(c.output.trim()).toBe(String(Number(a) + Number(b)));
    }
    const withCall = samples.find((s) => s.turns!.some((t) => t.call))!;
    expect(withCall.completion).toContain('<output>\n');
    expect(withCall.tool_tokens).toBeGreaterThan(0);
  });

  it('computes pass@1 on the final answer of the whole trajectory and logs the tool metrics', () => {
    const samples = readJsonl<Sample>(join(runDir, 'eval-with-tools', 'samples.jsonl'));
    const rows = readJsonl<{ prompt: string; answer: string }>(resolve('tests/fixtures/tools/prompts.jsonl')).slice(0, 6);
    // Right: the trajectory's <answer> (after the tool output) holds the row's answer.
    const right = samples.map((s, i) => {
      const m = /<answer>(.*?)<\/answer>/.exec(s.completion);
      return m !== null && m[1].trim() === rows[Math.floor(i / 2)].answer ? 1 : 0;
    });
    const report = JSON.parse(readFileSync(join(runDir, 'eval-with-tools', 'eval.json'), 'utf8'));
    expect(report['pass@1']).toBeCloseTo(right.reduce<number>((a, b) => a + b, 0) / right.length, 10);
    expect(report.tools['tools/calls_per_trajectory']).toBeCloseTo(
      samples.reduce((a, s) => a + s.turns!.filter((t) => t.call).length, 0) / samples.length,
      10,
    );
    expect(report.tools).toHaveProperty('tools/used_share');
    const metrics = readJsonl<Record<string, number>>(join(runDir, 'eval-with-tools', 'metrics.jsonl'));
    expect(metrics[0]['tools/calls_per_trajectory']).toBe(report.tools['tools/calls_per_trajectory']);
  });

  it('runs single-turn without tools: no call runs, no turns recorded, no tool metrics', () => {
    const samples = readJsonl<Sample>(join(runDir, 'eval-without-tools', 'samples.jsonl'));
    expect(samples.every((s) => s.turns === undefined)).toBe(true);
    // Without a tool the model writes its own <output> (if any): never one the sandbox wrote.
    const report = JSON.parse(readFileSync(join(runDir, 'eval-without-tools', 'eval.json'), 'utf8'));
    expect(report.tools).toBeUndefined();
  });

  it('keeps whole trajectories in rejection sampling, tool output included, with their turns', () => {
    const rows = readJsonl<{ completion: string; turns?: Turn[]; tools?: string[] }>(join(runDir, 'rs', 'dataset.jsonl'));
    expect(rows).toHaveLength(12); // threshold 0: every sample kept
    // The tools the prompt offered travel with the row, so an SFT on it renders the same prompt.
    for (const r of rows) expect(r.tools).toEqual(['javascript']);
    const withCall = rows.filter((r) => r.turns?.some((t) => t.call));
    expect(withCall.length).toBeGreaterThan(0);
    expect(withCall[0].completion).toContain('<output>\n');
  });
});

describe('recipe check of eval and rejection-sampling tools', () => {
  const problems = (stage: Record<string, unknown>) => {
    try {
      validateRecipe(
        {
          model: { hidden_size: 16, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1, intermediate_size: 32 },
          tokenizer: { train: { vocab_size: 300, datasets: ['x.jsonl'] } },
          stages: [{ datasets: ['x.jsonl'], tools: { names: ['python'] }, ...stage }],
        },
        '/tmp',
      );
      return '';
    } catch (e) {
      return (e as Error).message;
    }
  };
  it('names the field of a chat form without the chat template and of a missing environment', () => {
    for (const type of ['eval', 'rejection-sampling']) {
      expect(problems({ type, tools: { format: 'chat' } })).toMatch(
        /stages\.0\.tools\.format: chat renders the prompt .* set template: chat/,
      );
      expect(problems({ type, tools: { environment: './missing-env.ts#Env' } })).toMatch(
        /stages\.0\.tools\.environment: module not found: .*missing-env\.ts/,
      );
      expect(problems({ type })).not.toMatch(/tools/);
    }
  });
});

describe('the r1 output block after a turn', () => {
  it('opens on a new line, unless the turn ended in that newline already (a `>\\n` token)', () => {
    expect(R1_FORMAT.around('so <code>print(1)</code>').open).toBe('\n<output>\n');
    expect(R1_FORMAT.around('so <code>\nprint(1)\n</code>\n').open).toBe('<output>\n');
    expect(R1_FORMAT.around('so <code>print(1)</code>\n').close).toBe('\n</output>\n');
  });
});
