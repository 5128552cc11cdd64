import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/engine/backend.ts';
import { Rng } from '../src/engine/rng.ts';
import { readMetrics } from '../src/metrics/logger.ts';
import { generate } from '../src/model/generate.ts';
import { Tokenizer } from '../src/model/tokenizer.ts';
import { Transformer } from '../src/model/transformer.ts';
import { runRecipe } from '../src/pipeline/run.ts';
import { repeatedNgramShare } from '../src/stages/rejection-sampling.ts';
import { loadRecipe } from '../src/recipe/index.ts';
import { RolloutPool, defaultWorkers } from '../src/rollout/pool.ts';

const quiet = { log: () => {}, progressStream: Object.assign(new Writable({ write: (_c, _e, cb) => cb() }), { isTTY: false }) };
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
// The runs go to a temporary folder, not the fixtures' output_dir (the repository's runs/test).
const RUNS = mkdtempSync(join(tmpdir(), 'r1-rl-stages-'));
afterAll(() => rmSync(RUNS, { recursive: true, force: true }));

describe('RL stages end to end (pretrain -> grpo -> dpo on toy tasks)', () => {
  it('GRPO raises the reward and DPO the preference accuracy', async () => {
    const recipe = loadRecipe(resolve('tests/fixtures/rl/rl.yaml'), { set: [`output_dir=${RUNS}`] });
    const { runDir } = await runRecipe(recipe, quiet);

    const grpo = readMetrics(join(runDir, 'grpo', 'metrics.jsonl'));
    expect(grpo).toHaveLength(16);
    for (const key of [
      'reward',
      'reward_std',
      'rewards/brevity/mean',
      'kl',
      'clip_ratio/region_mean',
      'clip_ratio/low_mean',
      'clip_ratio/high_mean',
      'frac_reward_zero_std',
      'entropy',
      'completions/mean_length',
      'completions/min_length',
      'completions/max_length',
      'completions/clipped_ratio',
      'time/generate_s',
      'time/score_s',
      'learning_rate',
    ]) {
      expect(grpo[0], key).toHaveProperty(key);
    }
    const rewards = grpo.map((r) => r.reward as number);
    expect(mean(rewards.slice(-3))).toBeGreaterThan(mean(rewards.slice(0, 3)) + 0.2);
    expect(grpo.at(-1)!.kl as number).toBeGreaterThan(0); // the policy moved away from the reference
    const samples = readFileSync(join(runDir, 'grpo', 'samples.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(samples).toHaveLength(16 * 16);
    expect(samples[0]).toHaveProperty('advantage');
    // the question before the template, which the samples browser shows first
    const questions = new Set(
      readFileSync(resolve('tests/fixtures/rl/prompts.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).prompt),
    );
    expect(samples.every((x: { question: unknown }) => questions.has(x.question))).toBe(true);

    const dpo = readMetrics(join(runDir, 'dpo', 'metrics.jsonl'));
    const acc = dpo.map((r) => r['rewards/accuracies'] as number);
    expect(acc[0]).toBe(0); // policy == reference: no margin yet
    expect(acc.at(-1)).toBe(1);
    expect(dpo.at(-1)!['rewards/margins'] as number).toBeGreaterThan(0);
    expect(dpo.at(-1)!.loss as number).toBeLessThan(dpo[0].loss as number);
  });
});

describe('rollout worker pool', () => {
  let pool: RolloutPool | null = null;
  afterAll(async () => pool?.close());

  it('generates what the main thread generates, from weights synced through shared memory', async () => {
    await initBackend('wasm');
    const tok = Tokenizer.train(['the cat sat on the mat', 'a dog ran'], { vocabSize: 280 });
    const config = {
      vocab_size: tok.vocabSize,
      hidden_size: 16,
      num_hidden_layers: 1,
      num_attention_heads: 2,
      num_key_value_heads: 1,
      intermediate_size: 32,
      max_position_embeddings: 32,
      rope_theta: 10000,
      rms_norm_eps: 1e-6,
      tie_word_embeddings: true,
    };
    const model = Transformer.init(config, 11);
    const prompts = [
      [1, 2, 3],
      [4, 5, 6],
      [7, 8],
      [9, 10],
    ];
    const sampling = { maxNewTokens: 8, temperature: 0 };
    const local = generate(model, tok, prompts, { ...sampling, rng: new Rng(0) });
    pool = new RolloutPool(2, config, tok, 'wasm');
    pool.sync(model);
    const remote = await pool.generate(prompts, sampling, new Rng(0));
    expect(remote.map((c) => c.tokens)).toEqual(local.map((c) => c.tokens));
    remote.forEach((c, i) => c.logprobs.forEach((lp, j) => expect(lp).toBeCloseTo(local[i].logprobs[j], 5)));
    // New weights reach the workers after a sync.
    const other = Transformer.init(config, 12);
    for (const [k, v] of Object.entries(model.params)) v.assign(other.params[k]);
    pool.sync(model);
    const parts: [number, number[][]][] = [];
    const after = await pool.generate(prompts, sampling, new Rng(0), 1, (offset, cs) => parts.push([offset, cs.map((c) => c.tokens)]));
    // Each worker's part is handed over as it arrives (for scoring), and the parts tile the batch.
    expect(parts.length).toBe(2);
    expect(parts.sort((a, b) => a[0] - b[0]).flatMap(([, t]) => t)).toEqual(after.map((c) => c.tokens));
    expect(parts.map(([o]) => o)).toEqual([0, 2]);
    const expected = generate(model, tok, prompts, { ...sampling, rng: new Rng(0) });
    expect(after.map((c) => c.tokens)).toEqual(expected.map((c) => c.tokens));
    after.forEach((c, i) => c.logprobs.forEach((lp, j) => expect(lp).toBeCloseTo(expected[i].logprobs[j], 5)));
    expect(after[0].logprobs[0]).not.toBeCloseTo(remote[0].logprobs[0], 3);
    model.dispose();
    other.dispose();
  });

  it('auto is one thread per core on the CPU backends and the main thread on a GPU (one device, one copy of the weights)', () => {
    expect(defaultWorkers('auto', 'wasm')).toBe(availableParallelism());
    expect(defaultWorkers('auto', 'cpu')).toBe(availableParallelism());
    expect(defaultWorkers('auto', 'webgpu')).toBe(0);
    expect(defaultWorkers('auto', 'tensorflow')).toBe(0);
    expect(defaultWorkers(3, 'webgpu')).toBe(3);
  });
});

describe('rejection sampling', () => {
  it('keeps samples over the threshold, dedupes per prompt, mixes in other rows, logs acceptance, feeds SFT', async () => {
    const { runDir, manifest } = await runRecipe(loadRecipe(resolve('tests/fixtures/rl/rs.yaml'), { set: [`output_dir=${RUNS}`] }), quiet);
    expect(manifest.stages.sft.status).toBe('done');
    const read = (f: string) =>
      readFileSync(join(runDir, 'rejection-sampling', f), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    const rows = read('dataset.jsonl'),
      acceptance = read('acceptance.jsonl');
    const [m] = readMetrics(join(runDir, 'rejection-sampling', 'metrics.jsonl'));
    const kept = rows.filter((r) => r.source === 'rejection-sampling'),
      mixed = rows.filter((r) => r.source === 'mix');
    expect(acceptance).toHaveLength(32);
    expect(m.samples).toBe(96);
    // Greedy: a prompt's 3 completions are one text, so at most one is kept, and only if it passes.
    expect(acceptance.every((a) => (a.accepted as number) <= 1 && a.k === 3)).toBe(true);
    expect(kept.length).toBe(acceptance.reduce((a, p) => a + (p.accepted as number), 0));
    expect(kept.length).toBeGreaterThan(0);
    expect(kept.every((r) => (r.reward as number) >= 0.5 && typeof r.prompt === 'string' && typeof r.completion === 'string')).toBe(true);
    expect(m['rejected/duplicate']).toBe(2 * kept.length);
    expect((m['rejected/reward'] as number) + (m['rejected/length'] as number) + (m['rejected/duplicate'] as number) + kept.length).toBe(
      96,
    );
    // fraction 0.25 of the output from the mix dataset: kept / 3 rows, rounded.
    expect(mixed.length).toBe(Math.round(kept.length / 3));
    expect(mixed.every((r) => typeof r.completion === 'string' && String(r.prompt).startsWith('What is'))).toBe(true);
    expect(m.acceptance_rate).toBeCloseTo(kept.length / 96, 10);
    expect(m.prompt_coverage).toBeCloseTo(kept.length / 32, 10);
  }, 120_000);

  it('measures repeated 4-grams for the repetition filter', () => {
    expect(repeatedNgramShare('a b c d e f g h')).toBe(0);
    expect(repeatedNgramShare('a b c d a b c d a b c d')).toBeCloseTo(5 / 9, 10);
    expect(repeatedNgramShare('too short')).toBe(0);
  });
});
