// A loss whose batch can be split by rows and computed anywhere: on the main thread, or on gradient
// workers that import the same module by URL. Each module exports `loss` and `slice`.
//
// The contract that makes splitting exact: a module's loss and metrics are SUMS over the batch's
// rows of per-row terms, each already divided by a normaliser of the whole accumulated batch that
// travels in the data (its token count, its row count, ...). So the loss of rows [0, n) is the loss
// of [0, k) plus the loss of [k, n), and shards, like micro-batches, are simply added.
import type * as tf from '@tensorflow/tfjs-core';
import type { Transformer } from '../model/transformer.ts';

export type ShardableLoss<T> = {
  /** The batch's loss term, plus scalar metric terms that add up the same way (kl, clip fraction, ...). */
  loss(model: Transformer, data: T): { loss: tf.Scalar; metrics?: Record<string, tf.Scalar> };
  /** Rows [from, to) of the batch, keeping its normalisers. */
  slice(data: T, from: number, to: number): T;
};

/** A micro-batch for such a loss: the module's URL, its data (structured-cloneable), its row count,
 * and whether its rows may be split across threads (false when the loss needs every row at once). */
export type ShardedJob = { module: string; data: unknown; rows: number; split?: boolean };

const cache = new Map<string, Promise<ShardableLoss<unknown>>>();

export function lossModule(url: string): Promise<ShardableLoss<unknown>> {
  let m = cache.get(url);
  if (!m) cache.set(url, (m = import(url) as Promise<ShardableLoss<unknown>>));
  return m;
}
