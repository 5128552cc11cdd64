// A loss whose batch can be split by rows and computed anywhere: on the main thread, or on gradient
// workers that import the same module by URL. Each module exports `loss`, `slice` and `weight`.
import type * as tf from '@tensorflow/tfjs-core';
import type { Transformer } from '../model/transformer.ts';

export type ShardableLoss<T> = {
  /** The batch's loss, plus scalar metrics to average like it (kl, clip fraction, ...). */
  loss(model: Transformer, data: T): { loss: tf.Scalar; metrics?: Record<string, tf.Scalar> };
  /** Rows [from, to) of the batch. */
  slice(data: T, from: number, to: number): T;
  /** The share this batch carries in the mean over the whole batch (rows, or loss tokens). */
  weight(data: T): number;
};

/** A micro-batch for such a loss: the module's URL, its data (structured-cloneable), its row count. */
export type ShardedJob = { module: string; data: unknown; rows: number };

const cache = new Map<string, Promise<ShardableLoss<unknown>>>();

export function lossModule(url: string): Promise<ShardableLoss<unknown>> {
  let m = cache.get(url);
  if (!m) cache.set(url, (m = import(url) as Promise<ShardableLoss<unknown>>));
  return m;
}
