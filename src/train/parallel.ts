// Data-parallel gradients over worker threads: each micro-batch is split by rows; the main thread
// computes one shard while each worker computes another on its replica of the model. Weights go to
// the workers through one SharedArrayBuffer (written once per optimiser step); gradients come back
// through one SharedArrayBuffer per worker. The main thread sums them (a shard's loss is a term of the
// batch's sum, see sharded.ts) and applies the optimiser, so replicas never drift. The loss is any module of
// the ShardableLoss shape, imported by URL on both sides.
import * as tf from '@tensorflow/tfjs-core';
import { Worker } from 'node:worker_threads';
import type { ModelConfig } from '../model/config.ts';
import { type Transformer, parameterShapes } from '../model/transformer.ts';
import { type ShardedJob, lossModule } from './sharded.ts';
import { type Grads, lossAndGrads } from './step.ts';

export type GradRequest = { id: number; version: number; module: string; data: unknown };
export type GradReply = { id: number; loss?: number; metrics?: Record<string, number>; error?: string };
export type GradWorkerInit = { backend: string; config: ModelConfig; weights: SharedArrayBuffer; grads: SharedArrayBuffer };

export type ShardedResult = { loss: number; grads: Grads; metrics: Record<string, number> };

/** Loss, gradients and metrics of a job on this thread. */
export async function localLossAndGrads(model: Transformer, module: string, data: unknown): Promise<ShardedResult> {
  const mod = await lossModule(module);
  const metrics: Record<string, number> = {};
  const r = lossAndGrads(model.trainableParams(), () => {
    const out = mod.loss(model, data);
    for (const [k, v] of Object.entries(out.metrics ?? {})) metrics[k] = v.dataSync()[0];
    return out.loss;
  });
  return { ...r, metrics };
}

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
      started.push(
        new Promise((resolve, reject) => {
          w.once('message', () => resolve());
          w.once('error', reject);
        }),
      );
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

  /** Loss, gradients and metrics of a job, its rows split across the main thread and the workers
   * and the shards' terms summed. Equal to localLossAndGrads up to float rounding. */
  async lossAndGrads(model: Transformer, job: ShardedJob): Promise<ShardedResult> {
    await this.ready;
    this.publish(model);
    const mod = await lossModule(job.module);
    const threads = job.split === false ? 1 : Math.min(this.threads, job.rows);
    if (threads <= 1) return localLossAndGrads(model, job.module, job.data);
    const per = Math.ceil(job.rows / threads);
    const shards: unknown[] = [];
    for (let from = 0; from < job.rows; from += per) shards.push(mod.slice(job.data, from, Math.min(job.rows, from + per)));
    const remote = shards.slice(1).map((s, i) => this.call(i, job.module, s));
    const mine = await localLossAndGrads(model, job.module, shards[0]);
    const replies = await Promise.all(remote);
    let loss = mine.loss;
    const metrics: Record<string, number> = { ...mine.metrics };
    for (const r of replies) {
      loss += r.loss!;
      for (const [k, v] of Object.entries(r.metrics ?? {})) metrics[k] = (metrics[k] ?? 0) + v;
    }
    const grads: Grads = {};
    let off = 0;
    this.names.forEach((name, k) => {
      const size = this.shapes[k].reduce((a, b) => a * b, 1);
      if (!mine.grads[name]) return void (off += size); // not trained by gradients (a MoE router's bias)
      grads[name] = tf.tidy(() => {
        let g: tf.Tensor = mine.grads[name];
        replies.forEach((_, i) => (g = tf.add(g, tf.tensor(this.grads[i].subarray(off, off + size), this.shapes[k]))));
        return g;
      });
      mine.grads[name].dispose();
      off += size;
    });
    return { loss, grads, metrics };
  }

  private call(i: number, module: string, data: unknown): Promise<GradReply> {
    const w = this.workers[i];
    const req: GradRequest = { id: this.nextId++, version: this.version, module, data };
    return new Promise((resolve, reject) => {
      const onMessage = (r: GradReply) => {
        if (r.id !== req.id) return;
        w.off('message', onMessage);
        if (r.error !== undefined) reject(new Error(`gradient worker failed: ${r.error}`));
        else resolve(r);
      };
      w.on('message', onMessage);
      w.postMessage(req);
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
