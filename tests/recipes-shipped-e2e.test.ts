// The shipped R1-Zero and R1 recipes, shortened: their quick: profile plus a tiny model and a few
// steps, run end to end on the shipped data (r1-zero's quick profile starts from the shipped base
// model, data/r1-zero-base, so its stages run that model). Checks that every stage ran, took its model or dataset
// from the stage the recipe names, and wrote its metrics and artifacts. The full runs are not tests;
// their numbers are in the README.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { loadRecipe, modelSource, datasetSources } from '../src/recipe/index.ts';
import { runRecipe } from '../src/pipeline/run.ts';
import { readMetrics } from '../src/metrics/logger.ts';
import { readSafetensors } from '../src/engine/safetensors.ts';

const quiet = { log: () => {}, progressStream: Object.assign(new Writable({ write: (_c, _e, cb) => cb() }), { isTTY: false }) };
const out = mkdtempSync(join(tmpdir(), 'r1-shipped-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

/** A tiny model and a handful of steps, on top of the recipe's own quick: profile. */
function tiny(recipeFile: string, extra: string[]) {
  const recipe = loadRecipe(recipeFile, { quick: true, set: [`output_dir=${out}`, ...extra] });
  const set = [
    `output_dir=${out}`,
    'model.hidden_size=32',
    'model.num_hidden_layers=1',
    'model.num_attention_heads=2',
    'model.num_key_value_heads=1',
    'model.intermediate_size=64',
  ];
  for (const s of recipe.stages) {
    const at = `stages.${s.name}`;
    if (s.type === 'pretrain') set.push(`${at}.max_steps=3`, `${at}.per_device_train_batch_size=2`, `${at}.save_steps=2`);
    if (s.type === 'sft') set.push(`${at}.num_train_epochs=1`, `${at}.max_steps=2`);
    if (s.type === 'grpo')
      set.push(`${at}.max_steps=2`, `${at}.per_device_train_batch_size=8`, `${at}.num_generations=4`, `${at}.max_completion_length=12`);
    if (s.type === 'eval') set.push(`${at}.max_samples=3`, `${at}.num_generations=2`, `${at}.max_new_tokens=12`);
    // An untrained model is never right: let every sample through, so the next stage gets data.
    if (s.type === 'rejection-sampling')
      set.push(
        `${at}.max_samples=4`,
        `${at}.num_generations=2`,
        `${at}.max_new_tokens=12`,
        `${at}.reward_threshold=0`,
        `${at}.filters.language=null`,
      );
  }
  return loadRecipe(recipeFile, { quick: true, set: [...set, ...extra] });
}

type Tensors = Map<string, Float32Array>;
/** The weights of a checkpoint folder (Hugging Face layout). */
const checkpointWeights = (checkpoint: string): Tensors => {
  const { tensors } = readSafetensors(join(checkpoint, 'model.safetensors'));
  return new Map(Object.entries(tensors).map(([k, v]) => [k, v.data as Float32Array]));
};
/** The weights a stage of a run wrote. */
const weights = (stageDir: string): Tensors => checkpointWeights(join(stageDir, 'checkpoint'));
const same = (a: Tensors, b: Tensors) =>
  [...a].every(([k, v]) => b.has(k) && v.length === b.get(k)!.length && v.every((x, i) => x === b.get(k)![i]));

async function runAndCheck(recipeFile: string, extra: string[] = []) {
  const recipe = tiny(recipeFile, extra);
  expect(recipe.name.endsWith('-quick')).toBe(true);
  const { runDir, manifest } = await runRecipe(recipe, quiet);
  recipe.stages.forEach((s, i) => {
    const dir = join(runDir, s.name);
    expect(manifest.stages[s.name]?.status, s.name).toBe('done');
    expect(readMetrics(join(dir, 'metrics.jsonl')).length, `${s.name} metrics`).toBeGreaterThan(0);
    if (s.type === 'eval') {
      const report = JSON.parse(readFileSync(join(dir, 'eval.json'), 'utf8'));
      expect(report.prompts, s.name).toBe(3);
      for (const k of ['pass@1', 'format_rate', 'language_consistency', 'mean_length']) expect(report, `${s.name}.${k}`).toHaveProperty(k);
    } else if (s.type === 'rejection-sampling') {
      const rows = readFileSync(join(dir, 'dataset.jsonl'), 'utf8').trim().split('\n');
      expect(rows.length, s.name).toBeGreaterThan(0);
    } else {
      expect(existsSync(join(dir, 'checkpoint', 'model.safetensors')), s.name).toBe(true);
    }
    // The hand-over: a trained stage starts from its source's weights (same shapes) and moves them.
    const src = modelSource(recipe, i);
    if (src.kind !== 'init' && s.type !== 'eval' && s.type !== 'rejection-sampling') {
      const from = src.kind === 'stage' ? src.stage : src.path;
      const [before, after] = [src.kind === 'stage' ? weights(join(runDir, src.stage)) : checkpointWeights(src.path), weights(dir)];
      expect([...after.keys()].sort(), `${s.name} from ${from}`).toEqual([...before.keys()].sort());
      for (const [k, v] of after) expect(v.length, `${s.name}.${k}`).toBe(before.get(k)!.length);
      expect(same(before, after), `${s.name} trained`).toBe(false);
    }
    for (const d of datasetSources(recipe, i))
      if (d.kind === 'stage') expect(manifest.stages[d.stage]?.status, `${s.name} reads ${d.stage}`).toBe('done');
  });
  return { runDir, recipe };
}

describe('shipped recipes, shortened', () => {
  it('r1-zero: eval base -> GRPO -> eval, starting from the shipped base model (the full recipe pretrains it)', async () => {
    const { runDir, recipe } = await runAndCheck('recipes/r1-zero.yaml');
    expect(loadRecipe('recipes/r1-zero.yaml').stages.map((s) => s.type)).toEqual(['pretrain', 'eval', 'grpo', 'eval']);
    // --quick skips pretraining: the base eval and GRPO load data/r1-zero-base, with its tokenizer.
    expect(recipe.stages.map((s) => s.type)).toEqual(['eval', 'grpo', 'eval']);
    const base = resolve('data/r1-zero-base');
    for (const i of [0, 1]) expect(modelSource(recipe, i), recipe.stages[i].name).toEqual({ kind: 'checkpoint', path: base });
    expect(modelSource(recipe, 2)).toEqual({ kind: 'stage', stage: 'grpo' });
    expect(resolve(recipe.recipeDir, recipe.tokenizer.path!)).toBe(base);
    expect(recipe.tokenizer.train).toBeNull();
    // The run used the base's own tokenizer and architecture (the tiny model.* overrides do not apply to a checkpoint).
    expect(readFileSync(join(runDir, 'grpo', 'checkpoint', 'tokenizer.json'), 'utf8')).toBe(
      readFileSync(join(base, 'tokenizer.json'), 'utf8'),
    );
    expect(JSON.parse(readFileSync(join(runDir, 'grpo', 'checkpoint', 'config.json'), 'utf8'))).toEqual(
      JSON.parse(readFileSync(join(base, 'config.json'), 'utf8')),
    );
  }, 300_000);

  it("r1-zero: the shipped base has the architecture of the recipe's model and is a few MB", () => {
    const full = loadRecipe('recipes/r1-zero.yaml');
    const config = JSON.parse(readFileSync('data/r1-zero-base/config.json', 'utf8'));
    const { model } = full;
    expect(config).toMatchObject({
      model_type: 'llama',
      vocab_size: model.vocab_size,
      hidden_size: model.hidden_size,
      num_hidden_layers: model.num_hidden_layers,
      num_attention_heads: model.num_attention_heads,
      num_key_value_heads: model.num_key_value_heads,
      intermediate_size: model.intermediate_size,
      max_position_embeddings: model.max_position_embeddings,
      tie_word_embeddings: model.tie_word_embeddings,
    });
    const bytes = readdirSync('data/r1-zero-base').reduce((a, f) => a + statSync(join('data/r1-zero-base', f)).size, 0);
    expect(bytes).toBeLessThan(5 * 2 ** 20);
  });

  it('r1-zero-moe: the same pipeline on a DeepSeek-V3-style model (MLA, MoE, MTP while pretraining)', async () => {
    const small = [
      'model.num_hidden_layers=2',
      'model.num_attention_heads=2',
      'model.num_key_value_heads=2',
      'model.kv_lora_rank=16',
      'model.qk_nope_head_dim=8',
      'model.qk_rope_head_dim=4',
      'model.v_head_dim=8',
      'model.moe_intermediate_size=16',
    ];
    const { runDir, recipe } = await runAndCheck('recipes/r1-zero-moe.yaml', small);
    expect(recipe.stages.map((s) => s.type)).toEqual(['pretrain', 'eval', 'grpo', 'eval']);
    const config = JSON.parse(readFileSync(join(runDir, 'grpo', 'checkpoint', 'config.json'), 'utf8'));
    expect(config).toMatchObject({ model_type: 'deepseek_v3', n_routed_experts: 8, num_nextn_predict_layers: 1 });
    const pre = readMetrics(join(runDir, 'pretrain', 'metrics.jsonl')).at(-1)!;
    for (const k of ['mtp_loss', 'lm_loss', 'moe/max_over_mean', 'moe/load/1/0']) expect(pre, k).toHaveProperty(k);
    expect(readMetrics(join(runDir, 'grpo', 'metrics.jsonl')).at(-1)!).toHaveProperty('moe/max_over_mean');
  }, 300_000);

  it('r1: cold start -> reasoning RL -> rejection sampling + general data -> SFT from base -> RL -> eval; distillation', async () => {
    const { runDir, recipe } = await runAndCheck('recipes/r1.yaml');
    expect(recipe.stages.map((s) => s.type)).toEqual([
      'pretrain',
      'sft',
      'eval',
      'grpo',
      'eval',
      'rejection-sampling',
      'sft',
      'grpo',
      'eval',
      'rejection-sampling',
      'pretrain',
      'eval',
      'sft',
      'eval',
    ]);
    // The general (non-reasoning) rows were mixed into the SFT data, and the student is the smaller model.
    const sft = readFileSync(join(runDir, 'rejection-sampling', 'dataset.jsonl'), 'utf8');
    expect(sft).toContain('"messages"');
    const student = JSON.parse(readFileSync(join(runDir, 'distill', 'checkpoint', 'config.json'), 'utf8'));
    const main = JSON.parse(readFileSync(join(runDir, 'grpo-all', 'checkpoint', 'config.json'), 'utf8'));
    const init = recipe.stages.find((s) => s.name === 'pretrain-student')!.init_config!;
    expect(student.num_hidden_layers).toBe(init.num_hidden_layers);
    expect(student.hidden_size).toBe(init.hidden_size);
    expect(student.hidden_size).not.toBe(main.hidden_size);
  }, 600_000);

  it('grpo-hf: GRPO from a Hugging Face-layout directory (scripts/make-hf-tiny.ts) with its own chat template', async () => {
    // The tiny pretrained model the script expects, shortened like the others.
    const pre = tiny('recipes/pretrain-tiny.yaml', ['stages.eval.max_samples=2', 'stages.eval.num_generations=1']);
    const { runDir: preDir } = await runRecipe(pre, quiet);
    const { makeHfTiny, CHAT_TEMPLATE } = await import('../scripts/make-hf-tiny.ts');
    const hf = join(out, 'hf-tiny');
    await makeHfTiny(join(preDir, 'pretrain', 'checkpoint'), hf);
    expect(JSON.parse(readFileSync(join(hf, 'tokenizer_config.json'), 'utf8')).chat_template).toBe(CHAT_TEMPLATE);
    expect(JSON.parse(readFileSync(join(hf, 'generation_config.json'), 'utf8')).eos_token_id).toHaveLength(2);
    const { runDir } = await runAndCheck('recipes/grpo-hf.yaml', [`stages.grpo.model=${hf}`]);
    // The prompts went through the model's own template; GRPO moved the weights it loaded.
    const sample = JSON.parse(readFileSync(join(runDir, 'grpo', 'samples.jsonl'), 'utf8').split('\n')[0]);
    expect(JSON.stringify(sample)).toContain('<|user|>');
    expect(same(weights(join(preDir, 'pretrain')), weights(join(runDir, 'grpo')))).toBe(false);
  }, 300_000);
});
