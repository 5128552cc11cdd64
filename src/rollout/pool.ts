// Rollout workers: generation is most of a GRPO step, so the prompts of a step are split across
// worker threads, one per core, each holding the policy. After each optimiser step the main thread
// writes the weights once into a SharedArrayBuffer; a worker copies them into its backend only when
// the version changed. Each worker's share is sampled with its own seed drawn from the caller's RNG,
// so a run is repeatable for a given number of workers.
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { onOneDevice } from '../engine/backend.ts';
import type { ModelConfig } from '../model/config.ts';
import type { Completion, SamplingOptions } from '../model/generate.ts';
import type { Tokenizer } from '../model/tokenizer.ts';
import { type Transformer, parameterShapes } from '../model/transformer.ts';
import type { Rng } from '../engine/rng.ts';
import type { Rollouts } from './rollouts.ts';

export type WorkerInit = { backend: string; tokenizer: unknown; weights: SharedArrayBuffer };
export type WorkerRequest = {
  id: number;
  version: number;
  config: ModelConfig;
  prompts: number[][];
  sampling: Omit<SamplingOptions, 'rng'>;
  seed: number;
};
export type WorkerReply = { id: number; completions?: Completion[]; error?: string };

/** Rollout threads for a `rollout_workers` setting: auto is one per core on the CPU backends and
 * none (the main thread) on a GPU, whose device the main thread already holds with the weights. */
export function defaultWorkers(setting: number | 'auto', backend: string): number {
  if (setting !== 'auto') return setting;
  return onOneDevice(backend) ? 0 : Math.max(1, availableParallelism());
}

export class RolloutPool implements Rollouts {
  readonly samplesElsewhere = false;
  readonly staleness = null;
  private readonly workers: Worker[] = [];
  private readonly shared: Float32Array;
  private version = 0;
  private nextId = 0;
  private ready: Promise<void>;

  constructor(
    size: number,
    private readonly config: ModelConfig,
    tokenizer: Tokenizer,
    backend: string,
  ) {
    const total = Object.values(parameterShapes(config)).reduce((a, s) => a + s.reduce((x, y) => x * y, 1), 0);
    const sab = new SharedArrayBuffer(total * 4);
    this.shared = new Float32Array(sab);
    const init: WorkerInit = { backend, tokenizer: tokenizer.toJSON(), weights: sab };
    const url = new URL('./worker-entry.js', import.meta.url);
    const started: Promise<void>[] = [];
    for (let i = 0; i < size; i++) {
      const w = new Worker(url, { workerData: init });
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

  get size(): number {
    return this.workers.length;
  }

  /** Publishes the policy's current weights to every worker (one copy into shared memory). */
  sync(model: Transformer): void {
    let offset = 0;
    for (const name of Object.keys(parameterShapes(this.config))) {
      const data = model.weightData(name);
      this.shared.set(data, offset);
      offset += data.length;
    }
    this.version++;
  }

  /** Generates one completion per prompt, the prompts split evenly across the workers (groups of
   * `align` consecutive prompts stay on one worker, so a group's length bucket stays whole).
   * `onPart` sees each worker's completions (and where they start) as soon as they arrive, so the
   * caller can score them while the other workers still generate. */
  async generate(
    prompts: number[][],
    sampling: Omit<SamplingOptions, 'rng'>,
    rng: Rng,
    align = 1,
    onPart?: (offset: number, part: Completion[]) => void,
  ): Promise<Completion[]> {
    await this.ready;
    const n = this.workers.length;
    const groups = Math.ceil(prompts.length / align);
    const per = Math.ceil(groups / n) * align;
    const jobs: Promise<Completion[]>[] = [];
    for (let w = 0; w < n; w++) {
      const part = prompts.slice(w * per, (w + 1) * per);
      const seed = rng.seed();
      if (!part.length) continue;
      const job = this.call(this.workers[w], {
        id: this.nextId++,
        version: this.version,
        config: this.config,
        prompts: part,
        sampling,
        seed,
      });
      jobs.push(onPart ? job.then((cs) => (onPart(w * per, cs), cs)) : job);
    }
    return (await Promise.all(jobs)).flat();
  }

  private call(w: Worker, req: WorkerRequest): Promise<Completion[]> {
    return new Promise((resolve, reject) => {
      const onMessage = (r: WorkerReply) => {
        if (r.id !== req.id) return;
        w.off('message', onMessage);
        w.off('error', reject);
        if (r.error) reject(new Error(`rollout worker failed: ${r.error}`));
        else resolve(r.completions!);
      };
      w.on('message', onMessage);
      w.once('error', reject);
      w.postMessage(req);
    });
  }

  takeMetrics(): Record<string, number> {
    return {};
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
