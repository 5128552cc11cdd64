// `r1 bench train`: AdamW steps of the reference model (--model tiny, the default; small, base: see
// sizes.ts; or a checkpoint directory) on batch 16 x 128 random tokens, as
// scripts/torch_baseline.py --mode train does in PyTorch (--torch runs it at the same size); on
// the main thread alone and data-parallel over one thread per core (one thread on webgpu).
// On wasm, `matmul` says which path ran the matrix products (R1_MATMUL=xnnpack to compare).
import * as tf from '@tensorflow/tfjs-core';
import { availableParallelism } from 'node:os';
import type { BenchOptions } from '../commands/bench.ts';
import { initBackend } from '../../engine/backend.ts';
import { matmulPath } from '../../engine/kernels/index.ts';
import { loadModel } from '../../model/checkpoint.ts';
import { family, headDim, parameterCount } from '../../model/config.ts';
import { SIZES, repetitions, runTorch, sizeNamed, torchLine } from './sizes.ts';
import { Transformer } from '../../model/transformer.ts';
import { AdamW } from '../../train/adamw.ts';
import { Rng } from '../../engine/rng.ts';
import { LM_LOSS, type LmBatch, lmLoss } from '../../train/lm-loss.ts';
import { GradientPool } from '../../train/parallel.ts';
import { clipGradients, disposeGrads, lossAndGrads } from '../../train/step.ts';

export async function run(opts: BenchOptions): Promise<Record<string, unknown>[]> {
  const backend = await initBackend(opts.backend);
  const size = sizeNamed(opts.model ?? 'tiny');
  const B = 16,
    T = 128,
    steps = repetitions(size ?? 'tiny', Boolean(opts.quick), 10);
  // A fresh model of a named size, or a checkpoint (--model DIR: a Hugging Face family's layout and kernels).
  const fresh = () => (size ? Transformer.init({ ...SIZES[size], max_position_embeddings: T }, 0) : loadModel(opts.model as string));
  const probe = fresh();
  const config = probe.config,
    V = config.vocab_size;
  probe.dispose();
  const rng = new Rng(1);
  const batch: LmBatch = {
    inputs: Int32Array.from({ length: B * T }, () => rng.int(V)),
    targets: Int32Array.from({ length: B * T }, () => rng.int(V)),
    weights: null,
    B,
    T,
    normaliser: B * T,
  };
  const n = parameterCount(config),
    active = parameterCount(config, true);
  // 6 N flops per token for the weights a token goes through (a MoE model's routed experts: only its
  // num_experts_per_tok), plus causal attention (fwd 2 T d per layer, x3 for backward).
  const flopsPerToken = 6 * active + 3 * 2 * T * config.num_attention_heads * headDim(config) * config.num_hidden_layers;
  const out: Record<string, unknown>[] = [];
  // One GPU: data-parallel threads would share it.
  const counts =
    opts.workers !== undefined ? [Math.max(1, Number(opts.workers))] : backend === 'webgpu' ? [1] : [1, availableParallelism()];
  for (const threads of counts) {
    const model = fresh();
    const opt = new AdamW(model.params);
    const pool = threads > 1 ? new GradientPool(threads - 1, config, backend) : null;
    const step = async () => {
      const { grads } = pool
        ? await pool.lossAndGrads(model, { module: LM_LOSS, data: batch, rows: B })
        : lossAndGrads(model.params, () => lmLoss(model, batch));
      clipGradients(grads, 1);
      opt.apply(grads, 3e-4);
      pool?.invalidate();
      disposeGrads(grads);
    };
    await step();
    if (steps > 2) await step();
    const t0 = performance.now();
    for (let i = 0; i < steps; i++) await step();
    const ms = (performance.now() - t0) / steps;
    if (opts.profile && !pool) out.push(await kernelProfile(step));
    await pool?.close();
    opt.dispose();
    model.dispose();
    out.push({
      bench: 'train',
      backend,
      ...(backend === 'wasm' && { matmul: matmulPath() }),
      model: size ?? opts.model,
      family: family(config),
      threads,
      n_params: n,
      ...(active !== n && { n_params_active: active }),
      batch: B,
      seq: T,
      ms_per_step: +ms.toFixed(1),
      tokens_per_s: Math.round((B * T) / (ms / 1000)),
      gflops: +((flopsPerToken * B * T) / (ms / 1000) / 1e9).toFixed(2),
    });
  }
  if (opts.torch && size) {
    const best = Math.max(...out.filter((l) => l.bench === 'train').map((l) => Number(l.tokens_per_s)));
    out.push(torchLine('train', size, runTorch('train', config, { seq: T, batch: B, steps: Math.max(2, steps) }), best));
  }
  return out;
}

/** Kernel time by op over one step (tf.profile): where a step's time goes, largest first. */
async function kernelProfile(step: () => Promise<void>): Promise<Record<string, unknown>> {
  const info = await tf.profile(step);
  const byOp = new Map<string, number>();
  for (const k of info.kernels) byOp.set(k.name, (byOp.get(k.name) ?? 0) + ((await k.kernelTimeMs) as number));
  const total = [...byOp.values()].reduce((a, b) => a + b, 0);
  const ops = [...byOp]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 12)
    .map(([op, ms]) => ({ op, ms: +ms.toFixed(1), share: +(ms / total).toFixed(3) }));
  return { bench: 'train-profile', threads: 1, kernel_ms: +total.toFixed(1), ops };
}
