// The pretrain stage's held-out loss (eval_datasets / eval_steps, logged as eval/loss): when it is
// logged, that it never changes training, that it equals `r1 loss` on the final checkpoint, that it
// leaves out a MoE model's MTP and balance terms, and the recipe errors that name the field.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/engine/backend.ts';
import { readMetrics } from '../src/metrics/logger.ts';
import type { ModelConfig } from '../src/model/config.ts';
import { Transformer } from '../src/model/transformer.ts';
import { readManifest, runRecipe } from '../src/pipeline/run.ts';
import { loadRecipe } from '../src/recipe/index.ts';
import { heldOutLoss } from '../src/train/held-out.ts';
import { loss as lmLossModule } from '../src/train/lm-loss.ts';
import { recipeError } from './fixtures/recipes/errors.ts';

const root = mkdtempSync(join(tmpdir(), 'r1-eval-loss-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
beforeAll(() => initBackend('wasm'));
const quiet = { log: () => {}, progressStream: Object.assign(new Writable({ write: (_c, _e, cb) => cb() }), { isTTY: false }) };

/** The micro fixture's pretrain stage alone, with `extra` stage lines; held.jsonl is the corpus's last 40 rows. */
function recipeDir(name: string, extra: string): string {
  const dir = join(root, name);
  cpSync(resolve('tests/fixtures/e2e'), dir, { recursive: true });
  const corpus = readFileSync(join(dir, 'corpus.jsonl'), 'utf8').trim().split('\n');
  writeFileSync(join(dir, 'held.jsonl'), corpus.slice(-40).join('\n') + '\n');
  const micro = readFileSync(join(dir, 'micro.yaml'), 'utf8');
  writeFileSync(
    join(dir, 'micro.yaml'),
    micro.slice(0, micro.indexOf('  - name: sft')).replace('output_dir: ../../../runs/test', 'output_dir: runs') + extra,
  );
  return dir;
}

describe('pretrain eval_datasets', () => {
  it('logs eval/loss every eval_steps and at the end, keeps it in the summary, and trains exactly as without it', async () => {
    const plain = await runRecipe(loadRecipe(join(recipeDir('plain', ''), 'micro.yaml')), quiet);
    const dir = recipeDir('held', '    eval_datasets: [held.jsonl]\n    eval_steps: 5\n');
    const withEval = await runRecipe(loadRecipe(join(dir, 'micro.yaml')), quiet);
    const rows = readMetrics(join(withEval.runDir, 'pretrain', 'metrics.jsonl'));
    expect(rows.filter((r) => 'eval/loss' in r).map((r) => r.step)).toEqual([5, 10, 15, 20, 24]); // 24: the last step
    const summary = readManifest(withEval.runDir)!.stages.pretrain.summary as Record<string, number>;
    expect(summary.eval_loss).toBeCloseTo(rows.at(-1)!['eval/loss'] as number, 4);
    expect(rows[4]['eval/loss'] as number).toBeGreaterThan(summary.eval_loss); // it learns

    // Forward passes only: every step's loss is that of the run without evaluation.
    const base = readMetrics(join(plain.runDir, 'pretrain', 'metrics.jsonl'));
    expect(rows.map((r) => r.loss)).toEqual(base.map((r) => r.loss));

    // `r1 loss` on the final checkpoint scores the same windows the same way.
    const ckpt = join(withEval.runDir, 'pretrain', 'checkpoint');
    const out = execFileSync(
      process.execPath,
      [
        'bin/r1.js',
        'loss',
        '--model',
        ckpt,
        '--dataset',
        join(dir, 'held.jsonl'),
        '--seq-length',
        '32',
        '--batch',
        '3',
        '--backend',
        'wasm',
      ],
      { encoding: 'utf8' },
    );
    const line = JSON.parse(out.trim().split('\n').at(-1)!);
    expect(line.loss).toBeCloseTo(summary.eval_loss, 4);
    expect(line.perplexity).toBeCloseTo(Math.exp(line.loss), 3);
    expect(line.tokens).toBe(line.windows * 32);
  }, 180_000);

  it('logs the eval steps even between logging_steps, and eval_steps null follows save_steps', async () => {
    const dir = recipeDir('sparse', '    eval_datasets: [held.jsonl]\n');
    const { runDir } = await runRecipe(
      loadRecipe(join(dir, 'micro.yaml'), { set: ['stages.pretrain.logging_steps=5', 'stages.pretrain.save_steps=3'] }),
      quiet,
    );
    const rows = readMetrics(join(runDir, 'pretrain', 'metrics.jsonl'));
    expect(rows.map((r) => r.step)).toEqual([3, 5, 6, 9, 10, 12, 15, 18, 20, 21, 24]);
    expect(rows.filter((r) => 'eval/loss' in r).map((r) => r.step)).toEqual([3, 6, 9, 12, 15, 18, 21, 24]);
  }, 120_000);

  it('refuses an eval dataset that is missing, naming the field', () => {
    const dir = recipeDir('bad', '');
    const text = readFileSync(join(dir, 'micro.yaml'), 'utf8');
    expect(recipeError(text + '    eval_datasets: [nope.jsonl]\n', join(dir, 'micro.yaml'))).toMatch(
      /stages\.0\.eval_datasets\.0: dataset file not found: .*nope\.jsonl/,
    );
  });
});

describe('heldOutLoss', () => {
  it("is a MoE model's next-token loss alone, without its MTP and balance terms, over ragged batches", () => {
    const config: ModelConfig = {
      model_type: 'deepseek_v3',
      vocab_size: 40,
      hidden_size: 16,
      num_hidden_layers: 2,
      num_attention_heads: 2,
      num_key_value_heads: 2,
      intermediate_size: 24,
      max_position_embeddings: 32,
      rope_theta: 10000,
      rms_norm_eps: 1e-6,
      tie_word_embeddings: true,
      q_lora_rank: null,
      kv_lora_rank: 8,
      qk_nope_head_dim: 4,
      qk_rope_head_dim: 4,
      v_head_dim: 8,
      first_k_dense_replace: 1,
      n_routed_experts: 4,
      n_shared_experts: 1,
      moe_intermediate_size: 8,
      num_experts_per_tok: 2,
      n_group: 2,
      topk_group: 1,
      routed_scaling_factor: 1,
      num_nextn_predict_layers: 1,
      aux_loss_alpha: 0.01,
    };
    const model = Transformer.init(config, 3);
    const T = 6,
      windows = Array.from({ length: 5 }, (_, w) => Array.from({ length: T + 1 }, (_, t) => (w * 7 + t * 3) % 40));
    const all = {
      inputs: Int32Array.from(windows.flatMap((w) => w.slice(0, T))),
      targets: Int32Array.from(windows.flatMap((w) => w.slice(1))),
      weights: null,
      B: 5,
      T,
      normaliser: 5 * T,
    };
    const terms = tf.tidy(() => {
      const r = lmLossModule(model, all);
      return { loss: r.loss.dataSync()[0], lm: r.metrics!.lm_loss.dataSync()[0], mtp: r.metrics!.mtp_loss.dataSync()[0] };
    });
    expect(terms.mtp).toBeGreaterThan(0);
    const held = heldOutLoss(model, windows, 2, T); // batches of 2, 2 and 1
    expect(held).toBeCloseTo(terms.lm, 5);
    expect(Math.abs(held - terms.loss)).toBeGreaterThan(0.1);
    model.dispose();
  });
});
