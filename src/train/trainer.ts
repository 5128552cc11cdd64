// The loop every training stage shares: schedule, gradient accumulation, clipping, AdamW, metrics,
// progress, and checkpoints that make a killed run resumable. A stage brings only its batches and
// its loss; the loop owns everything that must survive a crash.
import * as tf from '@tensorflow/tfjs-core';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Rng } from '../engine/rng.ts';
import { UserError } from '../errors.ts';
import { readSafetensors, writeSafetensors, type NamedArray } from '../engine/safetensors.ts';
import { MetricsLogger } from '../metrics/logger.ts';
import { Progress } from '../metrics/progress.ts';
import { writeDirAtomic, writeModelFiles } from '../model/checkpoint.ts';
import type { Transformer } from '../model/transformer.ts';
import { AdamW, type AdamWState } from './adamw.ts';
import { learningRateAt, type ScheduleType } from './schedule.ts';
import { GradientPool, localLossAndGrads } from './parallel.ts';
import type { ShardedJob } from './sharded.ts';
import { accumulate, clipGradients, disposeGrads, lossAndGrads } from './step.ts';

/** The optimiser fields of a training stage (TRL names). */
export type TrainingConfig = {
  learning_rate: number;
  lr_scheduler_type: ScheduleType;
  warmup_steps: number;
  warmup_ratio: number;
  gradient_accumulation_steps: number;
  max_grad_norm: number;
  weight_decay: number;
  adam_beta1: number;
  adam_beta2: number;
  adam_epsilon: number;
  logging_steps: number;
  save_steps: number;
};

export type MicroBatch = {
  /** The loss of this micro-batch, computed on this thread; its gradient is averaged over the
   * accumulation steps. */
  loss?: () => tf.Scalar;
  /** Or the batch for a shardable loss module, which gradient workers can split by rows. */
  job?: ShardedJob;
  /** Tokens the micro-batch trains on (for tokens/s). */
  tokens: number;
};

export type StepHooks = {
  /** Work before the optimiser steps of `step` (GRPO generates and scores here); its metrics are logged. */
  prepare?: (step: number, rng: Rng) => Promise<Record<string, number>> | Record<string, number>;
  /** Micro-batch `micro` of optimiser step `step` (0-based); data order must depend only on these. */
  microBatch: (step: number, micro: number, rng: Rng) => MicroBatch;
  /** Optimiser updates per step (GRPO's mu iterations x its micro-batches); default 1. */
  updatesPerStep?: number;
  /** Metrics computed after the step's updates. */
  after?: (step: number) => Record<string, number>;
  /** Extra state saved in checkpoints and given back on resume. */
  saveState?: () => unknown;
  loadState?: (state: unknown) => void;
};

export type TrainLoopOptions = {
  stage: string;
  stageDir: string;
  model: Transformer;
  config: TrainingConfig;
  totalSteps: number;
  seed: number;
  /** Identity of the stage config; a checkpoint of another config is not resumed. */
  hash: string;
  /** Tokenizer ids written into config.json. */
  special?: { bos?: number; eos?: number; pad?: number };
  /** Called with the stage folder of each finished checkpoint (the tokenizer is copied in by the caller). */
  onCheckpoint?: (dir: string) => void;
  progressStream?: NodeJS.WritableStream & { isTTY?: boolean };
  /** Threads computing gradients of sharded jobs (1 = the main thread alone). */
  threads?: number;
  backend?: string;
};

export type TrainResult = { steps: number; finalLoss: number; resumedFrom: number };

const RESUME_DIR = 'checkpoint-last';

/** Runs (or resumes) the loop; writes `checkpoint-last/` every save_steps and `checkpoint/` at the end. */
export async function trainLoop(opts: TrainLoopOptions, hooks: StepHooks): Promise<TrainResult> {
  const { model, config: c, totalSteps, stageDir } = opts;
  const opt = new AdamW(model.params, { beta1: c.adam_beta1, beta2: c.adam_beta2, eps: c.adam_epsilon, weightDecay: c.weight_decay });
  let rng = new Rng(opts.seed);
  let startStep = 0;
  const resumeDir = join(stageDir, RESUME_DIR);
  const saved = readResumeState(resumeDir, opts.hash);
  if (saved) {
    loadWeights(model, opt, resumeDir);
    startStep = saved.step;
    rng = Rng.fromState(saved.rng);
    hooks.loadState?.(saved.extra);
  }
  const warmup = c.warmup_steps > 0 ? c.warmup_steps : Math.round(c.warmup_ratio * totalSteps);
  const schedule = { type: c.lr_scheduler_type, peak: c.learning_rate, warmupSteps: warmup, totalSteps };
  const logger = new MetricsLogger(join(stageDir, 'metrics.jsonl'), { resumeStep: startStep });
  const progress = new Progress({ stage: opts.stage, total: totalSteps, startStep, stream: opts.progressStream, everySteps: c.logging_steps });
  const threads = opts.threads ?? 1;
  const pool = threads > 1 ? new GradientPool(threads - 1, model.config, opts.backend ?? 'wasm') : null;
  let tokensSeen = saved?.tokens ?? 0;
  let lastLoss = saved?.loss ?? NaN;
  try {
    for (let step = startStep; step < totalSteps; step++) {
      const t0 = performance.now();
      const prepared = hooks.prepare ? await hooks.prepare(step, rng) : {};
      const lr = learningRateAt(step, schedule);
      const updates = hooks.updatesPerStep ?? 1;
      let lossSum = 0, gradNorm = 0, jobCount = 0;
      const jobMetrics: Record<string, number> = {};
      for (let u = 0; u < updates; u++) {
        let grads = null;
        for (let micro = 0; micro < c.gradient_accumulation_steps; micro++) {
          const mb = hooks.microBatch(step, u * c.gradient_accumulation_steps + micro, rng);
          const r = mb.job
            ? pool ? await pool.lossAndGrads(model, mb.job) : await localLossAndGrads(model, mb.job.module, mb.job.data)
            : { ...lossAndGrads(model.params, mb.loss!), metrics: {} };
          for (const [k, v] of Object.entries(r.metrics)) jobMetrics[k] = (jobMetrics[k] ?? 0) + v;
          jobCount++;
          grads = accumulate(grads, r.grads);
          lossSum += r.loss;
          tokensSeen += mb.tokens;
        }
        gradNorm = clipGradients(grads!, c.max_grad_norm, 1 / c.gradient_accumulation_steps);
        // A NaN or infinite loss or gradient would poison every weight and the stage would still end
        // "done": stop before the update, so the weights and the last saved checkpoint stay good.
        if (!Number.isFinite(lossSum) || !Number.isFinite(gradNorm)) {
          disposeGrads(grads);
          throw new UserError(
            `stage '${opts.stage}': the ${Number.isFinite(lossSum) ? 'gradient norm' : 'loss'} is ${Number.isFinite(lossSum) ? gradNorm : lossSum} at step ${step + 1}; ` +
              `stopped before updating the weights (the last saved checkpoint is intact${resumeNote(step, c.save_steps)}). Lower learning_rate, or check the data and the stage's settings`,
          );
        }
        opt.apply(grads!, lr);
        pool?.invalidate();
        disposeGrads(grads);
      }
      lastLoss = lossSum / (updates * c.gradient_accumulation_steps);
      const done = step + 1;
      const extra = hooks.after?.(step) ?? {};
      for (const [k, v] of Object.entries(jobMetrics)) extra[k] = v / jobCount;
      if (done % c.logging_steps === 0 || done === totalSteps) {
        const row = logger.log({ step: done, loss: lastLoss, learning_rate: lr, grad_norm: gradNorm, num_tokens: tokensSeen, step_time_s: (performance.now() - t0) / 1000, ...prepared, ...extra });
        progress.update(done, { loss: lastLoss, tokens_per_s: row.tokens_per_s as number | null });
      } else {
        progress.update(done, { loss: lastLoss });
      }
      if (done % c.save_steps === 0 && done < totalSteps) {
        saveResumeState(resumeDir, model, opt, { step: done, rng: rng.state(), extra: hooks.saveState?.(), hash: opts.hash, tokens: tokensSeen, loss: lastLoss }, opts.special);
      }
    }
  } finally {
    progress.stop();
    logger.close();
    await pool?.close();
  }
  const finalDir = join(stageDir, 'checkpoint');
  writeDirAtomic(finalDir, (dir) => {
    writeModelFiles(dir, model, opts.special);
    opts.onCheckpoint?.(dir);
  });
  opt.dispose();
  return { steps: totalSteps, finalLoss: lastLoss, resumedFrom: startStep };
}

/** Where a rerun would resume from, said in the stop message. */
const resumeNote = (step: number, saveSteps: number) => {
  const last = Math.floor(step / saveSteps) * saveSteps;
  return last > 0 ? `: a rerun resumes from step ${last}` : '';
};

type ResumeState = { step: number; rng: number[]; extra: unknown; hash: string; tokens: number; loss: number };

function readResumeState(dir: string, hash: string): ResumeState | null {
  const file = join(dir, 'trainer_state.json');
  if (!existsSync(file)) return null;
  const state = JSON.parse(readFileSync(file, 'utf8')) as ResumeState;
  return state.hash === hash ? state : null;
}

function saveResumeState(dir: string, model: Transformer, opt: AdamW, state: ResumeState, special: TrainLoopOptions['special']): void {
  writeDirAtomic(dir, (staging) => {
    writeModelFiles(staging, model, special);
    const s = opt.state();
    const tensors: Record<string, NamedArray> = {};
    for (const [name, p] of Object.entries(model.params)) {
      tensors[`m.${name}`] = { shape: p.shape, data: s.m[name] };
      tensors[`v.${name}`] = { shape: p.shape, data: s.v[name] };
      tensors[`param.${name}`] = { shape: p.shape, data: p.dataSync() as Float32Array };
    }
    writeSafetensors(join(staging, 'optimizer.safetensors'), tensors, { step: String(s.step) });
    writeFileSync(join(staging, 'trainer_state.json'), JSON.stringify(state));
  });
}

/** Restores exact weights and optimizer moments (the internal layout, bit for bit). */
function loadWeights(model: Transformer, opt: AdamW, dir: string): void {
  const { tensors, metadata } = readSafetensors(join(dir, 'optimizer.safetensors'));
  const state: AdamWState = { step: Number(metadata.step), m: {}, v: {} };
  for (const [name, p] of Object.entries(model.params)) {
    tf.tidy(() => p.assign(tf.tensor(tensors[`param.${name}`].data, p.shape)));
    state.m[name] = tensors[`m.${name}`].data;
    state.v[name] = tensors[`v.${name}`].data;
  }
  opt.load(state);
}
