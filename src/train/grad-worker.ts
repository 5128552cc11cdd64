// A gradient worker: a replica of the model that computes the loss and gradients of the shards it
// is sent, reading weights from and writing gradients to shared memory. Under LoRA it carries the
// same adapters: the frozen base is read into it once (again only when the base moves), the
// adapters' values at every optimiser step, and only the adapters' gradients go back.
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../engine/backend.ts';
import { projectionParams } from '../model/checkpoint.ts';
import { LoraAdapters } from '../model/lora.ts';
import { Transformer, parameterShapes } from '../model/transformer.ts';
import { type GradReply, type GradRequest, type GradWorkerInit, localLossAndGrads } from './parallel.ts';

const init = workerData as GradWorkerInit;
await initBackend(init.backend);
const weights = new Float32Array(init.weights);
const grads = new Float32Array(init.grads);
const model = Transformer.init(init.config, 0);
model.gradientCheckpointing = init.gradientCheckpointing;
const adapterValues = init.lora ? new Float32Array(init.lora.adapterValues) : null;
if (init.lora) {
  model.attachAdapters(LoraAdapters.init(init.config, projectionParams(init.config), init.lora.config, init.lora.baseModel));
  const mine = Object.entries(model.trainableParams()).map(([n, v]) => `${n} [${v.shape.join(', ')}]`);
  const theirs = init.lora.trainable.map(([n, s]) => `${n} [${s.join(', ')}]`);
  if (mine.join() !== theirs.join())
    throw new Error(
      `gradient worker: its LoRA adapters (${mine.length}) differ from the trainer's (${theirs.length}): ${mine.find((m, i) => m !== theirs[i])}`,
    );
}
/** What trains, in the order the gradients travel (the pool's). */
const trainable: [string, number[]][] = init.lora ? init.lora.trainable : Object.entries(parameterShapes(init.config));
let version = -1,
  baseVersion = -1;

/** Copies what changed since the last call from shared memory into the replica; returns its bytes. */
function sync(req: GradRequest): number {
  let bytes = 0;
  if (req.baseVersion !== baseVersion) {
    model.loadFlat(weights);
    bytes += weights.byteLength;
    baseVersion = req.baseVersion;
  }
  if (adapterValues && req.version !== version) {
    const params = model.trainableParams();
    let off = 0;
    for (const [name, shape] of trainable) {
      const size = shape.reduce((a, b) => a * b, 1);
      tf.tidy(() => params[name].assign(tf.tensor(adapterValues.subarray(off, off + size), shape)));
      off += size;
    }
    bytes += off * 4;
  }
  version = req.version;
  return bytes;
}

parentPort!.on('message', async (req: GradRequest) => {
  let reply: GradReply;
  try {
    const loadedBytes = sync(req);
    const r = await localLossAndGrads(model, req.module, req.data);
    let off = 0;
    for (const [name, shape] of trainable) {
      if (!r.grads[name]) {
        // not trained by gradients (a MoE router's bias)
        off += shape.reduce((a, b) => a * b, 1);
        continue;
      }
      const g = r.grads[name].dataSync() as Float32Array;
      grads.set(g, off);
      off += g.length;
      r.grads[name].dispose();
    }
    reply = { id: req.id, loss: r.loss, metrics: r.metrics, loadedBytes };
  } catch (e) {
    reply = { id: req.id, error: (e as Error).stack ?? String(e) };
  }
  parentPort!.postMessage(reply);
});
parentPort!.postMessage({ ready: true });
