// Where a GRPO step's completions come from. Every source is a Rollouts: the main thread (here), tfjs
// worker threads (pool.ts), llama.cpp (llama-cpp.ts), or the cluster's workers (cluster/pool.ts).
// The stage never tests which source it holds: it asks the source what it does (samplesElsewhere,
// staleness). engines.ts opens the local ones.
import type { Rng } from '../engine/rng.ts';
import { type Completion, type Decoder, type SamplingOptions, generate } from '../model/generate.ts';
import type { Transformer } from '../model/transformer.ts';

/** Sampling settings of a rollout (the RNG is passed apart). */
export type Sampling = Omit<SamplingOptions, 'rng'>;

/** What GRPO needs of a rollout source. */
export interface Rollouts {
  /** Makes the policy's current weights the ones later generate() calls sample from. */
  sync(model: Transformer): void;
  /** One completion per prompt; groups of `align` consecutive prompts stay together; `onPart` sees
   * each part of the completions (and where it starts) as soon as it is ready, to score it early. */
  generate(
    prompts: number[][],
    sampling: Sampling,
    rng: Rng,
    align?: number,
    onPart?: (offset: number, part: Completion[]) => void,
  ): Promise<Completion[]>;
  close(): Promise<void>;
  /** True when another engine than the trainer's forward pass samples (llama.cpp): the trainer then
   * recomputes pi_old and weighs each token by the truncated IS weight of the mismatch. */
  readonly samplesElsewhere: boolean;
  /** Set when rollouts may be generated while earlier steps train (the cluster): by at most `max` steps. */
  readonly staleness: { max: number } | null;
  /** The source's own metrics since the last call (the cluster's jobs and workers); resets them. */
  takeMetrics(): Record<string, number>;
}

/** Rollouts sampled by the policy itself on the calling thread (rollout_workers 0). */
export class MainThreadRollouts implements Rollouts {
  readonly samplesElsewhere = false;
  readonly staleness = null;
  private policy: Transformer | null = null;

  constructor(private readonly decoder: Decoder) {}

  sync(model: Transformer): void {
    this.policy = model;
  }

  async generate(
    prompts: number[][],
    sampling: Sampling,
    rng: Rng,
    _align = 1,
    onPart?: (offset: number, part: Completion[]) => void,
  ): Promise<Completion[]> {
    if (!this.policy) throw new Error('main-thread rollouts: generate() before sync(): sync the policy first');
    const completions = generate(this.policy, this.decoder, prompts, { ...sampling, rng });
    onPart?.(0, completions);
    return completions;
  }

  takeMetrics(): Record<string, number> {
    return {};
  }

  async close(): Promise<void> {}
}
