// SFT and pretraining under gradient accumulation: one token normaliser over the whole step, so a
// step split into micro-batches trains exactly what the unsplit step trains.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/engine/backend.ts';
import { TINY } from '../src/model/config.ts';
import { Transformer } from '../src/model/transformer.ts';
import { lmStep, type WeightedSequence } from '../src/stages/batches.ts';
import { localLossAndGrads } from '../src/train/parallel.ts';
import { type Grads, accumulate, disposeGrads } from '../src/train/step.ts';
import type { MicroBatch } from '../src/train/trainer.ts';

const CONFIG = {
  ...TINY,
  vocab_size: 24,
  hidden_size: 16,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  intermediate_size: 32,
  max_position_embeddings: 32,
};

async function summed(model: Transformer, batches: MicroBatch[]): Promise<{ loss: number; grads: Grads }> {
  let grads: Grads | null = null,
    loss = 0;
  for (const mb of batches) {
    if (mb.kind !== 'sharded') throw new Error('LM micro-batches are sharded jobs');
    const r = await localLossAndGrads(model, mb.job.module, mb.job.data);
    grads = accumulate(grads, r.grads);
    loss += r.loss;
  }
  return { loss, grads: grads! };
}

describe('one token normaliser over the accumulated batch', () => {
  let model: Transformer;
  beforeAll(async () => {
    await initBackend('wasm');
    model = Transformer.init(CONFIG, 2);
  });
  afterAll(() => model.dispose());

  // A long example with 9 trained tokens and two short ones with 1 each (completion-only loss).
  const seq = (ids: number[], trained: number): WeightedSequence => ({
    ids,
    weights: ids.map((_, i) => (i >= ids.length - trained ? 1 : 0)),
  });
  const long = seq([1, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13], 9);
  const short1 = seq([1, 3, 2], 1),
    short2 = seq([1, 14, 15], 1);

  it('the loss and gradient of micro-batches [long], [short, short] equal those of the unsplit batch', async () => {
    const whole = await summed(model, lmStep([[long, short1, short2]], 0));
    const split = await summed(model, lmStep([[long], [short1, short2]], 0));
    expect(split.loss).toBeCloseTo(whole.loss, 5);
    for (const name of Object.keys(whole.grads)) {
      const a = whole.grads[name].dataSync(),
        b = split.grads[name].dataSync();
      for (let i = 0; i < a.length; i++) expect(b[i]).toBeCloseTo(a[i], 5);
    }
    // A mean per micro-batch, then over micro-batches, weighs a short example's token 4.5 times a long one's.
    const perMicro = (await summed(model, lmStep([[long]], 0))).loss / 2 + (await summed(model, lmStep([[short1, short2]], 0))).loss / 2;
    expect(Math.abs(perMicro - whole.loss)).toBeGreaterThan(1e-3);
    disposeGrads(whole.grads);
    disposeGrads(split.grads);
  });

  it('counts the trained tokens of each micro-batch for tokens/s', () => {
    expect(lmStep([[long], [short1, short2]], 0).map((m) => m.tokens)).toEqual([9, 2]);
  });
});
