// The memory a training stage needs, estimated before it runs, by part and by where it lives, so a
// recipe that cannot fit is refused with the setting that would make it fit instead of dying inside
// WebAssembly (4 GB per heap, one heap per thread) or on a GPU buffer limit.
//
// The estimate is the peak of one optimiser step in float32 (4 bytes a value):
//   weights      every parameter; with lora.frozen_dtype: bfloat16 the frozen block projections are
//                held as bf16 in JS memory (2 bytes a value, `outside`, not in the heap), and only
//                one layer's share of them is in the heap at a time, widened for its products
//   packed       XNNPACK's packed copy of every matrix (WebAssembly without the BLAS path); of the
//                bf16-held ones, only the widened layer's
//   adapters     LoRA's A and B
//   gradients    one per trainable value (summed over micro-batches, so held once)
//   optimizer    AdamW's two moments per trainable value
//   activations  what the backward pass holds per layer of one micro-batch at its peak, measured on
//                this implementation across C, F, L, H, B and T (engine/backprop.ts frees gradients
//                and saved tensors as the backward goes; the composed ops write their gradients
//                out): on WebAssembly's fused kernels about 40 C + 6 F values a token, on the
//                composed ops (cpu, webgpu) 35 C + 8 F + H T (H T: the attention probabilities);
//                with gradient_checkpointing, 2 C a token per layer (its saved input and the
//                gradient through it) plus one layer's intermediates while the backward recomputes
//                it (fused: the same per-layer figure; composed: 16 C + 16 F + H T). Within 20%
//                of the measured peaks, mostly above them
//   logits       B x T x V six times (logits, log-softmax, their gradients and the loss's temporaries);
//                above logitsChunkValues the head runs in row slices (model/head-logprobs.ts) and
//                only one slice's logits (about logitsChunkValues values) are held, six times
//   reference    a second copy of the weights for GRPO / DPO with beta > 0, none under LoRA
//   kv_cache     generation's keys and values (GRPO rollouts in the main thread)
// Gradient workers each hold their own copy of the weights and one micro-batch's activations in
// their own heap. The numbers are estimates: a test holds them against a measured peak.
import { z } from 'zod';
import { onOneDevice } from '../engine/backend.ts';
import type { ModelConfig } from '../model/config.ts';
import { DEFAULT_LOGITS_CHUNK_VALUES } from '../model/head-logprobs.ts';

export const BYTES = 4;
/** WebAssembly's heap: 4 GiB addressable per thread (memory64 is not in Node 20). */
export const WASM_HEAP_BYTES = 4 * 2 ** 30;

/** The sizes of a model the plan reads. */
export type ModelShape = Pick<
  ModelConfig,
  'vocab_size' | 'hidden_size' | 'num_hidden_layers' | 'num_attention_heads' | 'num_key_value_heads' | 'intermediate_size' | 'head_dim'
>;

export const PlanInput = z.object({
  kind: z.enum(['pretrain', 'sft', 'dpo', 'grpo']),
  backend: z.enum(['wasm', 'cpu', 'webgpu', 'tensorflow']),
  /** Parameters of the model, all of them. */
  params: z.number().int().nonnegative(),
  /** Matrix parameters (what XNNPACK packs: every projection and the embedding). */
  matrixParams: z.number().int().nonnegative(),
  /** Trainable parameters: the adapters under LoRA, else params. */
  trainable: z.number().int().nonnegative(),
  lora: z.boolean(),
  /** Sequences in one micro-batch and their length in tokens. */
  microBatch: z.number().int().positive(),
  seqLength: z.number().int().positive(),
  /** DPO doubles rows (chosen and rejected); GRPO's completions come in microBatch rows already. */
  beta: z.number().min(0),
  /** Threads computing gradients (workers = threads - 1 hold their own weights). */
  threads: z.number().int().positive().default(1),
  /** BLAS computes products straight on the heap: no packed copies. */
  blas: z.boolean().default(false),
  /** GRPO: completions generated at once in the main thread, and prompt + completion length. */
  generationBatch: z.number().int().nonnegative().default(0),
  /** Logit values above which the loss runs the head in row slices of at most this many values. */
  logitsChunkValues: z.number().int().positive().default(DEFAULT_LOGITS_CHUNK_VALUES),
  /** gradient_checkpointing: each layer keeps only its input; the backward recomputes one layer at a time. */
  gradientCheckpointing: z.boolean().default(false),
  /** Frozen projection parameters held as bfloat16 outside the heap (lora.frozen_dtype: bfloat16). */
  frozenBf16Params: z.number().int().nonnegative().default(0),
});
export type PlanInput = z.input<typeof PlanInput>;

export type Part = 'weights' | 'packed' | 'adapters' | 'gradients' | 'optimizer' | 'activations' | 'logits' | 'reference' | 'kv_cache';
export type Plan = {
  /** Bytes by part, in the main thread's heap. */
  main: Record<Part, number>;
  mainTotal: number;
  /** Bytes in each gradient worker's heap (0 without workers). */
  worker: number;
  /** Bytes in JS memory outside every heap: the bf16-held frozen weights (2 a value). */
  outside: number;
  /** The whole process (main + workers + outside). */
  total: number;
};

/** Bytes as GiB with two decimals, as the plan's messages give them. */
export const gib = (b: number): string => `${(b / 2 ** 30).toFixed(2)} GiB`;

/** The estimate for one stage on one model. */
export function planMemory(shape: ModelShape, raw: PlanInput): Plan {
  const p = PlanInput.parse(raw);
  const C = shape.hidden_size,
    L = shape.num_hidden_layers,
    H = shape.num_attention_heads,
    F = shape.intermediate_size,
    V = shape.vocab_size;
  const D = shape.head_dim ?? C / H,
    Hkv = shape.num_key_value_heads;
  const rows = p.microBatch * (p.kind === 'dpo' ? 2 : 1),
    T = p.seqLength,
    tokens = rows * T;
  // bf16-held frozen weights: out of the heap, but one layer's share is widened to float32 (and,
  // on XNNPACK, packed) while its products run.
  const bf16 = p.frozenBf16Params,
    widened = Math.ceil(bf16 / L);
  const weightBytes = (p.params - bf16 + widened) * BYTES;
  const packed = p.backend === 'wasm' && !p.blas ? (p.matrixParams - bf16 + widened) * BYTES : 0;
  const fused = p.backend === 'wasm'; // the fused SIMD kernels (engine/kernels/), else composed ops
  const perLayer = tokens * (fused ? 40 * C + 6 * F : 35 * C + 8 * F + H * T);
  // With checkpointing: each layer's input (and the gradient flowing through it), and one layer's
  // intermediates while the backward recomputes it.
  const recomputed = fused ? perLayer : tokens * (16 * C + 16 * F + H * T);
  const activations = (p.gradientCheckpointing ? 2 * L * tokens * C + recomputed : L * perLayer) * BYTES;
  const logitRows = tokens * V <= p.logitsChunkValues ? tokens : Math.min(tokens, Math.max(1, Math.floor(p.logitsChunkValues / V)));
  const logits = 6 * logitRows * V * BYTES;
  const reference = p.beta > 0 && (p.kind === 'grpo' || p.kind === 'dpo') && !p.lora ? weightBytes + packed : 0;
  const outside = bf16 * 2;
  const kv = p.kind === 'grpo' ? 2 * L * Hkv * D * p.generationBatch * T * BYTES : 0;
  const main: Record<Part, number> = {
    weights: weightBytes,
    packed,
    adapters: p.lora ? p.trainable * BYTES : 0,
    gradients: p.trainable * BYTES,
    optimizer: 2 * p.trainable * BYTES,
    activations,
    logits,
    reference,
    kv_cache: kv,
  };
  const mainTotal = Object.values(main).reduce((a, b) => a + b, 0);
  // Gradient workers hold the base in float32 (the bf16 store is the main thread's).
  const workerWeights = p.params * BYTES + (packed ? p.matrixParams * BYTES : 0);
  const worker = p.threads > 1 ? workerWeights + main.adapters + main.gradients + activations + logits : 0;
  return { main, mainTotal, worker, outside, total: mainTotal + (p.threads - 1) * worker + outside };
}

/** What a plan runs into, and the settings that would help, largest part first; [] when it fits. */
export function planProblems(
  plan: Plan,
  p: PlanInput,
  limits: { heapBytes: number | null; machineBytes: number; deviceBytes?: number | null },
): string[] {
  const out: string[] = [];
  const device = limits.deviceBytes ?? null;
  if (device !== null) {
    // On a GPU every tensor of the step lives in the adapter's memory; the host holds no second copy
    // the plan counts, so the adapter's memory is the limit checked.
    if (plan.mainTotal > device) {
      const parts = (Object.entries(plan.main) as [Part, number][]).filter(([, b]) => b > 0).sort((a, b) => b[1] - a[1]);
      out.push(
        `needs about ${gib(plan.mainTotal)} on the GPU, over its ${gib(device)} (${parts.map(([k, b]) => `${k} ${gib(b)}`).join(', ')}); ${fixes(
          parts.map(([k]) => k),
          p,
        ).join('; ')}`,
      );
    }
    return out;
  }
  const heap = limits.heapBytes;
  if (heap !== null && plan.mainTotal > heap) {
    const parts = (Object.entries(plan.main) as [Part, number][]).filter(([, b]) => b > 0).sort((a, b) => b[1] - a[1]);
    out.push(
      `needs about ${gib(plan.mainTotal)} in the main thread's heap, over its ${gib(heap)} (${parts.map(([k, b]) => `${k} ${gib(b)}`).join(', ')}); ${fixes(
        parts.map(([k]) => k),
        p,
      ).join('; ')}`,
    );
  }
  if (heap !== null && plan.worker > heap)
    out.push(`each gradient worker needs about ${gib(plan.worker)}, over its ${gib(heap)} heap: set train_workers: 1`);
  if (plan.total > limits.machineBytes)
    out.push(
      `needs about ${gib(plan.total)} in all, over the machine's ${gib(limits.machineBytes)}: ${fixes(['weights', 'activations'], p).join('; ')}`,
    );
  return out;
}

/** The recipe field that sets a stage's sequence length. */
const LENGTH_FIELD: Record<PlanInput['kind'], string> = {
  pretrain: 'seq_length',
  sft: 'max_length',
  dpo: 'max_length',
  grpo: 'max_completion_length or max_prompt_length',
};

/** Settings that shrink the given parts, as a user would write them in the recipe (only fields the
 * stage has: pretraining has no lora block). */
function fixes(parts: Part[], p: PlanInput): string[] {
  const out: string[] = [];
  for (const part of parts) {
    if ((part === 'optimizer' || part === 'gradients' || part === 'reference') && !p.lora && p.kind !== 'pretrain')
      out.push('train LoRA adapters (lora: { r: 16 }) instead of every weight');
    if (part === 'packed' && !p.blas)
      out.push('install OpenBLAS (apt-get install libopenblas0-pthread; and leave R1_MATMUL unset) so products run without packed copies');
    if (part === 'activations' && !p.gradientCheckpointing)
      out.push('set gradient_checkpointing: true (each layer keeps only its input; about one extra forward pass)');
    if ((part === 'activations' || part === 'logits') && p.microBatch > 1)
      out.push('raise gradient_accumulation_steps so each micro-batch holds fewer rows');
    if ((part === 'activations' || part === 'logits' || part === 'kv_cache') && p.microBatch === 1)
      out.push(`shorten the sequences (${LENGTH_FIELD[p.kind]})`);
    if (part === 'kv_cache' && (p.generationBatch ?? 0) > 0)
      out.push(
        onOneDevice(p.backend)
          ? `shorten the completions (max_completion_length) or sample fewer at once (per_device_train_batch_size)`
          : 'generate in rollout workers (rollout_workers: auto or above 0) rather than the main thread',
      );
    if ((part === 'weights' || part === 'packed') && p.lora && !p.frozenBf16Params)
      out.push('hold the frozen base as bf16 outside the heap (lora: { frozen_dtype: bfloat16 })');
    if (part === 'weights')
      out.push(
        onOneDevice(p.backend) ? 'a smaller model' : 'use the cpu backend (backend: cpu: not heap-bound, but slow) or a smaller model',
      );
  }
  return [...new Set(out)];
}
