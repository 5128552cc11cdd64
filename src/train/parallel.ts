// Data-parallel gradients over worker threads: each micro-batch is split by rows; the main thread
// computes one shard while each worker computes another on its replica of the model. Weights go to
// the workers through one SharedArrayBuffer (written once per optimiser step; under LoRA the frozen
// base is written once per run and only the adapters each step, through a second, small one);
// gradients of what trains come back through one SharedArrayBuffer per worker. The main thread sums
// them (a shard's loss is a term of the batch's sum, see sharded.ts) and applies the optimiser, so
// replicas never drift. The loss is any module of the ShardableLoss shape, imported by URL on both sides.
import * as tf from '@tensorflow/tfjs-core';
import { Worker } from 'node:worker_threads';
import type { ModelConfig } from '../model/config.ts';
import type { LoraAdapters, LoraConfig } from '../model/lora.ts';
import { type Transformer, parameterShapes } from '../model/transformer.ts';
import { type ShardedJob, lossModule } from './sharded.ts';
import { type Grads, lossAndGrads } from './step.ts';

/** `version`: the trainable values' version (adapters under LoRA, else every weight); `baseVersion`:
 * the frozen base's (equal to version without LoRA). A worker reloads only what changed. */
export type GradRequest = { id: number; version: number; baseVersion: number; module: string; data: unknown };
/** `loadedBytes`: bytes of weights the worker copied from shared memory into its model for this call. */
export type GradReply = { id: number; loss?: number; metrics?: Record<string, number>; loadedBytes?: number; error?: string };
/** What a worker builds its replica from. `weights`: every parameter (parameterShapes order); under
 * `lora`, the frozen base, with the adapters' values in `adapterValues` (trainable order); `grads`:
 * one value per trainable value, in trainable order. */
export type GradWorkerInit = {
  backend: string;
  config: ModelConfig;
  weights: SharedArrayBuffer;
  grads: SharedArrayBuffer;
  gradientCheckpointing: boolean;
  lora: null | { config: LoraConfig; baseModel: string; adapterValues: SharedArrayBuffer; trainable: [string, number[]][] };
};

/** What a pool is built for beside the config: the model's LoRA adapters (null: every weight trains)
 * and whether its replicas recompute activations (gradient_checkpointing). */
export type PoolOptions = { adapters?: LoraAdapters | null; gradientCheckpointing?: boolean };

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

const sizeOf = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** Writes `values` one after another into `into` (their layout order); returns the bytes written. */
function writeFlat(into: Float32Array, values: Float32Array[]): number {
  let off = 0;
  for (const d of values) {
    into.set(d, off);
    off += d.length;
  }
  return off * 4;
}

/** Under LoRA the workers train the adapters: the frozen base goes to shared memory and into each
 * worker once per run (again only if it moves, as a MoE router's bias does), and each optimiser step
 * sends only the adapters' values and brings back only their gradients. */
export class GradientPool {
  private readonly workers: Worker[] = [];
  private readonly weights: Float32Array;
  private readonly adapterValues: Float32Array | null = null;
  private readonly grads: Float32Array[] = [];
  /** What trains, in the order gradients travel: every parameter (parameterShapes), or the adapters. */
  private readonly names: string[];
  private readonly shapes: number[][];
  private readonly lora: boolean;
  private version = 0;
  private baseVersion = 0;
  private synced = -1;
  private baseSynced = -1;
  private nextId = 0;
  private readonly ready: Promise<void>;
  /** Bytes written to shared memory so far: the base weights (everything without LoRA) and the adapters. */
  readonly sentBytes = { base: 0, adapters: 0 };
  /** Bytes the workers copied from shared memory into their replicas so far. */
  workerLoadedBytes = 0;

  /** `size` extra threads beside the main one. */
  constructor(size: number, config: ModelConfig, backend: string, opts: PoolOptions = {}) {
    const all = Object.values(parameterShapes(config));
    const wsab = new SharedArrayBuffer(all.reduce((a, s) => a + sizeOf(s), 0) * 4);
    this.weights = new Float32Array(wsab);
    const adapters = opts.adapters ?? null;
    this.lora = adapters !== null;
    const trainable: [string, number[]][] = adapters
      ? Object.entries(adapters.params()).map(([n, v]) => [n, v.shape])
      : Object.entries(parameterShapes(config));
    this.names = trainable.map(([n]) => n);
    this.shapes = trainable.map(([, s]) => s);
    const trainableTotal = this.shapes.reduce((a, s) => a + sizeOf(s), 0);
    let lora: GradWorkerInit['lora'] = null;
    if (adapters) {
      const asab = new SharedArrayBuffer(trainableTotal * 4);
      this.adapterValues = new Float32Array(asab);
      lora = { config: adapters.config, baseModel: adapters.baseModel, adapterValues: asab, trainable };
    }
    const started: Promise<void>[] = [];
    for (let i = 0; i < size; i++) {
      const gsab = new SharedArrayBuffer(trainableTotal * 4);
      this.grads.push(new Float32Array(gsab));
      const init: GradWorkerInit = {
        backend,
        config,
        weights: wsab,
        grads: gsab,
        gradientCheckpointing: opts.gradientCheckpointing ?? false,
        lora,
      };
      const w = new Worker(new URL('./grad-worker-entry.js', import.meta.url), { workerData: init });
      started.push(
        new Promise((resolve, reject) => {
          w.once('message', (m: { ready?: boolean; error?: string }) =>
            m.error === undefined ? resolve() : reject(new Error(`gradient worker failed to start: ${m.error}`)),
          );
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

  /** Marks the trained values as changed (after an optimiser step); `base`: the frozen base too (a
   * MoE router's bias moved). Without LoRA every weight is trained, so both change. */
  invalidate(opts: { base?: boolean } = {}): void {
    this.version++;
    if (!this.lora || opts.base) this.baseVersion++;
  }

  private publish(model: Transformer): void {
    if (this.baseSynced !== this.baseVersion) {
      // The raw base (under LoRA the adapters travel apart and stay out of these values).
      this.sentBytes.base += writeFlat(
        this.weights,
        Object.keys(parameterShapes(model.config)).map((n) => model.baseData(n)),
      );
      this.baseSynced = this.baseVersion;
    }
    if (this.adapterValues && this.synced !== this.version) {
      const params = model.trainableParams();
      this.sentBytes.adapters += writeFlat(
        this.adapterValues,
        this.names.map((n) => params[n].dataSync() as Float32Array),
      );
    }
    this.synced = this.version;
  }

  /** Loss, gradients and metrics of a job, its rows split across the main thread and the workers
   * and the shards' terms summed. Equal to localLossAndGrads up to float rounding. */
  async lossAndGrads(model: Transformer, job: ShardedJob): Promise<ShardedResult> {
    await this.ready;
    const mod = await lossModule(job.module);
    const threads = job.split === false ? 1 : Math.min(this.threads, job.rows);
    if (threads <= 1) return localLossAndGrads(model, job.module, job.data);
    this.publish(model);
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
      this.workerLoadedBytes += r.loadedBytes ?? 0;
      for (const [k, v] of Object.entries(r.metrics ?? {})) metrics[k] = (metrics[k] ?? 0) + v;
    }
    const grads: Grads = {};
    let off = 0;
    this.names.forEach((name, k) => {
      const size = sizeOf(this.shapes[k]);
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
    const req: GradRequest = { id: this.nextId++, version: this.version, baseVersion: this.baseVersion, module, data };
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
