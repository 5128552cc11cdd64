// DeepSeek-V3's auxiliary-loss-free load balancing, as the training loop sees it. A loss module (on
// the main thread or a gradient worker) counts the tokens each routed expert took in its forward pass
// and returns the counts as metric terms `moe/load/<layer>/<expert>`; like every metric term they add
// up over shards and micro-batches, so the trainer sees the whole step's load and moves each expert's
// selection bias by -speed x sign(load - the layer's mean load) after the update.
import * as tf from '@tensorflow/tfjs-core';
import { ExpertLoad, updateRouterBias } from '../model/moe.ts';
import type { Transformer } from '../model/transformer.ts';

const PREFIX = 'moe/load/';

type LossOut = { loss: tf.Scalar; metrics?: Record<string, tf.Scalar> };

/** Runs a loss with the model counting its experts' load, and adds the counts to its metrics. A model
 * without MoE layers runs it unchanged. */
export function withExpertLoad<T extends LossOut>(model: Transformer, loss: () => T): T {
  if (!model.config.n_routed_experts) return loss();
  const load = new ExpertLoad();
  model.expertLoad = load;
  try {
    const out = loss();
    const counts: Record<string, tf.Scalar> = {};
    for (const [layer, c] of load.counts) c.forEach((n, e) => (counts[`${PREFIX}${layer}/${e}`] = tf.scalar(n)));
    return { ...out, metrics: { ...out.metrics, ...counts } };
  } finally {
    model.expertLoad = null;
  }
}

/** The load of a step from its summed metrics (empty for a dense model). */
export function loadFromMetrics(metrics: Record<string, number>): ExpertLoad {
  const load = new ExpertLoad();
  const byLayer = new Map<number, number[]>();
  for (const [k, v] of Object.entries(metrics)) {
    if (!k.startsWith(PREFIX)) continue;
    const [layer, expert] = k.slice(PREFIX.length).split('/').map(Number);
    const xs = byLayer.get(layer) ?? [];
    xs[expert] = v;
    byLayer.set(layer, xs);
  }
  for (const [layer, xs] of byLayer)
    load.counts.set(
      layer,
      Float64Array.from(xs, (v) => v ?? 0),
    );
  return load;
}

/** After an update: move the router biases toward balance (speed 0: off) and say how balanced the
 * step was: max load / mean load per MoE layer (1 = perfectly balanced) and over all layers. */
export function balanceExperts(model: Transformer, metrics: Record<string, number>, speed: number): Record<string, number> {
  const load = loadFromMetrics(metrics);
  if (!load.counts.size) return {};
  if (speed > 0) updateRouterBias(model.params, load, speed);
  const out: Record<string, number> = {};
  for (const layer of load.counts.keys()) out[`moe/max_over_mean/${layer}`] = load.imbalance(layer);
  const all = Object.values(out).filter(Number.isFinite);
  if (all.length) out['moe/max_over_mean'] = Math.max(...all);
  return out;
}
