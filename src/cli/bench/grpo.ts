// `r1 bench grpo`: seconds per GRPO step of the reference model (--model tiny, the default; small,
// base: see sizes.ts) (8 prompts x G = 8, 96 new tokens)
// and its split into generate / score / update, with rollouts on the main thread and in the worker
// pool. Runs the real stage through a throwaway recipe, so it measures what a user's run does.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { BenchOptions } from '../commands/bench.ts';
import { Rng } from '../../engine/rng.ts';
import { readMetrics } from '../../metrics/logger.ts';
import { UserError } from '../../errors.ts';
import type { ModelConfig } from '../../model/config.ts';
import { SIZES, sizeNamed } from './sizes.ts';
import { runRecipe } from '../../pipeline/run.ts';
import { loadRecipe } from '../../recipe/index.ts';

/** Writes 64 rows of one-step sums (prompt, answer, a worked text) to <dir>/rows.jsonl: the GRPO
 * benchmarks' data. */
export function writeSumRows(dir: string): void {
  const rng = new Rng(0);
  const rows = Array.from({ length: 64 }, () => {
    const a = rng.int(100),
      b = rng.int(100);
    return {
      prompt: `What is ${a} + ${b}?`,
      answer: String(a + b),
      text: `${a} + ${b} = ${a + b}. <think> add </think> <answer> ${a + b} </answer>`,
    };
  });
  writeFileSync(join(dir, 'rows.jsonl'), rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
}

export type GrpoBenchRun = {
  name: string;
  backend: string;
  config: ModelConfig;
  steps: number;
  rolloutWorkers: number;
  trainWorkers?: number | 'auto';
  /** Extra top-level recipe YAML (a cluster: line). */
  extra?: string;
};

/** Runs a GRPO stage of 8 prompts x G=8 (up to 96 new tokens) on <dir>/rows.jsonl from a fresh model
 * of `config`, and returns each metric's mean over its steps after the first (which pays for start-up
 * and warm-up). */
export async function runGrpoBench(dir: string, r: GrpoBenchRun): Promise<(metric: string) => number> {
  const yaml = `
name: ${r.name}
seed: 0
backend: ${r.backend}
output_dir: runs
model: ${JSON.stringify({ ...r.config, vocab_size: 0 })}
tokenizer: { train: { datasets: [rows.jsonl], vocab_size: ${r.config.vocab_size} } }
${r.extra ?? ''}
stages:
  - name: grpo
    type: grpo
    model: init
    datasets: [rows.jsonl]
    num_generations: 8
    per_device_train_batch_size: 64
    max_prompt_length: 96
    max_completion_length: 96
    max_steps: ${r.steps}
    train_workers: ${r.trainWorkers === undefined || r.trainWorkers === 'auto' ? "'auto'" : r.trainWorkers}
    rollout_workers: ${r.rolloutWorkers}
    rewards: [{ name: accuracy }, { name: format }]
`;
  writeFileSync(join(dir, `${r.name}.yaml`), yaml);
  const sink = Object.assign(new Writable({ write: (_c, _e, cb) => cb() }), { isTTY: false });
  const { runDir } = await runRecipe(loadRecipe(join(dir, `${r.name}.yaml`)), { fresh: true, log: () => {}, progressStream: sink });
  const m = readMetrics(join(runDir, 'grpo', 'metrics.jsonl')).slice(1);
  return (k: string) => m.reduce((a, row) => a + Number(row[k] ?? 0), 0) / m.length;
}

export async function run(opts: BenchOptions): Promise<Record<string, unknown>[]> {
  const size = sizeNamed(opts.model ?? 'tiny');
  if (!size) throw new UserError(`bench grpo --model takes a size (${Object.keys(SIZES).join(', ')}), not a checkpoint`);
  const config = SIZES[size];
  const dir = mkdtempSync(join(tmpdir(), 'r1-bench-grpo-'));
  writeSumRows(dir);
  const steps = opts.quick ? 2 : 4;
  const workerCounts = opts.workers !== undefined ? [Number(opts.workers)] : opts.backend === 'webgpu' ? [0] : [0, availableParallelism()];
  const out: Record<string, unknown>[] = [];
  for (const workers of workerCounts) {
    const avg = await runGrpoBench(dir, {
      name: `bench-grpo-${workers}`,
      backend: opts.backend,
      config,
      steps: size === 'tiny' ? steps : 2,
      rolloutWorkers: workers,
      trainWorkers: opts.backend === 'webgpu' ? 1 : 'auto',
    });
    const total = avg('step_time_s'),
      gen = avg('time/generate_s'),
      score = avg('time/score_s');
    out.push({
      bench: 'grpo',
      backend: opts.backend,
      model: size,
      rollout_workers: workers,
      prompts: 8,
      group: 8,
      new_tokens_max: 96,
      s_per_step: +total.toFixed(3),
      generate_s: +gen.toFixed(3),
      score_s: +score.toFixed(3),
      update_s: +(total - gen - score).toFixed(3),
      mean_completion_tokens: +avg('completions/mean_length').toFixed(1),
    });
  }
  if (out.length === 2)
    out.push({ bench: 'grpo', speedup_from_pool: +((out[0].s_per_step as number) / (out[1].s_per_step as number)).toFixed(2) });
  rmSync(dir, { recursive: true, force: true });
  return out;
}
