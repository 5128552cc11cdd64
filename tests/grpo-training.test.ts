// The GRPO stage's training path as training takes it: episodes -> micro-batches -> the shardable
// loss module -> summed gradients, with accumulation and gradient threads; and the stage end to end
// with the new options, including resuming with a refreshed reference model.
import * as tf from '@tensorflow/tfjs-core';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/engine/backend.ts';
import { Rng } from '../src/engine/rng.ts';
import { readMetrics } from '../src/metrics/logger.ts';
import { Transformer } from '../src/model/transformer.ts';
import { TINY } from '../src/model/config.ts';
import { runRecipe } from '../src/pipeline/run.ts';
import { loadRecipe } from '../src/recipe/index.ts';
import { GrpoStage as GrpoSchema, type GrpoStage } from '../src/recipe/schema.ts';
import { advantages } from '../src/rl/index.ts';
import {
  type Episodes,
  type ScoredGroups,
  differingGroups,
  episodeMicroBatches,
  mixReference,
  rolloutMetrics,
  selectGroups,
  splitRows,
} from '../src/stages/grpo.ts';
import { completionLogprobs } from '../src/stages/logprobs.ts';
import { GradientPool, localLossAndGrads } from '../src/train/parallel.ts';
import { type Grads, accumulate, disposeGrads } from '../src/train/step.ts';
import type { MicroBatch } from '../src/train/trainer.ts';

const quiet = { log: () => {}, progressStream: Object.assign(new Writable({ write: (_c, _e, cb) => cb() }), { isTTY: false }) };
const CONFIG = {
  ...TINY,
  vocab_size: 32,
  hidden_size: 16,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  intermediate_size: 32,
  max_position_embeddings: 32,
};

function stage(fields: Record<string, unknown>): GrpoStage {
  const s = GrpoSchema.parse({
    type: 'grpo',
    num_generations: 2,
    per_device_train_batch_size: 4,
    max_completion_length: 8,
    temperature: 0.7,
    beta: 0.05,
    ...fields,
  });
  return { ...s, name: 'grpo', epsilon_high: s.epsilon_high ?? (s.loss_type === 'cispo' ? 5 : s.epsilon) } as GrpoStage;
}

/** Four completions of unequal lengths under a tiny model: old log-probs off the model's by up to
 * +-0.4 (so ratios leave the clip range), one completion dropped. */
function episodes(model: Transformer): Episodes {
  const rng = new Rng(11);
  const prompts = [
    [1, 5, 7],
    [1, 5, 7],
    [1, 9, 3, 4, 2],
    [1, 9, 3, 4, 2],
  ];
  const completions = [[4, 6, 8, 2], [3], [7, 7, 1, 5, 6, 9], [2, 2]];
  const inputs = prompts.map((p, i) => [...p, ...completions[i]]);
  const promptLengths = prompts.map((p) => p.length);
  const lp = completionLogprobs(model, { inputs, promptLengths }, [0, 1, 2, 3], 0.7);
  const now = (lp.arraySync() as number[][]).map((row, i) => row.slice(0, completions[i].length));
  lp.dispose();
  const old = now.map((row) => row.map((v) => v + (rng.next() - 0.5) * 0.8));
  const ref = now.map((row) => row.map((v) => v + (rng.next() - 0.5) * 0.6));
  const rewards = [1, 0, 0.2, 0.9];
  return {
    inputs,
    promptLengths,
    old,
    ref,
    rewards,
    advantages: advantages(rewards, 2, { estimator: 'grpo', scale: 'group' }),
    keep: [1, 1, 1, 0],
    rewardKl: null,
  };
}

/** The update's loss, gradients and metrics from its micro-batches, as the trainer sums them. */
async function update(model: Transformer, batches: MicroBatch[], pool: GradientPool | null = null) {
  let grads: Grads | null = null,
    loss = 0;
  const metrics: Record<string, number> = {};
  for (const mb of batches) {
    if (mb.kind !== 'sharded') throw new Error('GRPO micro-batches are sharded jobs');
    const r = pool ? await pool.lossAndGrads(model, mb.job) : await localLossAndGrads(model, mb.job.module, mb.job.data);
    grads = accumulate(grads, r.grads);
    loss += r.loss;
    for (const [k, v] of Object.entries(r.metrics)) metrics[k] = (metrics[k] ?? 0) + v;
  }
  return { loss, grads: grads!, metrics };
}

function expectSameGrads(a: Grads, b: Grads, digits = 5) {
  for (const name of Object.keys(a)) {
    const x = a[name].dataSync(),
      y = b[name].dataSync();
    const scale = Math.max(1e-3, ...Array.from(x, Math.abs));
    for (let i = 0; i < x.length; i++) expect(Math.abs(x[i] - y[i]) / scale, name).toBeLessThan(10 ** -digits);
  }
}

describe('GRPO micro-batches and accumulation', () => {
  let model: Transformer;
  beforeAll(async () => {
    await initBackend('wasm');
    model = Transformer.init(CONFIG, 3);
  });
  afterAll(() => model.dispose());

  it('splits a step into nearly equal micro-batches, none empty (B = 4 over 3: 2, 1, 1)', () => {
    expect(splitRows(4, 3)).toEqual([2, 1, 1]);
    expect(splitRows(7, 3)).toEqual([3, 2, 2]);
    expect(splitRows(2, 4)).toEqual([1, 1]);
    const e = episodes(model);
    expect(episodeMicroBatches(e, stage({ gradient_accumulation_steps: 3 })).map((m) => (m.kind === 'sharded' ? m.job.rows : 0))).toEqual([
      2, 1, 1,
    ]);
  });

  // The step's loss and gradient must not depend on how its rows are split: a micro-batch holding
  // one row weighs one row, not a third of the step.
  it.each([
    ['grpo', {}],
    ['dapo', {}],
    ['dr_grpo', {}],
    ['cispo', {}],
    ['grpo', { importance_sampling_level: 'sequence' }],
    ['dapo', { delta: 1.5, epsilon_high: 0.28 }],
    ['dapo', { kl_estimator: 'k1' }],
    ['grpo', { kl_estimator: 'k2' }],
  ])('%s %o: accumulation over 1, 3 or 4 micro-batches gives the same loss, gradient and metrics', async (lossType, extra) => {
    const e = episodes(model);
    const whole = await update(model, episodeMicroBatches(e, stage({ loss_type: lossType, ...extra, gradient_accumulation_steps: 1 })));
    for (const accum of [3, 4]) {
      const split = await update(
        model,
        episodeMicroBatches(e, stage({ loss_type: lossType, ...extra, gradient_accumulation_steps: accum })),
      );
      expect(split.loss).toBeCloseTo(whole.loss, 6);
      expectSameGrads(whole.grads, split.grads);
      for (const [k, v] of Object.entries(whole.metrics)) expect(split.metrics[k], k).toBeCloseTo(v, 6);
      disposeGrads(split.grads);
    }
    expect(Math.abs(whole.loss)).toBeGreaterThan(1e-4); // the case is not trivially zero
    disposeGrads(whole.grads);
  });

  it('bnpo divides each micro-batch by its own tokens and averages the micro-batches', async () => {
    const e = episodes(model);
    const lengths = e.inputs.map((x, i) => (x.length - e.promptLengths[i]) * e.keep[i]); // [4, 1, 6, 0]
    const two = await update(model, episodeMicroBatches(e, stage({ loss_type: 'bnpo', gradient_accumulation_steps: 2 })));
    // Each micro-batch's bnpo loss alone (micro-batches of 2 rows), then their mean.
    const first = await update(model, episodeMicroBatches({ ...pickRows(e, [0, 1]) }, stage({ loss_type: 'bnpo' })));
    const second = await update(model, episodeMicroBatches({ ...pickRows(e, [2, 3]) }, stage({ loss_type: 'bnpo' })));
    expect(lengths).toEqual([4, 1, 6, 0]);
    expect(two.loss).toBeCloseTo((first.loss + second.loss) / 2, 6);
    [two, first, second].forEach((r) => disposeGrads(r.grads));
  });

  it('the high-entropy token mask trains on fewer tokens and keeps a micro-batch on one thread', async () => {
    const e = episodes(model);
    const all = await update(model, episodeMicroBatches(e, stage({ loss_type: 'dapo', beta: 0 })));
    const top = episodeMicroBatches(e, stage({ loss_type: 'dapo', beta: 0, top_entropy_quantile: 0.3 }));
    expect(top.every((m) => m.kind === 'sharded' && m.job.split === false)).toBe(true);
    const masked = await update(model, top);
    expect(masked.loss).not.toBeCloseTo(all.loss, 4);
    expect(masked.metrics.entropy).toBeCloseTo(all.metrics.entropy, 6); // the metric covers every kept token
    [all, masked].forEach((r) => disposeGrads(r.grads));
  });

  it("logs the entropy of the policy's temperature-scaled distribution at the kept completion tokens", async () => {
    const e = episodes(model);
    const out = await update(model, episodeMicroBatches(e, stage({ loss_type: 'dapo' })));
    // Independently: each row alone, full softmax of logits / 0.7 in plain JavaScript.
    let sum = 0,
      n = 0;
    e.inputs.forEach((seq, i) => {
      if (!e.keep[i]) return;
      const logits = tf.tidy(
        () => model.logits(model.hidden(tf.tensor2d([seq.slice(0, -1)], [1, seq.length - 1], 'int32'))).arraySync() as number[][],
      );
      for (let t = e.promptLengths[i] - 1; t < seq.length - 1; t++) {
        const z = logits[t].map((v) => v / 0.7),
          m = Math.max(...z);
        const p = z.map((v) => Math.exp(v - m)),
          total = p.reduce((a, b) => a + b, 0);
        sum -= p.reduce((a, v) => a + (v / total) * Math.log(v / total), 0);
        n++;
      }
    });
    expect(out.metrics.entropy).toBeCloseTo(sum / n, 4);
    disposeGrads(out.grads);
  });

  it('a reference refresh mixes alpha of the policy into the reference', () => {
    const ref = model.clone(),
      policy = Transformer.init(CONFIG, 9);
    const name = Object.keys(ref.params)[0];
    const r0 = ref.params[name].dataSync().slice(),
      p0 = policy.params[name].dataSync();
    mixReference(ref, policy, 0.6);
    const r1 = ref.params[name].dataSync();
    for (let i = 0; i < r1.length; i += 5) expect(r1[i]).toBeCloseTo(0.6 * p0[i] + 0.4 * r0[i], 6);
    mixReference(ref, policy, 1);
    expect(Array.from(ref.params[name].dataSync())).toEqual(Array.from(p0));
    ref.dispose();
    policy.dispose();
  });

  it('junk log-probs at padded positions never reach exp: loss and gradient stay finite', async () => {
    const e = episodes(model);
    // The longest completion sets the width; the others' padded positions hold whatever the forward
    // pass gives there. Make the old and reference log-probs of real tokens extreme instead, and check
    // a dropped row (keep 0) with extreme values changes nothing.
    const calm = await update(model, episodeMicroBatches(e, stage({ loss_type: 'dapo', kl_estimator: 'k3' })));
    const wild = {
      ...e,
      old: e.old.map((r, i) => (e.keep[i] ? r : r.map(() => 1e4))),
      ref: e.ref!.map((r, i) => (e.keep[i] ? r : r.map(() => -1e4))),
    };
    const out = await update(model, episodeMicroBatches(wild, stage({ loss_type: 'dapo', kl_estimator: 'k3' })));
    expect(Number.isFinite(out.loss)).toBe(true);
    expect(out.loss).toBeCloseTo(calm.loss, 6);
    expectSameGrads(calm.grads, out.grads);
    [calm, out].forEach((r) => disposeGrads(r.grads));
  });
});

function pickRows(e: Episodes, rows: number[]): Episodes {
  const pick = <T>(xs: T[]) => rows.map((i) => xs[i]);
  return {
    inputs: pick(e.inputs),
    promptLengths: pick(e.promptLengths),
    old: pick(e.old),
    ref: e.ref ? pick(e.ref) : null,
    rewards: pick(e.rewards),
    advantages: pick(e.advantages),
    keep: pick(e.keep),
    rewardKl: null,
  };
}

describe('dynamic sampling', () => {
  it('finds the groups whose rewards differ and keeps them whole, in order, with their scores', () => {
    expect(differingGroups([1, 1, 0, 1, 0.5, 0.5, 0, 1], 2)).toEqual([1, 3]);
    const x: ScoredGroups = {
      texts: ['a', 'a', 'b', 'b', 'c', 'c'],
      ids: [[1], [1], [2], [2], [3], [3]],
      rows: [{}, {}, {}, {}, {}, {}],
      completions: [0, 1, 2, 3, 4, 5].map((i) => ({ tokens: [i], text: String(i), logprobs: [-1], finishReason: 'stop' as const })),
      scores: { total: [1, 1, 0, 1, 1, 0], byFunction: { acc: [1, 1, 0, 1, 1, 0] }, stats: {}, errors: [] },
    };
    const kept = selectGroups(x, differingGroups(x.scores.total, 2), 2);
    expect(kept.texts).toEqual(['b', 'b', 'c', 'c']);
    expect(kept.completions.map((c) => c.text)).toEqual(['2', '3', '4', '5']);
    expect(kept.scores.total).toEqual([0, 1, 1, 0]);
    expect(kept.scores.byFunction.acc).toEqual([0, 1, 1, 0]);
    expect(kept.scores.stats.acc.mean).toBe(0.5);
  });

  it("logs TRL's rollout metrics over everything sampled, and what the rewards counted", () => {
    const x: ScoredGroups = {
      texts: ['a', 'a', 'b', 'b'],
      ids: [[1], [1], [2], [2]],
      rows: [{}, {}, {}, {}],
      completions: [[5, 6], [7], [8, 9, 10], [11, 12, 13, 14]].map((tokens, i) => ({
        tokens,
        text: '',
        logprobs: tokens.map(() => -1),
        finishReason: i === 3 ? ('length' as const) : ('stop' as const),
      })),
      scores: {
        total: [1, 0, 0.5, 0.5],
        byFunction: { accuracy: [1, 0, 0.5, 0.5] },
        stats: { accuracy: { mean: 0.5, std: 0.41 } },
        errors: [],
        counts: { 'accuracy/timeout': 2 },
      },
    };
    const kept = selectGroups(x, [0], 2);
    const e = {
      inputs: [
        [1, 5, 6],
        [1, 7],
      ],
      promptLengths: [1, 1],
      old: [[-1, -1], [-1]],
      ref: null,
      rewards: [1, 0],
      advantages: [0.7, -0.7],
      keep: [1, 1],
      rewardKl: null,
    };
    const m = rolloutMetrics(
      { sampled: x, kept, episodes: e, sampling: { batches: 2, sampledGroups: 2, keptGroups: 1 }, seconds: { generate: 1.5, score: 0.25 } },
      2,
    );
    expect(m).toMatchObject({
      reward: 0.5,
      frac_reward_zero_std: 0.5,
      'completions/mean_length': 2.5,
      'completions/min_length': 1,
      'completions/max_length': 4,
      'completions/mean_terminated_length': 2,
      'completions/clipped_ratio': 0.25,
      'rewards/accuracy/mean': 0.5,
      'rewards/accuracy/timeout': 2,
      'dynamic_sampling/batches': 2,
      'dynamic_sampling/kept_groups': 1,
      'time/generate_s': 1.5,
      'time/score_s': 0.25,
    });
  });
});

describe('GRPO loss on gradient threads', () => {
  let pool: GradientPool;
  afterAll(async () => pool?.close());

  it('a micro-batch split across a worker thread equals the single-thread loss, gradient and metrics', async () => {
    await initBackend('wasm');
    const model = Transformer.init(CONFIG, 3);
    pool = new GradientPool(1, CONFIG, 'wasm');
    for (const lossType of ['grpo', 'dapo', 'bnpo', 'dr_grpo']) {
      const batches = episodeMicroBatches(episodes(model), stage({ loss_type: lossType }));
      const single = await update(model, batches);
      const threaded = await update(model, batches, pool);
      expect(threaded.loss).toBeCloseTo(single.loss, 6);
      expectSameGrads(single.grads, threaded.grads);
      for (const [k, v] of Object.entries(single.metrics)) expect(threaded.metrics[k], k).toBeCloseTo(v, 6);
      [single, threaded].forEach((r) => disposeGrads(r.grads));
    }
    model.dispose();
  });
});

describe('GRPO stage end to end with the new options', () => {
  const recipeFile = resolve('tests/fixtures/rl/rl.yaml');
  // The runs go to a temporary folder, not the fixture's output_dir (the repository's runs/test).
  const runs = mkdtempSync(join(tmpdir(), 'r1-grpo-training-'));
  afterAll(() => rmSync(runs, { recursive: true, force: true }));
  const only = (name: string, sets: string[]) =>
    loadRecipe(recipeFile, { set: [`output_dir=${runs}`, `name=${name}`, 'stages.2.max_steps=1', ...sets] });
  const grpoSets = [
    'stages.1.per_device_train_batch_size=4',
    'stages.1.num_generations=2',
    'stages.1.gradient_accumulation_steps=3',
    'stages.1.max_steps=4',
    'stages.1.max_completion_length=6',
    'stages.1.train_workers=2',
  ];

  it('rloo + dapo + kl_in_reward + dynamic sampling, B = 4, G = 2, accumulation 3: trains and logs what it did', async () => {
    const recipe = only('rl-options', [
      ...grpoSets,
      'stages.1.advantage_estimator=rloo',
      'stages.1.loss_type=dapo',
      'stages.1.kl_in_reward=true',
      'stages.1.dynamic_sampling={max_batches: 3}',
      'stages.1.kl_estimator=k1',
    ]);
    const { runDir, manifest } = await runRecipe(recipe, quiet);
    expect(manifest.stages.grpo.status).toBe('done');
    const rows = readMetrics(join(runDir, 'grpo', 'metrics.jsonl'));
    expect(rows).toHaveLength(4);
    for (const r of rows) {
      expect(Number.isFinite(r.loss as number)).toBe(true);
      expect(r).toHaveProperty('kl'); // from the reward: the loss has no KL term
      expect(r).toHaveProperty('entropy');
      expect(r['dynamic_sampling/kept_groups'] ?? 2).toBeLessThanOrEqual(2);
    }
    // Every kept group differs (dynamic sampling drops the equal ones), unless sampling ran out.
    const samples = readFileSync(join(runDir, 'grpo', 'samples.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { step: number; reward: number });
    for (let i = 0; i < samples.length; i += 2) {
      const batches = rows[samples[i].step - 1]['dynamic_sampling/batches'] ?? 1;
      if ((batches as number) < 3) expect(samples[i].reward).not.toBe(samples[i + 1].reward);
    }
  }, 120_000);

  it('a run stopped and resumed with a refreshed reference ends where the uninterrupted run ends', async () => {
    const sets = [
      ...grpoSets,
      'stages.1.sync_ref_model=true',
      'stages.1.ref_model_sync_steps=1',
      'stages.1.ref_model_mixup_alpha=0.5',
      'stages.1.save_steps=2',
      'stages.1.rewards=[{name: ./crash.ts#crashy}]',
    ];
    const straight = await runRecipe(only('rl-ref-straight', sets), quiet);
    // Reward call 4 is step 4's: the stage stops after the checkpoint of step 2 and after step 3's
    // and step 4's reference refreshes (the old ref-model folder would hold step 4's).
    process.env.R1_TEST_CRASH_AT = '4';
    try {
      await expect(runRecipe(only('rl-ref-resumed', sets), quiet)).rejects.toThrow(/planned crash/);
    } finally {
      delete process.env.R1_TEST_CRASH_AT;
    }
    const dir = join(runs, 'rl-ref-resumed', 'grpo', 'checkpoint-last');
    expect(existsSync(join(dir, 'ref-model', 'model.safetensors'))).toBe(true);
    expect(JSON.parse(readFileSync(join(dir, 'trainer_state.json'), 'utf8')).step).toBe(2);
    const resumed = await runRecipe(only('rl-ref-resumed', sets), quiet);
    const weights = (r: { runDir: string }) => readFileSync(join(r.runDir, 'grpo', 'checkpoint', 'model.safetensors'));
    expect(weights(resumed).equals(weights(straight))).toBe(true);
    const kl = (r: { runDir: string }) => readMetrics(join(r.runDir, 'grpo', 'metrics.jsonl')).map((m) => m.kl);
    expect(kl(resumed).slice(-2)).toEqual(kl(straight).slice(-2));
  }, 180_000);
});

afterAll(() => {
  tf.disposeVariables();
});
