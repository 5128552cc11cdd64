// DeepSeekMoE (DeepSeek-V3): n_routed_experts fine-grained SwiGLU experts of moe_intermediate_size, of
// which each token uses num_experts_per_tok, plus n_shared_experts always-on experts (one SwiGLU of
// n_shared_experts x moe_intermediate_size). Routing, as V3's `noaux_tc`:
//   s = sigmoid(x W_router)                          affinities [N, E]
//   choice = s + e_score_correction_bias             the bias steers the choice only
//   groups of E / n_group experts score by the sum of their top 2 choices; the topk_group best
//   groups stay, the other experts' choices become 0; the top num_experts_per_tok choices win
//   gate_e = s_e / sum(s of the winners) (norm_topk_prob) x routed_scaling_factor
// The choice is made in plain JS over the scores (it is discrete: no gradient flows through it); the
// gates are gathered from the differentiable scores, so gradients reach the router through them.
// The bias is updated outside the gradient (auxiliary-loss-free balancing: updateRouterBias) from the
// tokens each expert received (ExpertLoad).
import * as tf from '@tensorflow/tfjs-core';
import { swiglu } from '../engine/kernels/index.ts';
import { type Deepseek, type ModelConfig, deepseek } from './config.ts';
import { type Weight, linear } from './linear.ts';

/** Internal parameter names and shapes of one MoE layer under `prefix`: the router [C, E] and its
 * correction bias [E] (not trained by gradients), each expert's fused gate/up [C, 2F] and down [F, C],
 * and the shared experts' (F x n_shared_experts wide). */
export function moeShapes(c: ModelConfig, prefix: string): Record<string, number[]> {
  const d = deepseek(c),
    C = c.hidden_size,
    F = d.moe_intermediate_size,
    E = d.n_routed_experts;
  const s: Record<string, number[]> = { [prefix + 'router']: [C, E], [prefix + 'router_bias']: [E] };
  for (let e = 0; e < E; e++) {
    s[`${prefix}experts.${e}.w_gate_up`] = [C, 2 * F];
    s[`${prefix}experts.${e}.w_down`] = [F, C];
  }
  if (d.n_shared_experts > 0) {
    s[prefix + 'shared.w_gate_up'] = [C, 2 * F * d.n_shared_experts];
    s[prefix + 'shared.w_down'] = [F * d.n_shared_experts, C];
  }
  return s;
}

/** The routing sizes route() needs. */
export type Routing = Pick<Deepseek, 'n_routed_experts' | 'n_group' | 'topk_group' | 'num_experts_per_tok'>;

/** The experts each token goes to: scores [N * E] (sigmoid affinities, row-major), bias [E] (or null)
 * -> expert ids [N * K], each token's in descending order of biased choice. Group-limited as
 * DeepSeek-V3: a group's score is the sum of its two best biased choices; experts outside the
 * topk_group best groups count 0 (as Hugging Face fills them), then the top K biased choices win.
 * Ties go to the lower index. */
export function route(scores: Float32Array, bias: Float32Array | null, r: Routing): Int32Array {
  const E = r.n_routed_experts,
    G = r.n_group,
    per = E / G,
    K = r.num_experts_per_tok,
    N = scores.length / E;
  const out = new Int32Array(N * K);
  const choice = new Float32Array(E),
    groupScore = new Float64Array(G);
  const byDesc = (values: ArrayLike<number>, n: number) =>
    Array.from({ length: n }, (_, i) => i).sort((a, b) => values[b] - values[a] || a - b);
  for (let n = 0; n < N; n++) {
    for (let e = 0; e < E; e++) choice[e] = scores[n * E + e] + (bias ? bias[e] : 0);
    for (let g = 0; g < G; g++) {
      const top = byDesc(choice.subarray(g * per, (g + 1) * per), per);
      groupScore[g] = choice[g * per + top[0]] + choice[g * per + top[1]];
    }
    const kept = new Set(byDesc(groupScore, G).slice(0, r.topk_group));
    for (let e = 0; e < E; e++) if (!kept.has(Math.floor(e / per))) choice[e] = 0;
    byDesc(choice, E)
      .slice(0, K)
      .forEach((e, k) => (out[n * K + k] = e));
  }
  return out;
}

/** The gates [N, K] of the chosen experts [N * K]: their unbiased scores (scores [N, E], differentiable),
 * divided by their sum (norm_topk_prob), times routed_scaling_factor. */
export function routerGates(
  scores: tf.Tensor2D,
  experts: Int32Array,
  d: Routing & Pick<Deepseek, 'norm_topk_prob' | 'routed_scaling_factor'>,
): tf.Tensor2D {
  return tf.tidy(() => {
    const [N, E] = scores.shape,
      K = d.num_experts_per_tok;
    const at = Int32Array.from(experts, (e, i) => Math.floor(i / K) * E + e);
    let gates = tf.reshape(tf.gather(tf.reshape(scores, [N * E]), tf.tensor1d(at, 'int32')), [N, K]) as tf.Tensor2D; // [N, K]
    if (d.norm_topk_prob) gates = tf.div(gates, tf.add(tf.sum(gates, 1, true), 1e-20));
    return tf.mul(gates, d.routed_scaling_factor);
  });
}

/** Tokens routed to each expert, per MoE layer (by layer index; the MTP block is layer
 * num_hidden_layers), summed over every forward pass since the last reset. Set a Transformer's
 * `expertLoad` to one to record; the trainer reads it after a step, updates the biases
 * (updateRouterBias) and resets it. */
export class ExpertLoad {
  readonly counts = new Map<number, Float64Array>();

  add(layer: number, experts: Int32Array, E: number): void {
    let c = this.counts.get(layer);
    if (!c) this.counts.set(layer, (c = new Float64Array(E)));
    for (const e of experts) c[e]++;
  }

  /** max load / mean load of one layer (1 = perfectly balanced). */
  imbalance(layer: number): number {
    const c = this.counts.get(layer);
    if (!c) return NaN;
    const mean = c.reduce((a, b) => a + b, 0) / c.length;
    return mean > 0 ? Math.max(...c) / mean : NaN;
  }

  reset(): void {
    this.counts.clear();
  }
}

/** Auxiliary-loss-free balancing (DeepSeek-V3): each expert's bias moves by -speed x sign(load - mean
 * load) of its layer. `bias` of each layer: the model's `layers.<i>.router_bias` variables. */
export function updateRouterBias(params: Record<string, tf.Variable>, load: ExpertLoad, speed: number): void {
  for (const [layer, counts] of load.counts) {
    const bias = params[`layers.${layer}.router_bias`];
    if (!bias) throw new Error(`updateRouterBias: the model has no tensor layers.${layer}.router_bias`);
    const mean = counts.reduce((a, b) => a + b, 0) / counts.length;
    const step = Float32Array.from(counts, (n) => -speed * Math.sign(n - mean));
    tf.tidy(() => bias.assign(tf.add(bias, tf.tensor1d(step))));
  }
}

/** One MoE layer's weights (router_bias read as data: it only steers the choice). */
export type MoeWeights = {
  router: tf.Tensor;
  router_bias: tf.Tensor;
  experts: { w_gate_up: Weight; w_down: Weight }[];
  shared?: { w_gate_up: Weight; w_down: Weight };
};

/** x: normed hidden states [B*T, C] -> the layer's output [B*T, C], and the sequence-wise balance loss
 * (DeepSeek-V3 eq. 17-20, per row of B, averaged over rows; times aux_loss_alpha; null when alpha is 0).
 * `record` adds this forward's tokens per expert to an ExpertLoad under `layer`. */
export function moe(
  x: tf.Tensor2D,
  w: MoeWeights,
  c: ModelConfig,
  B: number,
  record?: { load: ExpertLoad; layer: number },
): { out: tf.Tensor2D; balance: tf.Scalar | null } {
  const d = deepseek(c),
    E = d.n_routed_experts,
    K = d.num_experts_per_tok,
    N = x.shape[0],
    T = N / B;
  const scores = tf.sigmoid(linear(x, w.router)); // [N, E]
  const experts = route(scores.dataSync() as Float32Array, w.router_bias.dataSync() as Float32Array, d); // [N*K]
  record?.load.add(record.layer, experts, E);

  const gates = routerGates(scores, experts, d); // [N, K]

  // Dispatch: the (token, slot) pairs sorted by expert, each expert one SwiGLU over its rows, then
  // every output gathered back to its (token, slot) place and mixed by the gates.
  const rows: number[][] = Array.from({ length: E }, () => []);
  experts.forEach((e, i) => rows[e].push(i));
  const order = rows.flat(); // (token, slot) pairs, expert by expert
  const place = new Int32Array(N * K);
  order.forEach((pair, j) => (place[pair] = j));
  const xs = tf.gather(
    x,
    tf.tensor1d(
      Int32Array.from(order, (i) => Math.floor(i / K)),
      'int32',
    ),
  ); // [N*K, C]
  const outs: tf.Tensor2D[] = [];
  let start = 0;
  rows.forEach((r, e) => {
    if (!r.length) return;
    const xe = tf.slice(xs, [start, 0], [r.length, -1]) as tf.Tensor2D; // [n_e, C]
    outs.push(linear(swiglu(linear(xe, w.experts[e].w_gate_up)), w.experts[e].w_down)); // [n_e, C]
    start += r.length;
  });
  const ys = tf.gather(outs.length === 1 ? outs[0] : tf.concat(outs, 0), tf.tensor1d(place, 'int32')); // [N*K, C], (token, slot) order
  let out = tf.sum(tf.mul(tf.reshape(ys, [N, K, -1]), tf.expandDims(gates, 2)), 1) as tf.Tensor2D; // [N, C]
  if (w.shared) out = tf.add(out, linear(swiglu(linear(x, w.shared.w_gate_up)), w.shared.w_down));

  let balance: tf.Scalar | null = null;
  if (d.aux_loss_alpha > 0) {
    // f_e = E / (K T) x tokens of the row sent to e (a constant); P_e = mean over the row of s_e / sum(s).
    const f = new Float32Array(B * E);
    experts.forEach((e, i) => (f[Math.floor(i / K / T) * E + e] += E / (K * T)));
    const P = tf.mean(tf.reshape(tf.div(scores, tf.sum(scores, 1, true)), [B, T, E]), 1); // [B, E]
    balance = tf.mul(tf.sum(tf.mul(P, tf.tensor2d(f, [B, E]))), d.aux_loss_alpha / B) as tf.Scalar;
  }
  return { out, balance };
}
