// The language-model loss as a shardable module (see sharded.ts): next-token cross-entropy over
// weighted tokens, divided by the token count of the whole accumulated batch.
import * as tf from '@tensorflow/tfjs-core';
import { chunkedTokenLogprobs, headWeight, logitsChunkRows } from '../model/head-logprobs.ts';
import type { Transformer } from '../model/transformer.ts';
import type { LossBatch } from '../model/mtp.ts';
import { withExpertLoad } from './expert-load.ts';
import { crossEntropy } from './loss.ts';

/** Next-token targets with per-token weights (null = all 1), as plain arrays. `normaliser` is the
 * loss weight of the whole optimiser step (all its micro-batches): every token of the step then
 * counts the same, whatever micro-batch it falls in (one token normaliser, as in Hugging Face's
 * num_items_in_batch). `packed` (optional): rows holding several documents, with each input token's
 * position in its document and document id ([B*T] each, see Transformer.hidden); the weights must
 * then be 0 where a target is the next document's first token. */
export type LmBatch = LossBatch;

export const LM_LOSS = import.meta.url;

/** The loss; for a model with its own training terms (deepseek_v3), metrics with each term apart
 * (lm_loss: next-token, mtp_loss: mtp_loss_weight x MTP, balance_loss), sums like the loss. */
export function loss(model: Transformer, b: LmBatch): { loss: tf.Scalar; metrics?: Record<string, tf.Scalar> } {
  return withExpertLoad(model, () => lossTerms(model, b));
}

function lossTerms(model: Transformer, b: LmBatch): { loss: tf.Scalar; metrics?: Record<string, tf.Scalar> } {
  const t = lmTerms(model, b);
  if (!t.mtp && !t.balance) return { loss: t.main };
  const metrics: Record<string, tf.Scalar> = { lm_loss: t.main };
  if (t.mtp) metrics.mtp_loss = t.mtp;
  if (t.balance) metrics.balance_loss = t.balance;
  return { loss: tf.addN(Object.values(metrics)) as tf.Scalar, metrics };
}

/** The next-token loss, plus the model's own training terms where it has them (deepseek_v3: the MTP
 * cross-entropy x mtp_loss_weight and the MoE balance loss; see Transformer.auxiliaryLoss), each a
 * term already divided by the step's normaliser. */
export function lmLoss(model: Transformer, b: LmBatch): tf.Scalar {
  return tf.tidy(() => {
    const { main, mtp, balance } = lmTerms(model, b);
    return mtp || balance ? (tf.addN([main, ...(mtp ? [mtp] : []), ...(balance ? [balance] : [])]) as tf.Scalar) : main;
  });
}

function lmTerms(model: Transformer, b: LmBatch): { main: tf.Scalar; mtp?: tf.Scalar; balance?: tf.Scalar } {
  return tf.tidy(() => {
    const run = model.run(tf.tensor2d(b.inputs, [b.B, b.T], 'int32'), { packed: b.packed });
    return { main: nextToken(model, run.hidden, b), ...model.auxiliaryLoss(run, b) };
  });
}

/** The next-token loss alone, without the model's training terms (MTP, balance): a held-out set's
 * score, comparable across architectures. A term divided by b.normaliser, as the loss. */
export function nextTokenLoss(model: Transformer, b: LmBatch): tf.Scalar {
  return tf.tidy(() => nextToken(model, model.run(tf.tensor2d(b.inputs, [b.B, b.T], 'int32'), { packed: b.packed }).hidden, b));
}

/** Through the whole [N, V] logits at once, or in row slices when they would be large (see
 * model/head-logprobs.ts): the same loss and gradient either way. */
function nextToken(model: Transformer, hidden: tf.Tensor2D, b: LmBatch): tf.Scalar {
  const targets = tf.tensor1d(b.targets, 'int32'),
    weights = b.weights ? tf.tensor1d(b.weights) : null;
  const rows = logitsChunkRows(hidden.shape[0], model.config.vocab_size);
  if (rows === null) return crossEntropy(model.logits(hidden), targets, weights, b.normaliser);
  const { head, tied } = headWeight(model.params);
  const lp = chunkedTokenLogprobs(hidden, head, tied, targets, rows);
  return tf.div(tf.neg(weights ? tf.sum(tf.mul(lp, weights)) : tf.sum(lp)), b.normaliser) as tf.Scalar;
}

/** Windows of T + 1 tokens (pretraining's packed text) as one unweighted batch: inputs are each
 * window's first T tokens, targets its last T. `normaliser`: the tokens the loss is divided over. */
export function windowBatch(windows: readonly number[][], T: number, normaliser: number): LmBatch {
  return {
    inputs: Int32Array.from(windows.flatMap((w) => w.slice(0, T))),
    targets: Int32Array.from(windows.flatMap((w) => w.slice(1, T + 1))),
    weights: null,
    B: windows.length,
    T,
    normaliser,
  };
}

export function slice(b: LmBatch, from: number, to: number): LmBatch {
  const T = b.T;
  return {
    inputs: b.inputs.slice(from * T, to * T),
    targets: b.targets.slice(from * T, to * T),
    weights: b.weights ? b.weights.slice(from * T, to * T) : null,
    B: to - from,
    T,
    normaliser: b.normaliser,
    ...(b.packed && {
      packed: { positions: b.packed.positions.slice(from * T, to * T), documents: b.packed.documents.slice(from * T, to * T) },
    }),
  };
}

/** The loss weight of a batch: its weights' sum (every position when unweighted). */
export function lossWeight(b: Pick<LmBatch, 'weights' | 'B' | 'T'>): number {
  return b.weights ? b.weights.reduce((a, x) => a + x, 0) : b.B * b.T;
}
