// Data-parallel gradients over worker threads: each optimiser step's batch is split by rows; the
// main thread computes one shard while each worker computes another on its replica of the model.
// Weights go to the workers through one SharedArrayBuffer (written once per step); gradients come
// back through one SharedArrayBuffer per worker. The main thread sums them, weighted by each
// shard's share of the loss tokens, and applies the optimiser, so replicas never drift.
import * as tf from '@tensorflow/tfjs-core';
import { Worker } from 'node:worker_threads';
import type { ModelConfig } from '../model/config.ts';
import { type Transformer, parameterShapes } from '../model/transformer.ts';
import { crossEntropy } from './loss.ts';
import { type Grads, lossAndGrads } from './step.ts';

/** A language-model micro-batch as plain arrays: next-token targets with per-token weights. */
export type LmBatch = { inputs: Int32Array; targets: Int32Array; weights: Float32Array | null; B: number; T: number };

export type GradRequest = { id: number; version: number; batch: LmBatch };
export type GradReply = { id: number; loss?: number; error?: string };
export type GradWorkerInit = { backend: string; config: ModelConfig; weights: SharedArrayBuffer; grads: SharedArrayBuffer };

/** The loss of an LM batch: mean cross-entropy over weighted target tokens. */
export function lmLoss(model: Transformer, b: LmBatch): tf.Scalar {
  return tf.tidy(() => {
    const logits = model.logits(model.hidden(tf.tensor2d(b.inputs, [b.B, b.T], 'int32')));
    return crossEntropy(logits, tf.tensor1d(b.targets, 'int32'), b.weights ? tf.tensor1d(b.weights) : null);
  });
}

/** Rows [from, to) of a batch. */
export function sliceBatch(b: LmBatch, from: number, to: number): LmBatch {
  const T = b.T;
  return {
    inputs: b.inputs.slice(from * T, to * T), targets: b.targets.slice(from * T, to * T),
    weights: b.weights ? b.weights.slice(from * T, to * T) : null, B: to - from, T,
  };
}

const lossWeight = (b: LmBatch) => (b.weights ? b.weights.reduce((a, x) => a + x, 0) : b.B * b.T);

export class GradientPool {
  private readonly workers: Worker[] = [];
  private readonly weights: Float32Array;
  private readonly grads: Float32Array[] = [];
  private readonly names: string[];
  private readonly shapes: number[][];
  private version = 0;
  private synced = -1;
  private nextId = 0;
  private readonly ready: Promise<void>;

  /** `size` extra threads beside the main one. */
  constructor(size: number, config: ModelConfig, backend: string) {
    const shapes = parameterShapes(config);
    this.names = Object.keys(shapes);
    this.shapes = Object.values(shapes);
    const total = this.shapes.reduce((a, s) => a + s.reduce((x, y) => x * y, 1), 0);
    const wsab = new SharedArrayBuffer(total * 4);
    this.weights = new Float32Array(wsab);
    const started: Promise<void>[] = [];
    for (let i = 0; i < size; i++) {
      const gsab = new SharedArrayBuffer(total * 4);
      this.grads.push(new Float32Array(gsab));
      const init: GradWorkerInit = { backend, config, weights: wsab, grads: gsab };
      const w = new Worker(new URL('./grad-worker-entry.js', import.meta.url), { workerData: init });
      started.push(new Promise((resolve, reject) => {
        w.once('message', () => resolve());
        w.once('error', reject);
      }));
      this.workers.push(w);
    }
    this.ready = Promise.all(started).then(() => undefined);
  }

  get threads(): number {
    return this.workers.length + 1;
  }

  /** Marks the weights as changed (after an optimiser step). */
  invalidate(): void {
    this.version++;
  }

  private publish(model: Transformer): void {
    if (this.synced === this.version) return;
    let off = 0;
    for (const n of this.names) {
      const d = model.params[n].dataSync() as Float32Array;
      this.weights.set(d, off);
      off += d.length;
    }
    this.synced = this.version;
  }

  /** Loss and summed gradients of `batch`, its rows split across the main thread and the workers.
   * Equal to lossAndGrads(lmLoss(batch)) up to float rounding. */
  async lossAndGrads(model: Transformer, batch: LmBatch): Promise<{ loss: number; grads: Grads }> {
    await this.ready;
    this.publish(model);
    const n = this.threads;
    const per = Math.ceil(batch.B / n);
    const shards = Array.from({ length: n }, (_, i) => sliceBatch(batch, Math.min(batch.B, i * per), Math.min(batch.B, (i + 1) * per))).filter((s) => s.B > 0);
    const total = shards.reduce((a, s) => a + lossWeight(s), 0);
    const remote = shards.slice(1).map((s, i) => this.call(i, s));
    const mine = lossAndGrads(model.params, () => lmLoss(model, shards[0]));
    const replies = await Promise.all(remote);
    const w0 = lossWeight(shards[0]) / total;
    let loss = mine.loss * w0;
    const grads: Grads = {};
    let off = 0;
    this.names.forEach((name, k) => {
      const size = this.shapes[k].reduce((a, b) => a * b, 1);
      grads[name] = tf.tidy(() => {
        let g = tf.mul(mine.grads[name], w0);
        replies.forEach((_, i) => {
          const wi = lossWeight(shards[i + 1]) / total;
          g = tf.add(g, tf.mul(tf.tensor(this.grads[i].subarray(off, off + size), this.shapes[k]), wi));
        });
        return g;
      });
      mine.grads[name].dispose();
      off += size;
    });
    replies.forEach((r, i) => (loss += r * (lossWeight(shards[i + 1]) / total)));
    return { loss, grads };
  }

  private call(i: number, batch: LmBatch): Promise<number> {
    const w = this.workers[i];
    const req: GradRequest = { id: this.nextId++, version: this.version, batch };
    return new Promise((resolve, reject) => {
      const onMessage = (r: GradReply) => {
        if (r.id !== req.id) return;
        w.off('message', onMessage);
        if (r.error !== undefined) reject(new Error(`gradient worker failed: ${r.error}`));
        else resolve(r.loss!);
      };
      w.on('message', onMessage);
      w.postMessage(req);
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
