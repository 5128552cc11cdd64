// The llama.cpp rollout engine (node-llama-cpp, CPU / Vulkan / CUDA): at each weight sync the policy
// is exported to GGUF (gguf.ts) and loaded. Under LoRA the frozen base is written once (float16
// matrices by default) and each sync writes only the adapters as a llama.cpp adapter file
// (gguf-lora.ts), set on every context; the previous adapter is freed. Each prompt is one sequence of a shared context, so all
// of a step's completions decode in parallel batches. Token ids go in directly and r1kit's tokenizer
// decodes the text. llama.cpp returns the full next-token distribution (temperature 1, no top-k/p)
// and the token is drawn here by the same sampleToken as the tfjs engine, so the two engines share
// the sampling rules (temperature, top-k then top-p, stop tokens and strings) and each token's
// log-prob is log_softmax(logits / T) as the trainer computes it. llama.cpp's numbers differ slightly
// from the trainer's (its KV cache is F16): GRPO recomputes the log-probs and corrects the mismatch
// by truncated importance sampling (rl/rollout-correction.ts).
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { UserError } from '../errors.ts';
import { Rng } from '../engine/rng.ts';
import type { ModelConfig } from '../model/config.ts';
import { type Completion, type Decoder, type SamplingOptions, cutAtStop, sampleToken } from '../model/generate.ts';
import type { Transformer } from '../model/transformer.ts';
import { type GgufDtype, ggufUnsupported, writeGguf } from './gguf.ts';
import { ggufLoraProblem, writeGgufLora } from './gguf-lora.ts';
import type { Rollouts } from './rollouts.ts';

export const LLAMA_CPP_PACKAGE = 'node-llama-cpp';
export const LLAMA_CPP_VERSION = '3.21.1';
export const LLAMA_CPP_DEVICES = ['auto', 'cpu', 'vulkan', 'cuda'] as const;
export type LlamaCppDevice = (typeof LLAMA_CPP_DEVICES)[number];

export type LlamaCppSettings = {
  device: LlamaCppDevice;
  /** CPU threads per evaluation (default: half the cores, at least 1; 1 on 2 cores). */
  threads?: number;
  /** Most sequences decoded together (default 64). */
  maxSequences?: number;
  /** Under LoRA: how the base's matrices are stored (default f16: half the bytes to write and read, and
   * llama.cpp's usual precision; the trainer's own log-probs and the rollout correction absorb the
   * difference). The merged full model of a non-LoRA sync is always float32. */
  baseDtype?: GgufDtype;
  /** Under LoRA: write the merged model at every sync instead of base + adapter (the old way; kept to
   * measure the difference, `r1 bench sync`). */
  mergeAdapters?: boolean;
};

type Sampling = Omit<SamplingOptions, 'rng'>;
// The parts of node-llama-cpp used here (its types stay out of r1kit's public ones).
type NodeLlamaCpp = typeof import('node-llama-cpp');
type Token = import('node-llama-cpp').Token;
type Llama = Awaited<ReturnType<NodeLlamaCpp['getLlama']>>;
type LlamaModel = Awaited<ReturnType<Llama['loadModel']>>;
type LlamaSequence = ReturnType<Awaited<ReturnType<LlamaModel['createContext']>>['getSequence']>;
type InputItem = Parameters<LlamaSequence['controlledEvaluate']>[0][number];

/** Whether node-llama-cpp can be resolved from here. */
export function llamaCppInstalled(): boolean {
  try {
    createRequire(import.meta.url).resolve(LLAMA_CPP_PACKAGE);
    return true;
  } catch {
    return false;
  }
}

const INSTALL = `npm install --save-exact ${LLAMA_CPP_PACKAGE}@${LLAMA_CPP_VERSION}`;

/** A shared library the device's build needs, found in the usual places (a quick check, no loading). */
function haveLibrary(name: string): boolean {
  const dirs = [
    '/usr/lib/x86_64-linux-gnu',
    '/usr/lib/aarch64-linux-gnu',
    '/usr/lib64',
    '/usr/lib',
    '/usr/local/lib',
    '/usr/local/cuda/lib64',
    '/usr/lib/wsl/lib',
    ...(process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean),
  ];
  return dirs.some((d) => existsSync(join(d, name)));
}

/** What is missing for the llama.cpp engine on `device`, as messages that say how to get it (empty:
 * nothing known to be missing). Synchronous and cheap: the recipe check runs it before any stage. */
export function llamaCppProblems(device: LlamaCppDevice): string[] {
  if (!llamaCppInstalled())
    return [
      `the llama.cpp rollout engine needs the ${LLAMA_CPP_PACKAGE} package, which is not installed: run \`${INSTALL}\` (prebuilt CPU, Vulkan and CUDA builds, no compiler needed), or set rollout.engine: tfjs`,
    ];
  if (device === 'cuda' && process.platform !== 'darwin' && !haveLibrary('libcuda.so.1') && !haveLibrary('libcuda.so')) {
    return [
      'rollout.device cuda: no CUDA driver on this machine (libcuda.so.1 not found): install the NVIDIA driver (CUDA 12), or set rollout.device: auto (uses CUDA, Vulkan or the CPU, whichever is present) or cpu',
    ];
  }
  if (device === 'vulkan' && process.platform === 'linux' && !haveLibrary('libvulkan.so.1')) {
    return [
      "rollout.device vulkan: no Vulkan loader on this machine (libvulkan.so.1 not found): install your GPU driver's Vulkan ICD (e.g. apt-get install libvulkan1 mesa-vulkan-drivers; on a machine without a GPU Mesa's lavapipe runs with GGML_VK_VISIBLE_DEVICES=0), or set rollout.device: auto or cpu",
    ];
  }
  return [];
}

/** What stops the engine from running this model (with these LoRA targets, when the stage trains
 * adapters), or null. */
export function llamaCppModelProblem(c: ModelConfig, loraTargets?: readonly string[] | null): string | null {
  return ggufUnsupported(c) ?? (loraTargets ? ggufLoraProblem(c, loraTargets) : null);
}

/** node-llama-cpp 3.21.1 keeps every adapter a context loaded, by absolute path, until the model is
 * disposed (LlamaModel._loraAdapters, internal): one per sync would grow without end. This frees one
 * (llama_adapter_lora_free, through the binding's dispose) once no context uses it. */
type LoadedAdapter = { dispose(): Promise<void> };
function loadedAdapters(model: LlamaModel): Map<string, LoadedAdapter> {
  const map = (model as unknown as { _loraAdapters?: Map<string, LoadedAdapter> })._loraAdapters;
  if (!(map instanceof Map))
    throw new Error(
      `node-llama-cpp ${LLAMA_CPP_VERSION}'s LlamaModel._loraAdapters is gone: adapters could not be freed (update llama-cpp.ts)`,
    );
  return map;
}

let llamas = new Map<LlamaCppDevice, Promise<Llama>>();

/** The node-llama-cpp instance for a device (one per process and device: its bindings load once). */
export function openLlama(device: LlamaCppDevice): Promise<Llama> {
  const problems = llamaCppProblems(device);
  if (problems.length) return Promise.reject(new UserError(problems[0]));
  let l = llamas.get(device);
  if (!l) {
    l = (async () => {
      const lib: NodeLlamaCpp = await import(LLAMA_CPP_PACKAGE);
      const gpu = device === 'cpu' ? false : device;
      try {
        return await lib.getLlama({
          gpu,
          build: 'never',
          skipDownload: true,
          progressLogs: false,
          logLevel: lib.LlamaLogLevel.error,
          vramPadding: 0,
        });
      } catch (e) {
        throw new UserError(
          `rollout.device ${device}: node-llama-cpp has no usable ${device === 'auto' ? '' : device + ' '}build here (${(e as Error).message.split('\n')[0]}); ` +
            (device === 'cuda'
              ? 'install the NVIDIA driver and CUDA 12 runtime, '
              : device === 'vulkan'
                ? 'install a Vulkan driver (mesa-vulkan-drivers), '
                : `reinstall it (${INSTALL}), `) +
            'or set rollout.device: cpu',
        );
      }
    })();
    l.catch(() => llamas.delete(device));
    llamas.set(device, l);
  }
  return l;
}

/** Forgets the cached instances (tests). */
export function resetLlamas(): void {
  llamas = new Map();
}

/** Rollouts from llama.cpp: sync() exports the policy, generate() samples from the last export. */
export class LlamaCppRollouts implements Rollouts {
  /** The trainer recomputes pi_old: llama.cpp's log-probs differ from the policy's own. */
  readonly samplesElsewhere = true;
  readonly staleness = null;
  /** Where the GGUF files of this engine are written (removed by close). */
  readonly workDir: string;
  private model: LlamaModel | null = null;
  /** A model file written by sync() and not loaded yet. */
  private pending: string | null = null;
  /** Under LoRA: the parameters the loaded (or pending) base was written from, so it is written once. */
  private baseOf: object | null = null;
  /** Under LoRA: the adapter file contexts get, and the one it replaced (freed at the next generate). */
  private adapter: string | null = null;
  private retired: string[] = [];
  /** generate() calls in flight: an adapter is freed only when no context can be using it. */
  private running = 0;
  private version = 0;
  private readonly threads: number;
  /** Seconds spent writing and loading since takeMetrics(). */
  private timing = { export: 0, load: 0 };

  private constructor(
    private readonly llama: Llama,
    private readonly config: ModelConfig,
    private readonly decoder: Decoder,
    private readonly settings: LlamaCppSettings,
  ) {
    this.workDir = mkdtempSync(join(tmpdir(), 'r1kit-gguf-'));
    this.threads = settings.threads ?? Math.max(1, Math.floor(availableParallelism() / 2));
  }

  /** Opens the engine for `config`; throws a UserError naming what is missing. */
  static async open(config: ModelConfig, decoder: Decoder, settings: LlamaCppSettings): Promise<LlamaCppRollouts> {
    const why = llamaCppModelProblem(config);
    if (why) throw new UserError(why);
    return new LlamaCppRollouts(await openLlama(settings.device), config, decoder, settings);
  }

  /** Which device node-llama-cpp runs on: false (CPU), 'vulkan', 'cuda' or 'metal'. */
  get gpu(): string | false {
    return this.llama.gpu;
  }

  /** Exports the policy's current weights; the next generate() loads them. Without LoRA the merged
   * model is written in full. With LoRA the base is written once (for these parameters) and then only
   * the adapters. */
  sync(model: Transformer): void {
    const t0 = performance.now();
    const lora = model.adapters?.enabled && !this.settings.mergeAdapters ? model.adapters : null;
    if (!lora || this.baseOf !== model.params) {
      const file = join(this.workDir, `policy-${++this.version}.gguf`);
      writeGguf(file, model, lora ? { weights: 'base', matrices: this.settings.baseDtype ?? 'f16' } : {});
      if (this.pending) rmSync(this.pending, { force: true });
      this.pending = file;
      this.baseOf = lora ? model.params : null;
    }
    if (this.adapter) this.retired.push(this.adapter);
    this.adapter = null;
    if (lora) {
      this.adapter = join(this.workDir, `adapter-${++this.version}.gguf`);
      writeGgufLora(this.adapter, model.config, lora);
    }
    this.timing.export += (performance.now() - t0) / 1000;
  }

  /** The loaded model, after loading a pending one and freeing retired adapters (none in use: no
   * generate() is running). A model's disposal frees its adapters too. */
  private async current(): Promise<LlamaModel> {
    const t0 = performance.now();
    if (this.pending) {
      const file = this.pending;
      this.pending = null;
      const old = this.model;
      this.model = null;
      await old?.dispose();
      for (const f of this.retired) rmSync(f, { force: true });
      this.retired = [];
      this.model = await this.llama.loadModel({ modelPath: file, gpuLayers: this.llama.gpu ? 'max' : 0 });
      rmSync(file, { force: true }); // loaded (or mapped, which outlives the name)
    }
    if (!this.model) throw new Error('llama.cpp rollouts: generate() before sync(): sync the policy first');
    if (this.retired.length && this.running === 0) {
      const loaded = loadedAdapters(this.model);
      for (const f of this.retired) {
        const adapter = loaded.get(resolve(f));
        loaded.delete(resolve(f));
        await adapter?.dispose();
        rmSync(f, { force: true });
      }
      this.retired = [];
    }
    this.timing.load += (performance.now() - t0) / 1000;
    return this.model;
  }

  /** Loads what the last sync() wrote (the model file, and the adapter on a one-sequence context),
   * as the next generate() would: to time a sync apart from sampling (r1 bench sync). */
  async prepare(): Promise<void> {
    const model = await this.current();
    const t0 = performance.now();
    const ctx = await model.createContext({
      ...(this.adapter && { lora: { adapters: [{ filePath: this.adapter, scale: 1 }] } }),
      sequences: 1,
      contextSize: 16,
      threads: this.threads,
      flashAttention: false,
    });
    await ctx.dispose();
    this.timing.load += (performance.now() - t0) / 1000;
  }

  /** How many adapters the loaded model holds (tests: one at most, whatever the number of syncs). */
  loadedAdapterCount(): number {
    return this.model ? loadedAdapters(this.model).size : 0;
  }

  /** One completion per prompt; all prompts decode as parallel sequences (maxSequences at a time).
   * Each row samples with its own seed drawn from `rng`, so a run is repeatable. `onPart` sees each
   * group of `align` rows as soon as it is done. */
  async generate(
    prompts: number[][],
    sampling: Sampling,
    rng: Rng,
    align = 1,
    onPart?: (offset: number, part: Completion[]) => void,
  ): Promise<Completion[]> {
    const seeds = prompts.map(() => rng.seed());
    return this.decodeRows(prompts, sampling, (i) => new Rng(seeds[i]), align, onPart);
  }

  /** One completion per prompt, row i drawing from rngs[i] only (a multi-turn rollout's turn:
   * rollout/multi-turn.ts, whose trajectories each keep one stream across their turns). */
  sampleRows(prompts: number[][], sampling: Sampling, rngs: Rng[]): Promise<Completion[]> {
    if (rngs.length !== prompts.length) throw new Error(`llama.cpp rollouts: ${rngs.length} random streams for ${prompts.length} prompts`);
    return this.decodeRows(prompts, sampling, (i) => rngs[i]);
  }

  /** Decodes rows on the loaded model with the current adapter (both fixed for the call, whatever
   * syncs come meanwhile), row i drawing from rngOf(i). */
  private async decodeRows(
    prompts: number[][],
    sampling: Sampling,
    rngOf: (row: number) => Rng,
    align = 1,
    onPart?: (offset: number, part: Completion[]) => void,
  ): Promise<Completion[]> {
    const model = await this.current();
    this.running++;
    try {
      return await this.sample(model, this.adapter, prompts, sampling, rngOf, align, onPart);
    } finally {
      this.running--;
    }
  }

  private async sample(
    model: LlamaModel,
    adapter: string | null,
    prompts: number[][],
    sampling: Sampling,
    rngOf: (row: number) => Rng,
    align: number,
    onPart?: (offset: number, part: Completion[]) => void,
  ): Promise<Completion[]> {
    const out = new Array<Completion>(prompts.length);
    const per = Math.max(align, Math.floor((this.settings.maxSequences ?? 64) / align) * align);
    const perSeq = Math.max(...prompts.map((p) => p.length)) + sampling.maxNewTokens;
    for (let from = 0; from < prompts.length; from += per) {
      const rows = prompts.slice(from, from + per);
      const t0 = performance.now();
      const ctx = await model.createContext({
        ...(adapter && { lora: { adapters: [{ filePath: adapter, scale: 1 }] } }),
        sequences: rows.length,
        contextSize: rows.length * perSeq,
        batchSize: Math.min(2048, rows.length * perSeq),
        threads: this.threads,
        flashAttention: false,
      });
      this.timing.load += (performance.now() - t0) / 1000; // a new adapter loads with the first context
      try {
        const groups: Promise<void>[] = [];
        for (let g = 0; g < rows.length; g += align) {
          const jobs = rows
            .slice(g, g + align)
            .map((p, j) => sampleSequence(ctx.getSequence(), p, sampling, rngOf(from + g + j), this.decoder, this.config.vocab_size));
          groups.push(
            Promise.all(jobs).then((cs) => {
              cs.forEach((c, j) => (out[from + g + j] = c));
              onPart?.(from + g, cs);
            }),
          );
        }
        await Promise.all(groups);
      } finally {
        await ctx.dispose();
      }
    }
    return out;
  }

  /** Seconds of weight sync since the last call: writing GGUF files and loading them (the model, or
   * the adapter with the step's first context, context creation included). */
  takeMetrics(): Record<string, number> {
    const out = { 'llama_cpp/export_s': this.timing.export, 'llama_cpp/load_s': this.timing.load };
    this.timing = { export: 0, load: 0 };
    return out;
  }

  async close(): Promise<void> {
    await this.model?.dispose();
    this.model = null;
    rmSync(this.workDir, { recursive: true, force: true });
  }
}

/** llama.cpp's sampler settings that return the untouched softmax of the logits. */
const FULL_DISTRIBUTION = { temperature: 1, topK: 0, topP: 1, minP: 0 };

/** Log-probabilities of the next token over the whole vocabulary, from node-llama-cpp's map. */
function logprobsOf(probs: Map<number, number> | undefined, V: number): Float32Array {
  if (!probs) throw new Error('llama.cpp rollouts: the engine returned no probabilities');
  const z = new Float32Array(V).fill(-Infinity);
  for (const [token, p] of probs) if (token < V && p > 0) z[token] = Math.log(p);
  return z;
}

/** Decodes one sequence: the prompt in one evaluation, then a token at a time. */
async function sampleSequence(
  seq: LlamaSequence,
  prompt: number[],
  o: Sampling,
  rng: Rng,
  decoder: Decoder,
  V: number,
): Promise<Completion> {
  const stopTokens = new Set(o.stopTokens ?? []);
  const stopStrings = o.stopStrings ?? [];
  const tailTokens = stopStrings.length ? Math.max(...stopStrings.map((s) => s.length)) + 4 : 0;
  const c: Completion = { tokens: [], text: '', logprobs: [], finishReason: 'length' };
  const ask = (token: number): InputItem => [token as Token, { generateNext: { probabilities: true, options: FULL_DISTRIBUTION } }];
  let input: InputItem[] = [...(prompt.slice(0, -1) as Token[]), ask(prompt[prompt.length - 1])];
  try {
    for (let step = 0; step < o.maxNewTokens; step++) {
      const res = await seq.controlledEvaluate(input);
      const logits = logprobsOf(res[res.length - 1]?.next.probabilities, V);
      const [token, logprob] = sampleToken(logits, o.temperature ?? 1, o.topK ?? 0, o.topP ?? 1, rng);
      c.tokens.push(token);
      c.logprobs.push(logprob);
      if (stopTokens.has(token) || (tailTokens && stopStrings.some((s) => decoder.decode(c.tokens.slice(-tailTokens)).includes(s)))) {
        c.finishReason = 'stop';
        break;
      }
      input = [ask(token)];
    }
  } finally {
    seq.dispose();
  }
  const ids = c.finishReason === 'stop' && stopTokens.has(c.tokens[c.tokens.length - 1]) ? c.tokens.slice(0, -1) : c.tokens;
  c.text = cutAtStop(decoder.decode(ids), stopStrings);
  return c;
}
