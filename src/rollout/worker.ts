// A rollout worker: holds a copy of the policy, refreshes its weights from shared memory when the
// version changes, and generates completions for the prompts it is sent.
import { parentPort, workerData } from 'node:worker_threads';
import { initBackend } from '../engine/backend.ts';
import { Rng } from '../engine/rng.ts';
import type { ModelConfig } from '../model/config.ts';
import { generate, type SamplingOptions } from '../model/generate.ts';
import { Tokenizer } from '../model/tokenizer.ts';
import { Transformer } from '../model/transformer.ts';
import type { WorkerInit, WorkerRequest, WorkerReply } from './pool.ts';

const init = workerData as WorkerInit;
await initBackend(init.backend);
const tokenizer = Tokenizer.fromJSON(init.tokenizer);
const weights = new Float32Array(init.weights);
let model: Transformer | null = null;
let version = -1;

function refresh(config: ModelConfig, wanted: number): Transformer {
  if (model && version === wanted) return model;
  if (!model) model = Transformer.init(config, 0);
  model.loadFlat(weights);
  version = wanted;
  return model;
}

parentPort!.on('message', (req: WorkerRequest) => {
  let reply: WorkerReply;
  try {
    const m = refresh(req.config, req.version);
    const opts: SamplingOptions = { ...req.sampling, rng: new Rng(req.seed) };
    reply = { id: req.id, completions: generate(m, tokenizer, req.prompts, opts) };
  } catch (e) {
    reply = { id: req.id, error: (e as Error).stack ?? String(e) };
  }
  parentPort!.postMessage(reply);
});
parentPort!.postMessage({ ready: true });
