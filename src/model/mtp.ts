// Multi-token prediction, depth 1 (DeepSeek-V3), as the checkpoint stores it in model.layers.<L>
// (L = num_hidden_layers). Row i, at rotary position i, attending causally over rows 0..i:
//   y_i = eh_proj([enorm(embed(token i+1)) ; hnorm(h_i)])   embedding first (the released eh_proj's order);
//                                                          h_i: the main model's final hidden state
//   z_i = shared_head.head(shared_head.norm(block_L(y)_i))  logits of token i+2
// The embedding is the main model's. In training the MTP cross-entropy, times mtp_loss_weight, joins
// the next-token loss (Transformer.auxiliaryLoss); at inference it is off (mtpLogits on request).
import * as tf from '@tensorflow/tfjs-core';
import { rmsNorm } from '../engine/kernels/index.ts';
import { type ModelConfig, deepseek } from './config.ts';
import { linear } from './linear.ts';
import type { MtpHost, Packed } from './blocks.ts';

/** The MTP module's parameters: block L's (`block`, the model's layer shapes for L), then its norms,
 * eh_proj [2C, C] and head [C, V]. */
export function mtpShapes(c: ModelConfig, block: Record<string, number[]>): Record<string, number[]> {
  const C = c.hidden_size,
    l = `layers.${c.num_hidden_layers}.`;
  return {
    ...block,
    [l + 'enorm']: [C],
    [l + 'hnorm']: [C],
    [l + 'eh_proj']: [2 * C, C],
    [l + 'head_norm']: [C],
    [l + 'head']: [C, c.vocab_size],
  };
}

/** The MTP block's final states [B*(T-1), C] (after shared_head.norm): hidden [B*T, C] the main
 * model's, next [B, T-1] the ids of tokens 1..T-1 of each row (row i's token i+1). `packed`: the
 * main batch's (first T-1 columns used). */
export function mtpHidden(model: MtpHost, hidden: tf.Tensor2D, next: tf.Tensor2D, packed?: Packed): tf.Tensor2D {
  return tf.tidy(() => {
    const c = model.config,
      p = model.params,
      eps = c.rms_norm_eps,
      L = c.num_hidden_layers,
      l = `layers.${L}.`;
    const [B, S] = next.shape,
      T = S + 1,
      C = c.hidden_size;
    if (!deepseek(c).num_nextn_predict_layers) throw new Error('mtpHidden: the model has no MTP module (num_nextn_predict_layers is 0)');
    const h = tf.reshape(tf.slice(tf.reshape(hidden, [B, T, C]), [0, 0, 0], [B, S, C]), [B * S, C]); // [B*S, C], rows 0..T-2
    const e = tf.gather(p.embed, tf.reshape(next, [B * S])) as tf.Tensor2D; // [B*S, C]
    const y = linear(tf.concat([rmsNorm(e, p[l + 'enorm'], eps), rmsNorm(h, p[l + 'hnorm'], eps)], 1) as tf.Tensor2D, p[l + 'eh_proj']); // [B*S, C]
    const first = (a: Int32Array) => Int32Array.from({ length: B * S }, (_, i) => a[Math.floor(i / S) * T + (i % S)]);
    const sub = packed && { positions: first(packed.positions), documents: first(packed.documents) };
    const out = model.block(L, y, { ...model.blockContext(B, S, sub), balance: [] });
    return rmsNorm(out, p[l + 'head_norm'], eps);
  });
}

/** MTP logits [B, T-1, V] for ids [B, T] given the main model's final hidden states [B*T, C]:
 * row i predicts token i+2. */
export function mtpLogits(model: MtpHost, hidden: tf.Tensor2D, ids: tf.Tensor2D): tf.Tensor3D {
  return tf.tidy(() => {
    const [B, T] = ids.shape;
    const next = tf.slice(ids, [0, 1], [B, T - 1]) as tf.Tensor2D;
    const z = tf.matMul(mtpHidden(model, hidden, next), model.params[`layers.${model.config.num_hidden_layers}.head`]); // [B*(T-1), V]
    return tf.reshape(z, [B, T - 1, model.config.vocab_size]) as tf.Tensor3D;
  });
}

/** The fields of a language-model batch the auxiliary losses read (train/lm-loss.ts's LmBatch). */
export type LossBatch = {
  inputs: Int32Array;
  targets: Int32Array;
  weights: Float32Array | null;
  B: number;
  T: number;
  normaliser: number;
  packed?: Packed;
};

/** mtp_loss_weight x the MTP cross-entropy over the batch's rows i = 0..T-2 (target: targets[i+1], the
 * token after next), weighted by that target's weight and, in packed rows, only where tokens i and i+1
 * are in one document; divided by the batch's normaliser. Null without an MTP module, with weight 0
 * or with rows of one token. */
export function mtpLoss(model: MtpHost, hidden: tf.Tensor2D, b: LossBatch): tf.Scalar | null {
  const d = deepseek(model.config);
  if (!d.num_nextn_predict_layers || d.mtp_loss_weight === 0 || b.T < 2) return null;
  return tf.tidy(() => {
    const { B, T } = b,
      S = T - 1;
    const at = (i: number) => Math.floor(i / S) * T + (i % S); // row i of the MTP batch -> its position in the main one
    const next = Int32Array.from({ length: B * S }, (_, i) => b.inputs[at(i) + 1]);
    const targets = Int32Array.from({ length: B * S }, (_, i) => b.targets[at(i) + 1]);
    const weights = Float32Array.from({ length: B * S }, (_, i) => {
      const j = at(i);
      if (b.packed && b.packed.documents[j] !== b.packed.documents[j + 1]) return 0;
      return b.weights ? b.weights[j + 1] : 1;
    });
    const h = mtpHidden(model, hidden, tf.tensor2d(next, [B, S], 'int32'), b.packed);
    const z = tf.matMul(h, model.params[`layers.${model.config.num_hidden_layers}.head`]) as tf.Tensor2D; // [B*S, V]
    const logp = tf.sum(tf.mul(tf.logSoftmax(z), tf.oneHot(tf.tensor1d(targets, 'int32'), z.shape[1])), 1); // [B*S]
    return tf.mul(tf.sum(tf.mul(logp, tf.tensor1d(weights))), -d.mtp_loss_weight / b.normaliser) as tf.Scalar;
  });
}
