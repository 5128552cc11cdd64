// LoRA through the pipeline: a GRPO stage and a DPO stage with `lora:` learn, write PEFT adapter
// folders, leave the base checkpoint as it was, and the adapter folder's logits equal the merged
// checkpoint's that `r1 convert --merge` writes.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { readMetrics } from '../src/metrics/logger.ts';
import { runRecipe } from '../src/pipeline/run.ts';
import { loadRecipe } from '../src/recipe/index.ts';

const quiet = { log: () => {}, progressStream: Object.assign(new Writable({ write: (_c, _e, cb) => cb() }), { isTTY: false }) };
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const fixture = (f: string) => f; // copied beside the recipe
const r1 = (...args: string[]) =>
  execFileSync(process.execPath, [resolve('bin/r1.js'), ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

const recipe = (out: string) => `
name: rl-lora
seed: 3
backend: wasm
output_dir: ${out}
model: { vocab_size: 0, hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, intermediate_size: 64, max_position_embeddings: 64 }
tokenizer: { train: { datasets: [${fixture('corpus.jsonl')}], vocab_size: 290 } }
stages:
  - { name: pretrain, type: pretrain, datasets: [${fixture('corpus.jsonl')}], seq_length: 32, per_device_train_batch_size: 8, max_steps: 30, learning_rate: 1.0e-2 }
  - name: grpo
    type: grpo
    model: pretrain
    datasets: [${fixture('prompts.jsonl')}]
    template: none
    num_generations: 4
    per_device_train_batch_size: 16
    max_prompt_length: 16
    max_completion_length: 12
    max_steps: 20
    learning_rate: 1.0e-2
    beta: 0.02
    rollout_workers: 0
    lora: { r: 8, alpha: 8 }
    rewards: [{ name: ./brevity.ts#brevity }]
  - { name: dpo, type: dpo, model: pretrain, datasets: [${fixture('prefs.jsonl')}], template: none, per_device_train_batch_size: 8, max_steps: 8, learning_rate: 5.0e-2, beta: 0.5, lora: { r: 4 } }
`;

describe('LoRA stages', () => {
  it('GRPO and DPO with lora: learn, save PEFT adapters, keep the base, and equal their merged checkpoint', async () => {
    const root = mkdtempSync(join(tmpdir(), 'r1-lora-run-'));
    for (const f of ['corpus.jsonl', 'prompts.jsonl', 'prefs.jsonl', 'brevity.ts']) cpSync(resolve('tests/fixtures/rl', f), join(root, f));
    const file = join(root, 'rl-lora.yaml');
    writeFileSync(file, recipe(join(root, 'runs')));
    const { runDir } = await runRecipe(loadRecipe(file), quiet);
    const base = join(runDir, 'pretrain', 'checkpoint'),
      baseBytes = readFileSync(join(base, 'model.safetensors'));

    const grpo = readMetrics(join(runDir, 'grpo', 'metrics.jsonl'));
    const rewards = grpo.map((r) => r.reward as number);
    expect(mean(rewards.slice(-5))).toBeGreaterThan(mean(rewards.slice(0, 5)) + 0.1);
    expect(grpo.at(-1)!.kl as number).toBeGreaterThan(0); // the adapters moved the policy off the base

    const adapter = join(runDir, 'grpo', 'checkpoint');
    expect(existsSync(join(adapter, 'model.safetensors'))).toBe(false);
    const cfg = JSON.parse(readFileSync(join(adapter, 'adapter_config.json'), 'utf8'));
    expect(cfg).toMatchObject({ peft_type: 'LORA', r: 8, lora_alpha: 8, base_model_name_or_path: base });
    expect(cfg.target_modules).toEqual(['down_proj', 'gate_proj', 'k_proj', 'o_proj', 'q_proj', 'up_proj', 'v_proj']);
    expect(existsSync(join(adapter, 'tokenizer.json'))).toBe(true);
    expect(readFileSync(join(base, 'model.safetensors')).equals(baseBytes)).toBe(true);

    const dpo = readMetrics(join(runDir, 'dpo', 'metrics.jsonl'));
    expect(dpo[0]['rewards/accuracies']).toBe(0); // adapters start at B = 0: policy == reference
    expect(dpo.at(-1)!['rewards/margins'] as number).toBeGreaterThan(0);

    // r1 logits of the adapter folder = r1 logits of the merged checkpoint (1e-5).
    const merged = join(root, 'merged');
    r1('convert', '--model', adapter, '--merge', '--output', merged);
    expect(existsSync(join(merged, 'model.safetensors'))).toBe(true);
    const ids = '1,40,7,99,3,12;5,5,200,31,8,2';
    const logits = (model: string) => {
      const out = join(root, `logits-${Math.random()}.json`);
      r1('logits', '--model', model, '--ids', ids, '--output', out);
      return (JSON.parse(readFileSync(out, 'utf8')).logits as number[][][]).flat(2);
    };
    const a = logits(adapter),
      m = logits(merged),
      b = logits(base);
    expect(Math.max(...a.map((x, i) => Math.abs(x - m[i])))).toBeLessThan(1e-5);
    expect(Math.max(...a.map((x, i) => Math.abs(x - b[i])))).toBeGreaterThan(1e-3);
    expect(() => r1('convert', '--model', base, '--merge', '--output', join(root, 'x'))).toThrow(
      /--merge: .* is not a LoRA adapter folder/,
    );
  }, 240_000);
});
