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
import { processMemory } from '../metrics/memory.ts';
import { Progress, type ProgressField } from '../metrics/progress.ts';
import { writeDirAtomic, writeModelFiles } from '../model/checkpoint.ts';
import { type Transformer, parameterShapes } from '../model/transformer.ts';
import { AdamW, type AdamWState } from './adamw.ts';
import { learningRateAt, type ScheduleType } from './schedule.ts';
import { GradientPool, localLossAndGrads } from './parallel.ts';
import type { ShardedJob } from './sharded.ts';
import { balanceExperts } from './expert-load.ts';
import { accumulate, clipGradients, disposeGrads, type Grads, lossAndGrads } from './step.ts';

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
  /** MoE models: each expert's selection bias moves by -speed x sign(load - mean load) after every
   * update (DeepSeek-V3); absent = 0.001, 0 = off. */
  bias_update_speed?: number;
  /** Activation checkpointing per layer (model/recompute.ts), here and in the gradient workers. */
  gradient_checkpointing?: boolean;
};

/** One micro-batch of an optimiser update, computed on this thread (`local`) or as a shardable loss
 * module that gradient workers split by rows (`sharded`). Its loss is one TERM of the update's
 * loss: each stage divides it by the normaliser of the whole accumulated batch (its tokens or rows),
 * so the update's gradient is the plain sum of its micro-batches' gradients, however many there are
 * and however many rows each holds. `tokens` counts what it trains on (for tokens/s). */
export type MicroBatch = { kind: 'local'; loss: () => tf.Scalar; tokens: number } | { kind: 'sharded'; job: ShardedJob; tokens: number };

/** What `prepare` hands to the step's micro-batches: its data, and metrics to log. */
export type Prepared<P> = { data: P; metrics: Record<string, number> };

export type StepHooks<P = undefined> = {
  /** Work before the optimiser updates of `step` (GRPO generates and scores here). */
  prepare?: (step: number, rng: Rng) => Promise<Prepared<P>> | Prepared<P>;
  /** The micro-batches of update `update` of optimiser step `step` (0-based), from what prepare
   * made; data order must depend only on these. An empty list makes no update. */
  microBatches: (step: number, update: number, prepared: P, rng: Rng) => MicroBatch[];
  /** Optimiser updates per step (GRPO's mu iterations over one batch of rollouts); default 1. */
  updatesPerStep?: number;
  /** Metrics computed after the step's updates. */
  after?: (step: number) => Record<string, number>;
  /** Steps (1-based) whose row is logged whatever logging_steps says: a stage's evaluation steps. */
  logged?: (done: number) => boolean;
  /** Extra state saved in checkpoints and given back on resume. */
  saveState?: () => unknown;
  loadState?: (state: unknown) => void;
  /** Extra files written into each resumable checkpoint (dir is its staging folder) and read back
   * from it on resume (GRPO's reference model, when it is refreshed). */
  saveFiles?: (dir: string) => void;
  loadFiles?: (dir: string) => void;
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
  /** Metrics on the progress line (default: the loss). */
  progressFields?: readonly ProgressField[];
  /** Threads computing gradients of sharded jobs (1 = the main thread alone). */
  threads?: number;
  backend?: string;
  /** Where the loop says how it runs (once per stage); default stderr. */
  log?: (line: string) => void;
};

const logToStderr = (line: string) => void process.stderr.write(line + '\n');

/** What LoRA with gradient workers copies where: said once, since each worker holds the frozen base. */
function loraWorkersNote(model: Transformer, workers: number): string {
  const mb = (values: number) => `${((values * 4) / 2 ** 20).toFixed(1)} MB`;
  const count = (params: Record<string, tf.Variable>) => Object.values(params).reduce((n, v) => n + v.size, 0);
  return (
    `LoRA with ${workers} gradient worker${workers === 1 ? '' : 's'}: each holds the frozen base in float32 (${mb(Object.values(parameterShapes(model.config)).reduce((n, sh) => n + sh.reduce((a, b) => a * b, 1), 0))}, copied in once per run) ` +
    `and receives only the adapters (${mb(count(model.trainableParams()))}) each optimiser step; train_workers: 1 keeps the base in the main thread alone`
  );
}

export type TrainResult = { steps: number; finalLoss: number; resumedFrom: number };

const RESUME_DIR = 'checkpoint-last';

/** Runs (or resumes) the loop; writes `checkpoint-last/` every save_steps and `checkpoint/` at the end. */
export async function trainLoop<P = undefined>(opts: TrainLoopOptions, hooks: StepHooks<P>): Promise<TrainResult> {
  const { model, config: c, totalSteps, stageDir } = opts;
  const opt = new AdamW(model.trainableParams(), {
    beta1: c.adam_beta1,
    beta2: c.adam_beta2,
    eps: c.adam_epsilon,
    weightDecay: c.weight_decay,
  });
  model.gradientCheckpointing = c.gradient_checkpointing ?? false;
  let rng = new Rng(opts.seed);
  let startStep = 0;
  const resumeDir = join(stageDir, RESUME_DIR);
  const saved = readResumeState(resumeDir, opts.hash);
  if (saved) {
    loadWeights(model, opt, resumeDir);
    startStep = saved.step;
    rng = Rng.fromState(saved.rng);
    hooks.loadState?.(saved.extra);
    hooks.loadFiles?.(resumeDir);
  }
  const warmup = c.warmup_steps > 0 ? c.warmup_steps : Math.round(c.warmup_ratio * totalSteps);
  const schedule = { type: c.lr_scheduler_type, peak: c.learning_rate, warmupSteps: warmup, totalSteps };
  const logger = new MetricsLogger(join(stageDir, 'metrics.jsonl'), { resumeStep: startStep });
  const progress = new Progress({
    stage: opts.stage,
    total: totalSteps,
    startStep,
    stream: opts.progressStream,
    everySteps: c.logging_steps,
    fields: opts.progressFields,
  });
  const threads = opts.threads ?? 1;
  const pool =
    threads > 1
      ? new GradientPool(threads - 1, model.config, opts.backend ?? 'wasm', {
          adapters: model.adapters,
          gradientCheckpointing: model.gradientCheckpointing,
        })
      : null;
  if (pool && model.adapters) (opts.log ?? logToStderr)(loraWorkersNote(model, threads - 1));
  let tokensSeen = saved?.tokens ?? 0;
  let lastLoss = saved?.loss ?? NaN;
  try {
    for (let step = startStep; step < totalSteps; step++) {
      const t0 = performance.now();
      const prepared: Prepared<P> = hooks.prepare ? await hooks.prepare(step, rng) : { data: undefined as P, metrics: {} };
      const lr = learningRateAt(step, schedule);
      const updates = hooks.updatesPerStep ?? 1;
      const tUpdate = performance.now();
      let lossSum = 0,
        gradNorm = 0,
        applied = 0;
      const jobMetrics: Record<string, number> = {};
      const balance: Record<string, number> = {};
      for (let u = 0; u < updates; u++) {
        const update = await updateGradients(model, hooks.microBatches(step, u, prepared.data, rng), pool);
        if (!update) continue;
        const { grads } = update;
        for (const [k, v] of Object.entries(update.metrics)) jobMetrics[k] = (jobMetrics[k] ?? 0) + v;
        tokensSeen += update.tokens;
        gradNorm = clipGradients(grads, c.max_grad_norm);
        // A NaN or infinite loss or gradient would poison every weight and the stage would still end
        // "done": stop before the update, so the weights and the last saved checkpoint stay good.
        if (!Number.isFinite(update.loss) || !Number.isFinite(gradNorm)) {
          disposeGrads(grads);
          throw new UserError(
            `stage '${opts.stage}': the ${Number.isFinite(update.loss) ? 'gradient norm' : 'loss'} is ${Number.isFinite(update.loss) ? gradNorm : update.loss} at step ${step + 1}; ` +
              `stopped before updating the weights (the last saved checkpoint is intact${resumeNote(step, c.save_steps)}). Lower learning_rate, or check the data and the stage's settings`,
          );
        }
        opt.apply(grads, lr);
        const moved = balanceExperts(model, update.metrics, c.bias_update_speed ?? 0.001);
        Object.assign(balance, moved);
        // Under LoRA the workers reload the frozen base only when a MoE router's bias moved.
        pool?.invalidate({ base: Object.keys(moved).length > 0 && (c.bias_update_speed ?? 0.001) > 0 });
        disposeGrads(grads);
        lossSum += update.loss;
        applied++;
      }
      lastLoss = applied ? lossSum / applied : lastLoss;
      const updateSeconds = (performance.now() - tUpdate) / 1000;
      const done = step + 1;
      const extra = hooks.after?.(step) ?? {};
      for (const [k, v] of Object.entries(jobMetrics)) extra[k] = v / Math.max(1, applied);
      Object.assign(extra, balance);
      if (applied < updates) extra.skipped_updates = updates - applied;
      if (done % c.logging_steps === 0 || done === totalSteps || hooks.logged?.(done)) {
        const row = logger.log({
          step: done,
          loss: lastLoss,
          learning_rate: lr,
          grad_norm: gradNorm,
          num_tokens: tokensSeen,
          step_time_s: (performance.now() - t0) / 1000,
          'time/update_s': updateSeconds,
          ...memoryMetrics(),
          ...prepared.metrics,
          ...extra,
        });
        progress.update(done, row);
      } else {
        progress.update(done, { loss: lastLoss, ...prepared.metrics, ...extra });
      }
      if (done % c.save_steps === 0 && done < totalSteps) {
        saveResumeState(
          resumeDir,
          model,
          opt,
          { step: done, rng: rng.state(), extra: hooks.saveState?.(), hash: opts.hash, tokens: tokensSeen, loss: lastLoss },
          opts.special,
          hooks.saveFiles,
        );
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

type UpdateGradients = { loss: number; grads: Grads; metrics: Record<string, number>; tokens: number };

/** The summed loss terms, gradients and metric terms of one update's micro-batches; null for none. */
async function updateGradients(model: Transformer, batches: MicroBatch[], pool: GradientPool | null): Promise<UpdateGradients | null> {
  if (!batches.length) return null;
  let grads: Grads | null = null,
    loss = 0,
    tokens = 0;
  const metrics: Record<string, number> = {};
  for (const mb of batches) {
    const r =
      mb.kind === 'sharded'
        ? pool
          ? await pool.lossAndGrads(model, mb.job)
          : await localLossAndGrads(model, mb.job.module, mb.job.data)
        : { ...lossAndGrads(model.trainableParams(), mb.loss), metrics: {} };
    for (const [k, v] of Object.entries(r.metrics)) metrics[k] = (metrics[k] ?? 0) + v;
    grads = accumulate(grads, r.grads);
    loss += r.loss;
    tokens += mb.tokens;
  }
  return { loss, grads: grads!, metrics, tokens };
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

function saveResumeState(
  dir: string,
  model: Transformer,
  opt: AdamW,
  state: ResumeState,
  special: TrainLoopOptions['special'],
  extraFiles?: (dir: string) => void,
): void {
  writeDirAtomic(dir, (staging) => {
    writeModelFiles(staging, model, special);
    extraFiles?.(staging);
    const s = opt.state();
    const tensors: Record<string, NamedArray> = {};
    for (const [name, p] of Object.entries(resumedParams(model))) {
      if (s.m[name]) tensors[`m.${name}`] = { shape: p.shape, data: s.m[name] };
      if (s.v[name]) tensors[`v.${name}`] = { shape: p.shape, data: s.v[name] };
      tensors[`param.${name}`] = { shape: p.shape, data: p.dataSync() as Float32Array };
    }
    writeSafetensors(join(staging, 'optimizer.safetensors'), tensors, { step: String(s.step) });
    writeFileSync(join(staging, 'trainer_state.json'), JSON.stringify(state));
  });
}

/** What a resume point holds bit for bit: the adapters under LoRA (the base is the stage's input),
 * else every weight, the frozen ones that move by other rules (MoE correction biases) included. */
const resumedParams = (model: Transformer) => (model.adapters ? model.adapters.params() : model.params);

/** Restores exact weights and optimizer moments (the internal layout, bit for bit). */
function loadWeights(model: Transformer, opt: AdamW, dir: string): void {
  const { tensors, metadata } = readSafetensors(join(dir, 'optimizer.safetensors'));
  const state: AdamWState = { step: Number(metadata.step), m: {}, v: {} };
  for (const [name, p] of Object.entries(resumedParams(model))) {
    tf.tidy(() => p.assign(tf.tensor(tensors[`param.${name}`].data, p.shape)));
    if (tensors[`m.${name}`]) state.m[name] = tensors[`m.${name}`].data;
    if (tensors[`v.${name}`]) state.v[name] = tensors[`v.${name}`].data;
  }
  opt.load(state);
}

/** The process's resident memory now and its peak so far (GiB), for the logged row; on WebGPU also the
 * most GPU buffer bytes in use at once so far (the tensors' own peak, beside the plan's estimate). */
function memoryMetrics(): Record<string, number> {
  const m = processMemory();
  const out: Record<string, number> = { 'memory/rss_gib': m.rss, 'memory/max_rss_gib': m.maxRss };
  const gpuPeak = (tf.memory() as { numBytesInGPUPeak?: number }).numBytesInGPUPeak;
  if (gpuPeak !== undefined) out['memory/gpu_max_gib'] = gpuPeak / 2 ** 30;
  return out;
}
