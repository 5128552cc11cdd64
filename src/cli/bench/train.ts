// `r1 bench train`: AdamW steps of the reference model on batch 16 x 128 random tokens, as
// ../shared/anchors/torch_reference.py --mode train does in PyTorch.
import * as tf from '@tensorflow/tfjs-core';
import type { BenchOptions } from '../commands/bench.ts';
import { initBackend } from '../../engine/backend.ts';
import { TINY, parameterCount } from '../../model/config.ts';
import { Transformer } from '../../model/transformer.ts';
import { AdamW } from '../../train/adamw.ts';
import { crossEntropy } from '../../train/loss.ts';
import { clipGradients, disposeGrads, lossAndGrads } from '../../train/step.ts';

export async function run(opts: BenchOptions): Promise<Record<string, unknown>[]> {
  const backend = await initBackend(opts.backend);
  const B = 16, T = 128, steps = opts.quick ? 3 : 10;
  const model = Transformer.init({ ...TINY, max_position_embeddings: T }, 0);
  const opt = new AdamW(model.params);
  const ids = tf.randomUniform([B, T], 0, TINY.vocab_size, 'int32', 1) as tf.Tensor2D;
  const targets = tf.randomUniform([B * T], 0, TINY.vocab_size, 'int32', 2) as tf.Tensor1D;
  const step = () => {
    const { grads } = lossAndGrads(model.params, () => crossEntropy(model.logits(model.hidden(ids)), targets));
    clipGradients(grads, 1);
    opt.apply(grads, 3e-4);
    disposeGrads(grads);
  };
  step();
  step();
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) step();
  const ms = (performance.now() - t0) / steps;
  const n = parameterCount(TINY);
  // 6 N flops per token for the dense weights, plus causal attention (fwd 2 T d per layer, x3 for backward).
  const flopsPerToken = 6 * n + 3 * 2 * T * TINY.hidden_size * TINY.num_hidden_layers;
  return [{
    bench: 'train', backend, n_params: n, batch: B, seq: T,
    ms_per_step: +ms.toFixed(1), tokens_per_s: Math.round((B * T) / (ms / 1000)),
    gflops: +((flopsPerToken * B * T) / (ms / 1000) / 1e9).toFixed(2),
  }];
}
