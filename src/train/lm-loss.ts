// The language-model loss as a shardable module: next-token cross-entropy over weighted tokens.
import * as tf from '@tensorflow/tfjs-core';
import type { Transformer } from '../model/transformer.ts';
import { crossEntropy } from './loss.ts';

/** Next-token targets with per-token weights (null = all 1), as plain arrays. */
export type LmBatch = { inputs: Int32Array; targets: Int32Array; weights: Float32Array | null; B: number; T: number };

export const LM_LOSS = import.meta.url;

export function loss(model: Transformer, b: LmBatch): { loss: tf.Scalar } {
  return { loss: lmLoss(model, b) };
}

export function lmLoss(model: Transformer, b: LmBatch): tf.Scalar {
  return tf.tidy(() => {
    const logits = model.logits(model.hidden(tf.tensor2d(b.inputs, [b.B, b.T], 'int32')));
    return crossEntropy(logits, tf.tensor1d(b.targets, 'int32'), b.weights ? tf.tensor1d(b.weights) : null);
  });
}

export function slice(b: LmBatch, from: number, to: number): LmBatch {
  const T = b.T;
  return {
    inputs: b.inputs.slice(from * T, to * T), targets: b.targets.slice(from * T, to * T),
    weights: b.weights ? b.weights.slice(from * T, to * T) : null, B: to - from, T,
  };
}

export function weight(b: LmBatch): number {
  return b.weights ? b.weights.reduce((a, x) => a + x, 0) : b.B * b.T;
}
