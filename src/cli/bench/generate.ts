// `r1 bench generate`: batch 64, prompt 16, 112 new tokens with the KV cache and sampling, as
// ../shared/anchors/torch_reference.py --mode generate does in PyTorch.
import type { BenchOptions } from '../commands/bench.ts';
import { initBackend } from '../../engine/backend.ts';
import { Rng } from '../../engine/rng.ts';
import { TINY, parameterCount } from '../../model/config.ts';
import { generate } from '../../model/generate.ts';
import { Transformer } from '../../model/transformer.ts';

export async function run(opts: BenchOptions): Promise<Record<string, unknown>[]> {
  const backend = await initBackend(opts.backend);
  const B = 64, P = 16, N = 112, reps = opts.quick ? 1 : 3;
  const model = Transformer.init({ ...TINY, max_position_embeddings: P + N }, 0);
  const rng = new Rng(0);
  const prompts = Array.from({ length: B }, () => Array.from({ length: P }, () => rng.int(TINY.vocab_size)));
  const noText = { decode: () => '' };
  const once = () => generate(model, noText, prompts, { maxNewTokens: N, temperature: 1, rng });
  once();
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) once();
  const ms = (performance.now() - t0) / reps;
  const n = parameterCount(TINY);
  const flopsPerToken = 2 * n + 2 * 2 * (P + N / 2) * TINY.hidden_size * TINY.num_hidden_layers;
  return [{
    bench: 'generate', backend, n_params: n, batch: B, prompt: P, new_tokens: N,
    ms_per_run: +ms.toFixed(1), tokens_per_s: Math.round((B * N) / (ms / 1000)),
    gflops: +((flopsPerToken * B * N) / (ms / 1000) / 1e9).toFixed(2),
  }];
}
