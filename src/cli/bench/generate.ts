// `r1 bench generate`: batch 64, prompt 16, 112 new tokens with the KV cache and sampling, of the
// reference model (--model tiny, the default; small, base: see sizes.ts) or of --model DIR (a
// checkpoint), as scripts/torch_baseline.py --mode generate does in PyTorch. One line on the main thread
// and one with the rollout worker pool (one worker per core), as GRPO runs it; with --engine llama.cpp
// one line of the llama.cpp rollout engine instead (GGUF export, --device, every prompt a parallel sequence).
import { availableParallelism } from 'node:os';
import type { BenchOptions } from '../commands/bench.ts';
import { initBackend } from '../../engine/backend.ts';
import { Rng } from '../../engine/rng.ts';
import { loadModel } from '../../model/checkpoint.ts';
import { family, headDim, parameterCount } from '../../model/config.ts';
import { SIZES, repetitions, runTorch, sizeNamed, torchLine } from './sizes.ts';
import { generate } from '../../model/generate.ts';
import { Tokenizer } from '../../model/tokenizer.ts';
import { Transformer } from '../../model/transformer.ts';
import { RolloutPool } from '../../rollout/pool.ts';
import { matmulPath } from '../../engine/kernels/index.ts';
import { LLAMA_CPP_DEVICES, LlamaCppRollouts, type LlamaCppDevice } from '../../rollout/llama-cpp.ts';
import { UserError } from '../../errors.ts';

export async function run(opts: BenchOptions): Promise<Record<string, unknown>[]> {
  const backend = await initBackend(opts.backend);
  const size = sizeNamed(opts.model ?? 'tiny');
  const B = 64,
    P = 16,
    N = 112,
    reps = repetitions(size ?? 'tiny', Boolean(opts.quick), 3);
  // A fresh model of a named size, or a checkpoint (--model DIR: a Hugging Face family's layout and kernels).
  const model = size ? Transformer.init({ ...SIZES[size], max_position_embeddings: P + N }, 0) : loadModel(opts.model as string);
  const config = model.config;
  const rng = new Rng(0);
  const prompts = Array.from({ length: B }, () => Array.from({ length: P }, () => rng.int(config.vocab_size)));
  // Weights a generated token goes through: a MoE model's routed experts count num_experts_per_tok, and
  // the MTP module is unused at inference.
  const n = parameterCount(config),
    active = parameterCount({ ...config, num_nextn_predict_layers: 0 }, true);
  const flopsPerToken = 2 * active + 2 * 2 * (P + N / 2) * config.num_attention_heads * headDim(config) * config.num_hidden_layers;
  const line = (workers: number, ms: number, engine = 'tfjs') => ({
    bench: 'generate',
    engine,
    backend,
    ...(backend === 'wasm' && engine === 'tfjs' && { matmul: matmulPath() }),
    model: size ?? opts.model,
    family: family(config),
    workers,
    n_params: n,
    ...(active !== n && { n_params_active: active }),
    batch: B,
    prompt: P,
    new_tokens: N,
    ms_per_run: +ms.toFixed(1),
    tokens_per_s: Math.round((B * N) / (ms / 1000)),
    gflops: +((flopsPerToken * B * N) / (ms / 1000) / 1e9).toFixed(2),
  });
  const time = async (once: () => unknown) => {
    await once();
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) await once();
    return (performance.now() - t0) / reps;
  };
  const sampling = { maxNewTokens: N, temperature: 1 };
  const out: Record<string, unknown>[] = [];
  if (opts.engine === 'llama.cpp') {
    const device = String(opts.device ?? 'auto') as LlamaCppDevice;
    if (!LLAMA_CPP_DEVICES.includes(device)) throw new UserError(`--device ${device}: use one of ${LLAMA_CPP_DEVICES.join(', ')}`);
    const engine = await LlamaCppRollouts.open(
      config,
      { decode: () => '' },
      { device, ...(opts.workers !== undefined && { threads: Number(opts.workers) }) },
    );
    engine.sync(model);
    out.push({ ...line(0, await time(() => engine.generate(prompts, sampling, rng)), 'llama.cpp'), device: engine.gpu || 'cpu' });
    await engine.close();
    model.dispose();
    return out;
  }
  if (opts.engine !== undefined && opts.engine !== 'tfjs') throw new UserError(`--engine ${String(opts.engine)}: use tfjs or llama.cpp`);
  const counts = opts.workers !== undefined ? [Number(opts.workers)] : backend === 'webgpu' ? [0] : [0, availableParallelism()];
  for (const workers of counts) {
    if (workers === 0) {
      out.push(line(0, await time(() => generate(model, { decode: () => '' }, prompts, { ...sampling, rng }))));
      continue;
    }
    // Random token ids never need decoding; a one-merge tokenizer satisfies the workers' interface.
    const pool = new RolloutPool(workers, config, Tokenizer.train(['ab'], { vocabSize: 300 }), backend);
    pool.sync(model);
    out.push(line(workers, await time(() => pool.generate(prompts, sampling, rng))));
    await pool.close();
  }
  model.dispose();
  if (opts.torch && size) {
    const best = Math.max(...out.map((l) => Number(l.tokens_per_s)));
    out.push(
      torchLine(
        'generate',
        size,
        runTorch('generate', config, { 'gen-batch': B, 'prompt-len': P, 'new-tokens': N, steps: 5 * reps }),
        best,
      ),
    );
  }
  return out;
}
