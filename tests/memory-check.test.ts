// The memory plan wired into `r1 recipe` and `r1 run` (src/pipeline/memory-check.ts): a recipe's
// training stages are estimated from config.json alone, before any stage runs, and a stage that will
// not fit is refused with exit 2, the part that overflows and the recipe settings that would help.
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { loadBlas } from '../src/engine/kernels/blas.ts';
import { parameterCount } from '../src/model/config.ts';
import { parseHfConfig } from '../src/model/hf-config.ts';
import { applyPlan, formatPlan, loraTrainable, planRecipe } from '../src/pipeline/memory-check.ts';
import { loadRecipe } from '../src/recipe/index.ts';
import { runR1 } from './cli-run.ts';
import { QWEN25_05B_CONFIG } from '../scripts/make-random-qwen.ts';

const root = mkdtempSync(join(tmpdir(), 'r1-memory-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const savedMatmul = process.env.R1_MATMUL;
afterEach(() => {
  if (savedMatmul === undefined) delete process.env.R1_MATMUL;
  else process.env.R1_MATMUL = savedMatmul;
});

/** Qwen2.5-0.5B-Instruct's config.json as Hugging Face ships it. */
const QWEN05 = QWEN25_05B_CONFIG;
// Only the config: the plan never opens a weight file.
const checkpoint = join(root, 'qwen05');
mkdirSync(checkpoint);
writeFileSync(join(checkpoint, 'config.json'), JSON.stringify(QWEN05));
writeFileSync(join(root, 'prompts.jsonl'), '{"prompt": "What is 1 + 1?", "answer": "2"}\n');

function recipeFile(name: string, lora: string, trainWorkers: number | 'auto' = 1): string {
  const file = join(root, `${name}.yaml`);
  writeFileSync(
    file,
    `name: ${name}
backend: wasm
stages:
  - type: grpo
    model: qwen05
    datasets: [prompts.jsonl]
    per_device_train_batch_size: 4
    num_generations: 4
    gradient_accumulation_steps: 4
    max_prompt_length: 32
    max_completion_length: 64
    beta: 0.04
    train_workers: ${trainWorkers}
    rollout_workers: 1
${lora}`,
  );
  return file;
}

const r1 = runR1;

describe('memory plan before a recipe runs', () => {
  it.runIf(loadBlas().loaded && availableParallelism() > 1)(
    "train_workers auto: one thread per core while every copy fits, the main thread alone when the workers' copies of the weights would not",
    () => {
      process.env.R1_MATMUL = 'auto';
      const recipe = loadRecipe(recipeFile('auto-workers', '    lora: { r: 16 }\n', 'auto'));
      const roomy = planRecipe(recipe, { machineBytes: 64 * 2 ** 30 }).stages[0];
      expect(roomy.input!.threads).toBe(availableParallelism());
      expect(roomy.autoOneWorker).toBeUndefined();
      // 5 GiB holds the main thread's step (about 3.4 GiB) but not a second thread's own copy beside it.
      const tight = planRecipe(recipe, { machineBytes: 5 * 2 ** 30 });
      const stage = tight.stages[0];
      expect(stage.problems).toEqual([]);
      expect(stage.input!.threads).toBe(1);
      expect(stage.autoOneWorker).toMatch(/train_workers auto -> 1: each of \d+ gradient workers would hold its own \d\.\d\d GiB/);
      expect(formatPlan(tight).join('\n')).toMatch(/train_workers auto -> 1/);
      expect(applyPlan(recipe, tight)).toEqual([expect.stringMatching(/^stages\.0 \(grpo\): train_workers auto -> 1/)]);
      expect((recipe.stages[0] as { train_workers: unknown }).train_workers).toBe(1);
      // Where one thread does not fit either, auto is not the fix and the stage is refused as before.
      expect(
        planRecipe(loadRecipe(recipeFile('auto-workers-2', '    lora: { r: 16 }\n', 'auto')), { machineBytes: 2 ** 30 }).stages[0].problems
          .length,
      ).toBeGreaterThan(0);
    },
  );

  it('refuses a full GRPO fine-tune of a Qwen2.5-0.5B-config checkpoint on wasm: exit 2, the parts, LoRA as the fix; r1 run stops before any stage', async () => {
    const file = recipeFile('full', '');
    const checked = await r1(['recipe', file]);
    expect(checked.code).toBe(2);
    // The estimate by part is printed first, then the refusal names the stage, the heap and the fix.
    expect(checked.stdout).toMatch(/memory plan \(backend wasm, .*4\.00 GiB heap per thread/);
    expect(checked.stdout).toMatch(
      /0\. grpo: main thread \d+\.\d+ GiB \(optimizer 3\.68 GiB, .*weights 1\.84 GiB.*reference .*DOES NOT FIT/,
    );
    expect(checked.stderr).toMatch(
      /stages\.0 \(grpo\) will not fit on backend wasm: needs about \d+\.\d+ GiB in the main thread's heap, over its 4\.00 GiB .*train LoRA adapters \(lora: \{ r: 16 \}\)/,
    );
    const ran = await r1(['run', file]);
    expect(ran.code).toBe(2);
    expect(ran.stderr).toMatch(/will not fit .*train LoRA adapters/);
    expect(existsSync(join(root, 'runs', 'full'))).toBe(false);
  });

  it("with LoRA the optimizer is the adapters' alone; on XNNPACK the packed copies overflow and OpenBLAS is named", async () => {
    process.env.R1_MATMUL = 'xnnpack';
    const file = recipeFile('lora', '    lora: { r: 16 }\n');
    const plan = planRecipe(loadRecipe(file), { machineBytes: 64 * 2 ** 30 });
    const stage = plan.stages[0];
    const config = parseHfConfig(QWEN05, 'config.json');
    // r (in + out) for each of the seven projections of each of the 24 layers.
    const C = 896,
      kv = 128,
      F = 4864,
      r = 16;
    const adapters = 24 * r * (C + C + 2 * (C + kv) + (C + C) + 2 * (C + F) + (F + C));
    expect(loraTrainable(config, { r: 16 }, 'lora')).toBe(adapters);
    expect(stage.input).toMatchObject({
      kind: 'grpo',
      lora: true,
      trainable: adapters,
      params: parameterCount(config),
      microBatch: 1,
      seqLength: 96,
      blas: false,
    });
    expect(stage.plan!.main.optimizer).toBe(2 * 4 * adapters);
    expect(stage.plan!.main.reference).toBe(0);
    expect(stage.problems.join()).toMatch(/packed .*install OpenBLAS/);
    const checked = await r1(['recipe', file]);
    expect(checked.code).toBe(2);
    expect(checked.stderr).toMatch(/install OpenBLAS/);
  });

  it('with lora.frozen_dtype: bfloat16 the frozen projections are planned at 2 bytes outside the heap, one layer widened in it', async () => {
    process.env.R1_MATMUL = 'xnnpack';
    const f32 = planRecipe(loadRecipe(recipeFile('lora-f32', '    lora: { r: 16 }\n')), { machineBytes: 64 * 2 ** 30 }).stages[0];
    const file = recipeFile('lora-bf16', '    lora: { r: 16, frozen_dtype: bfloat16 }\n');
    const stage = planRecipe(loadRecipe(file), { machineBytes: 64 * 2 ** 30 }).stages[0];
    const C = 896,
      kv = 128,
      F = 4864;
    const projections = 24 * (C * (C + 2 * kv) + C * C + C * 2 * F + F * C);
    expect(stage.input).toMatchObject({ lora: true, frozenBf16Params: projections });
    expect(f32.input).toMatchObject({ frozenBf16Params: 0 });
    expect(stage.plan!.outside).toBe(2 * projections);
    expect(stage.plan!.main.weights).toBe(f32.plan!.main.weights - 4 * (projections - projections / 24));
    expect(f32.problems.join()).toMatch(/lora: \{ frozen_dtype: bfloat16 \}/);
    const checked = await r1(['recipe', file]);
    expect(checked.stdout).toMatch(/0\. grpo: .*; bf16 frozen weights 0\.67 GiB outside the heap; in all/);
    // On XNNPACK, where the float32 base and its packed copies do not fit the heap, this one does.
    expect(f32.problems).not.toEqual([]);
    expect(checked.code).toBe(0);
  });

  it.runIf(loadBlas().loaded)('with LoRA and BLAS running the products the same stage fits, and r1 recipe prints its plan', async () => {
    process.env.R1_MATMUL = 'auto';
    const checked = await r1(['recipe', recipeFile('lora-blas', '    lora: { r: 16 }\n')]);
    expect(checked.stderr).toBe('');
    expect(checked.code).toBe(0);
    expect(checked.stdout).toMatch(/products on BLAS/);
    expect(checked.stdout).toMatch(/0\. grpo: main thread [0-3]\.\d+ GiB \(weights 1\.84 GiB, .*adapters 0\.03 GiB/);
    expect(checked.stdout).not.toMatch(/DOES NOT FIT/);
  });
});
