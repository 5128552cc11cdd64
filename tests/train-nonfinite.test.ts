// A NaN or infinite loss stops a training stage with a clear error before any weight is updated,
// and the checkpoint saved before it stays as it was.
import * as tf from '@tensorflow/tfjs-core';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/engine/backend.ts';
import { TINY } from '../src/model/config.ts';
import { Transformer } from '../src/model/transformer.ts';
import { trainLoop, type TrainingConfig } from '../src/train/trainer.ts';
import { trainingConfig } from './micro-configs.ts';

const dir = mkdtempSync(join(tmpdir(), 'r1-nonfinite-'));
beforeAll(async () => {
  await initBackend('cpu');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const config: TrainingConfig = trainingConfig({ save_steps: 2 });
const quiet = Object.assign(new Writable({ write: (_c, _e, cb) => cb() }), { isTTY: false });

describe('a non-finite loss', () => {
  it.each([
    ['NaN', NaN],
    ['infinite', Infinity],
  ])('%s at step 4: the stage stops naming it, weights untouched, checkpoint of step 2 intact', async (_what, bad) => {
    const model = Transformer.init(
      {
        ...TINY,
        vocab_size: 16,
        hidden_size: 8,
        num_hidden_layers: 1,
        num_attention_heads: 2,
        num_key_value_heads: 1,
        intermediate_size: 16,
        max_position_embeddings: 16,
      },
      0,
    );
    const stageDir = join(dir, String(bad));
    const p = Object.values(model.params)[0];
    let before: Float32Array | null = null;
    const loss = (step: number) => () => {
      const l = tf.mean(tf.square(p as tf.Tensor)) as tf.Scalar;
      return step === 3 ? (tf.mul(l, bad) as tf.Scalar) : l;
    };
    const run = trainLoop(
      { stage: 'sft', stageDir, model, config, totalSteps: 6, seed: 0, hash: 'h', progressStream: quiet },
      {
        microBatches: (step) => {
          if (step === 3) before = (p as tf.Tensor).dataSync().slice() as Float32Array;
          return [{ kind: 'local', loss: loss(step), tokens: 1 }];
        },
      },
    );
    await expect(run).rejects.toThrow(
      new RegExp(
        `stage 'sft': the (loss|gradient norm) is (NaN|Infinity) at step 4; stopped before updating the weights \\(the last saved checkpoint is intact: a rerun resumes from step 2\\)`,
      ),
    );
    expect([...(p as tf.Tensor).dataSync()]).toEqual([...before!]);
    expect(JSON.parse(readFileSync(join(stageDir, 'checkpoint-last', 'trainer_state.json'), 'utf8')).step).toBe(2);
    expect(existsSync(join(stageDir, 'checkpoint'))).toBe(false);
  });
});
