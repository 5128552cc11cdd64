// A gradient worker: a replica of the model that computes the loss and gradients of the shards it
// is sent, reading weights from and writing gradients to shared memory.
import { parentPort, workerData } from 'node:worker_threads';
import { initBackend } from '../engine/backend.ts';
import { Transformer, parameterShapes } from '../model/transformer.ts';
import { type GradReply, type GradRequest, type GradWorkerInit, localLossAndGrads } from './parallel.ts';

const init = workerData as GradWorkerInit;
await initBackend(init.backend);
const weights = new Float32Array(init.weights);
const grads = new Float32Array(init.grads);
const shapes = Object.entries(parameterShapes(init.config));
const model = Transformer.init(init.config, 0);
let version = -1;

parentPort!.on('message', async (req: GradRequest) => {
  let reply: GradReply;
  try {
    if (req.version !== version) {
      model.loadFlat(weights);
      version = req.version;
    }
    const r = await localLossAndGrads(model, req.module, req.data);
    let off = 0;
    for (const [name, shape] of shapes) {
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
    reply = { id: req.id, loss: r.loss, metrics: r.metrics };
  } catch (e) {
    reply = { id: req.id, error: (e as Error).stack ?? String(e) };
  }
  parentPort!.postMessage(reply);
});
parentPort!.postMessage({ ready: true });
