// Runs a recipe (recipes/grpo-qwen-lora.yaml in scripts/qwen-check.sh) in this process and reports
// what a parent process cannot see: the WebAssembly heap's high-water mark (its size at the end: a
// wasm memory only grows) and this process's peak RSS, beside the step's own metrics and whether the
// adapter folder was written. One JSON line on stdout.
//
//   node --import tsx scripts/qwen-grpo-step.ts RECIPE [--set field=value ...]
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { wasmBackend } from '../src/engine/kernels/wasm.ts';
import { runRecipe } from '../src/pipeline/run.ts';
import { loadRecipe } from '../src/recipe/index.ts';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { set: { type: 'string', multiple: true, default: [] } } });
if (positionals.length !== 1) throw new Error('usage: node --import tsx scripts/qwen-grpo-step.ts RECIPE [--set field=value ...]');
const recipe = loadRecipe(positionals[0], { set: values.set });
const t0 = Date.now();
const { runDir } = await runRecipe(recipe, { fresh: true });
const wallS = (Date.now() - t0) / 1000;
const stage = recipe.stages[0].name;
const metricsFile = join(runDir, stage, 'metrics.jsonl');
const steps = readFileSync(metricsFile, 'utf8')
  .split('\n')
  .filter((l) => l.trim())
  .map((l) => JSON.parse(l) as Record<string, number>)
  .filter((m) => typeof m.step === 'number' && 'step_time_s' in m);
if (!steps.length) throw new Error(`${metricsFile}: no step was logged`);
const last = steps[steps.length - 1];
const heap = wasmBackend()?.wasm.HEAPF32.buffer.byteLength ?? null;
const mib = (bytes: number) => Math.round(bytes / 2 ** 20);
process.stdout.write(
  JSON.stringify({
    run_dir: runDir,
    steps: steps.length,
    step_time_s: last.step_time_s,
    generate_s: last['time/generate_s'],
    update_s: last['time/update_s'],
    reward: last.reward,
    reward_std: last.reward_std,
    grad_norm: last.grad_norm,
    kl: last.kl,
    wall_s: wallS,
    peak_rss_mib: mib(process.resourceUsage().maxRSS * 1024),
    wasm_heap_mib: heap === null ? null : mib(heap),
    adapter_saved: existsSync(join(runDir, stage, 'checkpoint', 'adapter_model.safetensors')),
  }) + '\n',
);
