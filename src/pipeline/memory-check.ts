// The memory plan (train/memory-plan.ts) applied to a recipe before any stage runs: each training
// stage's model config (the recipe's for a fresh model, else config.json where its weights were
// born, read without loading a weight), its sizes and LoRA block, the backend the recipe chooses and
// whether BLAS runs the products. `r1 recipe` prints the estimates; `r1 recipe` and `r1 run` refuse
// (exit 2) a stage that will not fit, naming the part and the settings that would make it fit, so a
// crash inside WebAssembly is not how a user learns it.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { UserError } from '../errors.ts';
import { PROVIDERS, loadError } from '../engine/backend.ts';
import { resolveMatmul } from '../engine/kernels/blas.ts';
import { configDir, projectionParams, readModelConfig } from '../model/checkpoint.ts';
import { type ModelConfig, parameterCount } from '../model/config.ts';
import { bf16HoldableParams } from '../model/bf16-frozen.ts';
import { resolveLoraConfig, selectTargets } from '../model/lora.ts';
import { parameterShapes } from '../model/transformer.ts';
import { type Recipe, type Stage, type TrainingStage, bornSource } from '../recipe/index.ts';
import { type Part, type Plan, type PlanInput, WASM_HEAP_BYTES, gib, planMemory, planProblems } from '../train/memory-plan.ts';
import { defaultWorkers } from '../rollout/pool.ts';
import { trainThreads } from '../stages/batches.ts';

/** What a stage must fit in: the WebAssembly heap per thread (null: not heap-bound), the machine's
 * memory, and on a GPU backend the adapter's memory when it is given (`r1 recipe --gpu-memory GB`;
 * WebGPU does not tell an adapter's memory size, so without it only the machine is checked). */
export type Limits = { heapBytes: number | null; machineBytes: number; deviceBytes?: number | null };
export type StagePlan = {
  index: number;
  stage: string;
  /** null when the stage's model config cannot be known before the run (say why in `unknown`). */
  plan: Plan | null;
  input?: PlanInput;
  unknown?: string;
  problems: string[];
  /** Set when `train_workers: auto` was planned down to the main thread alone, saying why. */
  autoOneWorker?: string;
};
export type RecipePlan = { backend: string; blas: boolean; limits: Limits; stages: StagePlan[] };

const TRAINING: readonly Stage['type'][] = ['pretrain', 'sft', 'dpo', 'grpo'];
const GPU_BACKENDS: readonly string[] = ['webgpu', 'tensorflow'];

/** The backend `auto` would pick, from the packages that load (WebGPU only when asked by name: its
 * hardware adapter cannot be known without opening it). */
export function plannedBackend(name: string): 'wasm' | 'cpu' | 'webgpu' | 'tensorflow' {
  if (name !== 'auto') return name as 'wasm' | 'cpu' | 'webgpu' | 'tensorflow';
  const p = PROVIDERS.find((x) => x.name !== 'webgpu' && loadError(x.pkg) === null);
  return (p?.name ?? 'cpu') as 'wasm' | 'cpu' | 'tensorflow';
}

/** The config of the model stage i trains: following stage references to where the weights were
 * born (a fresh init with its init_config, or a checkpoint's config.json; an adapter folder's base). */
export function stageModelConfig(recipe: Recipe, i: number): { config: ModelConfig } | { unknown: string } {
  const born = bornSource(recipe, i);
  if (!born) return { unknown: `stage ${i}'s model names a stage that is not in the recipe` };
  if (born.source.kind === 'init') {
    const stage = recipe.stages[born.index];
    const vocab = stage.init_config?.vocab_size || recipe.model.vocab_size || tokenizerVocab(recipe);
    if (!vocab) return { unknown: 'the vocabulary size comes from a tokenizer not made yet' };
    return { config: { ...recipe.model, ...(stage.init_config ?? {}), vocab_size: vocab } as ModelConfig };
  }
  // A config.json the model room refuses is the stage's own error when it runs (naming the file and
  // field); the plan only says it could not estimate.
  try {
    const dir = configDir(born.source.path);
    if (!existsSync(join(dir, 'config.json'))) return { unknown: `no config.json in ${dir}` };
    return { config: readModelConfig(dir).config };
  } catch (e) {
    if (e instanceof UserError) return { unknown: e.message };
    throw e;
  }
}

/** The vocabulary of the recipe's tokenizer: its training target, or the largest id of tokenizer.json. */
function tokenizerVocab(recipe: Recipe): number {
  if (recipe.tokenizer.train) return recipe.tokenizer.train.vocab_size;
  if (recipe.tokenizer.path === null) return 0;
  let file = resolve(recipe.recipeDir, recipe.tokenizer.path);
  if (existsSync(file) && statSync(file).isDirectory()) file = join(file, 'tokenizer.json');
  try {
    const json = JSON.parse(readFileSync(file, 'utf8')) as { model?: { vocab?: Record<string, number> }; added_tokens?: { id: number }[] };
    const ids = [...Object.values(json.model?.vocab ?? {}), ...(json.added_tokens ?? []).map((t) => t.id)];
    return ids.length ? Math.max(...ids) + 1 : 0;
  } catch {
    return 0;
  }
}

/** Values a LoRA block trains on this model: A (in x r per targeted module) and B (r x out). */
export function loraTrainable(c: ModelConfig, raw: Parameters<typeof resolveLoraConfig>[1], where: string): number {
  const cfg = resolveLoraConfig(c, raw, where);
  return selectTargets(projectionParams(c), cfg.target_modules).reduce(
    (n, slot) => n + slot.targets.reduce((m, t) => m + cfg.r * (t.in + t.out), 0),
    0,
  );
}

/** Parameters lora.frozen_dtype: bfloat16 holds as bf16 (model/bf16-frozen.ts). */
function bf16HeldParams(c: ModelConfig): number {
  const shapes = parameterShapes(c);
  return bf16HoldableParams(projectionParams(c)).reduce((n, name) => n + shapes[name].reduce((a, b) => a * b, 1), 0);
}

/** Matrix parameters (rank 2 and above: what XNNPACK packs). */
function matrixParams(c: ModelConfig): number {
  return Object.values(parameterShapes(c))
    .filter((s) => s.length >= 2)
    .reduce((n, s) => n + s.reduce((a, b) => a * b, 1), 0);
}

/** The plan's input for one training stage on its model. */
export function stagePlanInput(s: TrainingStage, c: ModelConfig, backend: PlanInput['backend'], blas: boolean, where: string): PlanInput {
  const params = parameterCount(c);
  const lora = 'lora' in s && s.lora !== undefined;
  const trainable = lora ? loraTrainable(c, s.lora!, `${where}.lora`) : params;
  const threads = trainThreads(s.train_workers, backend);
  const frozenBf16Params = lora && s.lora!.frozen_dtype === 'bfloat16' ? bf16HeldParams(c) : 0;
  const base = {
    backend,
    params,
    matrixParams: matrixParams(c),
    trainable,
    lora,
    threads,
    blas,
    gradientCheckpointing: s.gradient_checkpointing,
    frozenBf16Params,
  };
  const context = c.max_position_embeddings;
  switch (s.type) {
    case 'pretrain':
      return { ...base, kind: 'pretrain', microBatch: s.per_device_train_batch_size, seqLength: s.seq_length, beta: 0 };
    case 'sft':
      return { ...base, kind: 'sft', microBatch: s.per_device_train_batch_size, seqLength: s.max_length ?? context, beta: 0 };
    case 'dpo':
      return { ...base, kind: 'dpo', microBatch: s.per_device_train_batch_size, seqLength: s.max_length ?? context, beta: s.beta };
    case 'grpo':
      return {
        ...base,
        kind: 'grpo',
        microBatch: Math.ceil(s.per_device_train_batch_size / s.gradient_accumulation_steps),
        seqLength: s.max_prompt_length + s.max_completion_length,
        beta: s.beta,
        generationBatch:
          s.rollout.engine === 'tfjs' && defaultWorkers(s.rollout_workers, backend) === 0 ? s.per_device_train_batch_size : 0,
      };
  }
}

/** Every training stage's estimate for the recipe's backend, and what will not fit. */
export function planRecipe(recipe: Recipe, limits?: Partial<Limits>): RecipePlan {
  const backend = plannedBackend(recipe.backend);
  const blas = backend === 'wasm' && resolveMatmul() === 'blas';
  const full: Limits = { heapBytes: backend === 'wasm' ? WASM_HEAP_BYTES : null, machineBytes: totalmem(), deviceBytes: null, ...limits };
  if (full.deviceBytes != null && !GPU_BACKENDS.includes(backend))
    throw new UserError(`--gpu-memory is for a GPU backend (webgpu, tensorflow); the recipe's backend is ${recipe.backend} (${backend})`);
  const stages: StagePlan[] = [];
  recipe.stages.forEach((s, index) => {
    if (!TRAINING.includes(s.type)) return;
    const where = `stages.${index}`;
    const found = stageModelConfig(recipe, index);
    if ('unknown' in found) {
      stages.push({ index, stage: s.name, plan: null, unknown: found.unknown, problems: [] });
      return;
    }
    const input = stagePlanInput(s as TrainingStage, found.config, backend, blas, where);
    const plan = planMemory(found.config, input);
    const problems = planProblems(plan, input, full);
    // `auto` gradient threads: one per core, unless every worker's own copy of the weights is what
    // does not fit (a large model); then the main thread alone, which the run is told to use.
    if ((s as TrainingStage).train_workers === 'auto' && (input.threads ?? 1) > 1 && problems.length) {
      const alone = { ...input, threads: 1 };
      const alonePlan = planMemory(found.config, alone);
      const aloneProblems = planProblems(alonePlan, alone, full);
      if (aloneProblems.length < problems.length) {
        const why = `train_workers auto -> 1: each of ${(input.threads ?? 1) - 1} gradient workers would hold its own ${gib(plan.worker)}; the main thread alone needs ${gib(alonePlan.mainTotal)}`;
        stages.push({ index, stage: s.name, plan: alonePlan, input: alone, problems: aloneProblems, autoOneWorker: why });
        return;
      }
    }
    stages.push({ index, stage: s.name, plan, input, problems });
  });
  return { backend, blas, limits: full, stages };
}

/** The plan as `r1 recipe` prints it: one line per training stage, its parts largest first. */
export function formatPlan(p: RecipePlan): string[] {
  const engine = p.backend === 'wasm' ? `, products on ${p.blas ? 'BLAS' : 'XNNPACK'}` : '';
  const heap = p.limits.heapBytes === null ? '' : `, ${gib(p.limits.heapBytes)} heap per thread`;
  const where = p.limits.deviceBytes != null ? `GPU ${gib(p.limits.deviceBytes)}` : `machine ${gib(p.limits.machineBytes)}`;
  const lines = [`memory plan (backend ${p.backend}${engine}${heap}, ${where}):`];
  for (const s of p.stages) {
    if (!s.plan) {
      lines.push(`  ${s.index}. ${s.stage}: not estimated (${s.unknown})`);
      continue;
    }
    const parts = (Object.entries(s.plan.main) as [Part, number][]).filter(([, b]) => b > 0).sort((a, b) => b[1] - a[1]);
    const workers = (s.input?.threads ?? 1) - 1;
    lines.push(
      `  ${s.index}. ${s.stage}: ${p.limits.deviceBytes != null ? 'on the GPU' : 'main thread'} ${gib(s.plan.mainTotal)} (${parts.map(([k, b]) => `${k} ${gib(b)}`).join(', ')})` +
        (workers > 0 ? `; ${workers} gradient worker${workers === 1 ? '' : 's'} ${gib(s.plan.worker)} each` : '') +
        (s.plan.outside > 0 ? `; bf16 frozen weights ${gib(s.plan.outside)} outside the heap` : '') +
        `; in all ${gib(s.plan.total)}` +
        (s.problems.length ? ' - DOES NOT FIT' : '') +
        (s.autoOneWorker ? ` (${s.autoOneWorker})` : ''),
    );
  }
  return lines;
}

/** Sets `train_workers: 1` on each stage whose `auto` the plan chose the main thread alone for (the
 * field is not hashed: a finished stage stays finished), and returns the lines that say so. */
export function applyPlan(recipe: Recipe, p: RecipePlan): string[] {
  return p.stages
    .filter((s) => s.autoOneWorker)
    .map((s) => {
      (recipe.stages[s.index] as TrainingStage).train_workers = 1;
      return `stages.${s.index} (${s.stage}): ${s.autoOneWorker}`;
    });
}

/** Throws a UserError (exit 2) naming every stage that will not fit, with its fixes. */
export function assertPlanFits(p: RecipePlan): void {
  const bad = p.stages.filter((s) => s.problems.length > 0);
  if (!bad.length) return;
  throw new UserError(
    bad.map((s) => `stages.${s.index} (${s.stage}) will not fit on backend ${p.backend}: ${s.problems.join('; and ')}`).join('\n'),
  );
}
