// SFT packing (issue 12 item 6): documents packed into one row attend within themselves only, take
// positions restarting at 0, and no document's last token is trained on the next one's first, so a
// packed batch has the logits, loss and gradients of its documents run one per row.
import * as tf from '@tensorflow/tfjs-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/engine/backend.ts';
import { Rng } from '../src/engine/rng.ts';
import { readMetrics } from '../src/metrics/logger.ts';
import type { ModelConfig } from '../src/model/config.ts';
import { Tokenizer } from '../src/model/tokenizer.ts';
import { Transformer } from '../src/model/transformer.ts';
import { lmStep, padBatch, type WeightedSequence } from '../src/stages/batches.ts';
import { SftStage } from '../src/recipe/index.ts';
import { pack, runSft, sftExample } from '../src/stages/sft.ts';
import { LM_LOSS, type LmBatch, lmLoss } from '../src/train/lm-loss.ts';
import { GradientPool } from '../src/train/parallel.ts';
import { disposeGrads, lossAndGrads, type Grads } from '../src/train/step.ts';

const BACKEND = process.env.R1_TEST_BACKEND ?? 'wasm';
beforeAll(async () => {
  await initBackend(BACKEND);
});

const BASE: ModelConfig = {
  vocab_size: 40,
  hidden_size: 32,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  intermediate_size: 24,
  max_position_embeddings: 32,
  rope_theta: 10000,
  rms_norm_eps: 1e-6,
  tie_word_embeddings: true,
};
// Head size 8: the fused rotary kernel on wasm; 4: the composed one; qwen3: q/k norm (q and k rotated apart), qwen2: biases.
const CONFIGS: [string, ModelConfig][] = [
  ['llama, head size 8', BASE],
  ['llama, head size 4', { ...BASE, hidden_size: 16 }],
  ['qwen3 (q/k norm), head size 8', { ...BASE, model_type: 'qwen3' }],
  ['qwen2 (biases), head size 8', { ...BASE, model_type: 'qwen2' }],
];

const rng = new Rng(7);
/** A document of n tokens: token 0 (document start, weight 0), then tokens with weights 1 except a
 * "prompt" of 2 tokens at weight 0. */
const doc = (n: number): WeightedSequence => ({
  ids: [0, ...Array.from({ length: n - 1 }, () => 1 + rng.int(39))],
  weights: [0, 0, 0, ...Array.from({ length: n - 3 }, () => 1)],
});
const DOCS = [doc(7), doc(5), doc(4), doc(9), doc(6)];
const N = 17; // a normaliser of the whole step, shared by both layouts

const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol: number) => {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  expect(worst).toBeLessThan(tol);
};
const closeGrads = (a: Grads, b: Grads, tol: number) => {
  for (const name of Object.keys(a)) close(b[name].dataSync(), a[name].dataSync(), tol);
};

describe('pack and padBatch', () => {
  it("tag each token with its document; positions restart at 0; no weight on the next document's first token", () => {
    const rows = pack(DOCS, 13); // 7 + 5 | 4 + 9 | 6
    expect(rows.map((r) => r.ids.length)).toEqual([12, 13, 6]);
    expect(rows[0].documents).toEqual([...Array(7).fill(0), ...Array(5).fill(1)]);
    const b = padBatch(rows, 39, N);
    expect(b.T).toBe(12);
    expect(Array.from(b.packed!.positions.slice(0, 12))).toEqual([0, 1, 2, 3, 4, 5, 6, 0, 1, 2, 3, 0]); // last: padding
    expect(Array.from(b.packed!.documents.slice(0, 12))).toEqual([0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, -1]);
    // Input 6 (doc 0's last token) would predict doc 1's first token: weight 0.
    expect(b.targets[6]).toBe(DOCS[1].ids[0]);
    expect(b.weights![6]).toBe(0);
    // lmStep counts the same trained tokens packed or not (each document's first token predicts nothing).
    const tokens = (mbs: ReturnType<typeof lmStep>) => mbs.map((m) => m.tokens);
    expect(tokens(lmStep([rows], 39))).toEqual(tokens(lmStep([DOCS], 39)));
    expect((lmStep([rows], 39)[0] as { job: { data: LmBatch } }).job.data.normaliser).toBe(
      (lmStep([DOCS], 39)[0] as { job: { data: LmBatch } }).job.data.normaliser,
    );
    // Unpacked sequences keep the plain batch (no positions: the fused causal kernels).
    expect(padBatch(DOCS, 39).packed).toBeUndefined();
  });
});

describe.each(CONFIGS)('a packed batch equals its documents run separately: %s', (_name, config) => {
  let model: Transformer;
  beforeAll(() => {
    model = Transformer.init(config, 3);
  });
  afterAll(() => model.dispose());

  it('logits within 1e-5', () => {
    const rows = pack(DOCS, 13);
    const b = padBatch(rows, 39, N);
    const packed = model.forward(tf.tensor2d(b.inputs, [b.B, b.T], 'int32'), undefined, b.packed).arraySync();
    let at = 0;
    rows.forEach((row, r) => {
      let start = 0;
      for (let t = 1; t <= row.ids.length; t++) {
        if (t < row.ids.length && row.documents![t] === row.documents![t - 1]) continue;
        const ids = row.ids.slice(start, t);
        const alone = model.forward(tf.tensor2d([ids], [1, ids.length], 'int32')).arraySync()[0];
        for (let i = 0; i < ids.length && start + i < row.ids.length - 1; i++) close(packed[r][start + i], alone[i], 1e-5);
        at++;
        start = t;
      }
    });
    expect(at).toBe(DOCS.length);
  });

  it('loss and gradients within 1e-5', () => {
    const packedBatch = padBatch(pack(DOCS, 13), 39, N),
      separate = padBatch(DOCS, 39, N);
    expect(packedBatch.B).toBe(3);
    expect(separate.B).toBe(5);
    const a = lossAndGrads(model.params, () => lmLoss(model, packedBatch));
    const b = lossAndGrads(model.params, () => lmLoss(model, separate));
    expect(Math.abs(a.loss - b.loss)).toBeLessThan(1e-5);
    closeGrads(a.grads, b.grads, 1e-5);
    disposeGrads(a.grads);
    disposeGrads(b.grads);
  });
});

describe('packed batches on gradient workers', () => {
  let pool: GradientPool;
  afterAll(async () => pool?.close());

  it('split across a worker thread, equal the single-thread loss and gradients', async () => {
    const model = Transformer.init(BASE, 4);
    const docs = [...DOCS, doc(8), doc(3)];
    const batch = padBatch(pack(docs, 13), 39, N); // 4 packed rows: 2 threads x 2
    expect(batch.B).toBe(4);
    const single = lossAndGrads(model.params, () => lmLoss(model, batch));
    pool = new GradientPool(1, BASE, BACKEND);
    const par = await pool.lossAndGrads(model, { module: LM_LOSS, data: batch, rows: batch.B });
    expect(Math.abs(par.loss - single.loss)).toBeLessThan(1e-5);
    closeGrads(single.grads, par.grads, 1e-5);
    // ... and both equal the documents one per row (the worker's shard kept its positions and mask).
    const separate = lossAndGrads(model.params, () => lmLoss(model, padBatch(docs, 39, N)));
    expect(Math.abs(par.loss - separate.loss)).toBeLessThan(1e-5);
    closeGrads(separate.grads, par.grads, 1e-5);
    for (const g of [single, par, separate]) disposeGrads(g.grads);
    model.dispose();
  });
});

describe('the SFT stage with packing', () => {
  it('trains the same first step as without packing (all rows in one batch), on two threads', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'r1-sft-pack-'));
    const tok = Tokenizer.train(['the cat sat on the mat', 'a dog ran far away', 'one two three'], { vocabSize: 280 });
    const config = { ...BASE, vocab_size: tok.vocabSize, max_position_embeddings: 64 };
    const rows = ['cat', 'a dog', 'one two', 'the mat', 'ran far away', 'three', 'sat on'].map((w, i) => ({
      prompt: `q${i}`,
      completion: w,
    }));
    const quiet = Object.assign(new Writable({ write: (_c, _e, cb) => cb() }), { isTTY: false });
    const run = async (packing: boolean, batch: number) => {
      const stage = {
        ...SftStage.parse({
          type: 'sft',
          template: 'none',
          packing,
          max_length: 24,
          per_device_train_batch_size: batch,
          max_steps: 1,
          train_workers: 2,
        }),
        name: 'sft',
      };
      const stageDir = join(dir, String(packing));
      const ctx = {
        recipe: { seed: 0 } as never,
        index: 0,
        runDir: dir,
        stageDir,
        hash: 'h',
        tokenizer: tok,
        loadModel: () => Transformer.init(config, 5),
        readDatasets: async () => rows,
        progressStream: quiet,
      };
      const result = await runSft(ctx, stage);
      return { examples: result.summary.examples as number, loss: readMetrics(join(stageDir, 'metrics.jsonl'))[0].loss as number };
    };
    try {
      const plain = await run(false, rows.length);
      // The 7 short rows packed into sequences of <= 24 tokens, all in one batch.
      const sequences = pack(
        rows.map((r) => sftExample(r, tok, 'none', true, 'row')),
        24,
      ).length;
      expect(sequences).toBeLessThan(5);
      const packed = await run(true, sequences);
      expect(plain.examples).toBe(7);
      expect(packed.examples).toBe(sequences);
      expect(Math.abs(packed.loss - plain.loss)).toBeLessThan(1e-5);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
