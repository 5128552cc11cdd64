// The memory plan on a GPU (`r1 recipe FILE --gpu-memory GiB`, pipeline/memory-check.ts): GRPO on
// DeepSeek-R1-Distill-Qwen-7B's published config.json (tests/fixtures/r1-distill-qwen-7b, no weights)
// against one 80 GiB adapter. With LoRA and gradient checkpointing it fits; without checkpointing the
// activations do not, and the refusal names gradient_checkpointing; a full fine-tune does not fit at all.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runR1 } from './cli-run.ts';

const root = mkdtempSync(join(tmpdir(), 'r1-gpu-plan-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
writeFileSync(join(root, 'prompts.jsonl'), '{"prompt": "What is 1 + 1?", "answer": "2"}\n');
const MODEL_7B = resolve('tests/fixtures/r1-distill-qwen-7b');

/** GRPO: 8 prompts x G = 8 a step, 512 + 1024 tokens, micro-batches of 4 rows, generation on the GPU. */
function recipeFile(name: string, extra: string, backend = 'webgpu', rolloutWorkers = '0'): string {
  const file = join(root, `${name}.yaml`);
  writeFileSync(
    file,
    `name: ${name}
backend: ${backend}
stages:
  - type: grpo
    model: ${MODEL_7B}
    datasets: [prompts.jsonl]
    per_device_train_batch_size: 64
    num_generations: 8
    gradient_accumulation_steps: 16
    max_prompt_length: 512
    max_completion_length: 1024
    beta: 0.04
    rollout_workers: ${rolloutWorkers}
${extra}`,
  );
  return file;
}

const r1 = runR1;

describe('memory plan on one 80 GiB GPU (webgpu)', () => {
  it('accepts a 7B GRPO step with LoRA and gradient checkpointing, and says what it holds', async () => {
    const r = await r1([
      'recipe',
      recipeFile('lora-ckpt', '    lora: { r: 16 }\n    gradient_checkpointing: true\n'),
      '--gpu-memory',
      '80',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/memory plan \(backend webgpu, GPU 80\.00 GiB\)/);
    expect(r.stdout).toMatch(/0\. grpo: on the GPU (\d+)\.\d+ GiB \(weights 28\.37 GiB, activations 13\.83 GiB, kv_cache 10\.50 GiB/);
    expect(r.stdout).not.toMatch(/DOES NOT FIT/);
  });

  it('plans generation on the GPU with rollout_workers: auto too (no rollout threads, each a second device and weights)', async () => {
    const r = await r1([
      'recipe',
      recipeFile('lora-ckpt-auto', '    lora: { r: 16 }\n    gradient_checkpointing: true\n', 'webgpu', 'auto'),
      '--gpu-memory',
      '80',
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/0\. grpo: on the GPU \d+\.\d+ GiB \(weights 28\.37 GiB, activations 13\.83 GiB, kv_cache 10\.50 GiB/);
  });

  it('refuses it without checkpointing (activations), naming gradient_checkpointing: true', async () => {
    const r = await r1(['recipe', recipeFile('lora', '    lora: { r: 16 }\n'), '--gpu-memory', '80']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /stages\.0 \(grpo\) will not fit on backend webgpu: needs about \d+\.\d+ GiB on the GPU, over its 80\.00 GiB \(activations 205\.08 GiB.*set gradient_checkpointing: true/,
    );
  });

  it('refuses a full fine-tune even with checkpointing (fp32 weights, gradients, AdamW and the reference), naming LoRA', async () => {
    const r = await r1(['recipe', recipeFile('full', '    gradient_checkpointing: true\n'), '--gpu-memory', '80']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /over its 80\.00 GiB \(optimizer 56\.74 GiB, weights 28\.37 GiB, gradients 28\.37 GiB, reference 28\.37 GiB.*train LoRA adapters/,
    );
  });

  it('refuses --gpu-memory for a recipe that does not run on a GPU, and a value that is not a size', async () => {
    const wasm = await r1(['recipe', recipeFile('wasm', '', 'wasm'), '--gpu-memory', '80']);
    expect(wasm.code).toBe(2);
    expect(wasm.stderr).toMatch(/--gpu-memory is for a GPU backend .*backend is wasm/);
    const bad = await r1(['recipe', recipeFile('bad', ''), '--gpu-memory', 'lots']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--gpu-memory lots: give the GPU's memory in GiB/);
  });
});
