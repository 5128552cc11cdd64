// `r1 bench sync`: what a GRPO weight sync costs the llama.cpp rollout engine under LoRA, the old way
// (the merged model written as a float32 GGUF and reloaded at every sync) against the new one (the base
// written once, float16 matrices, then only the adapters as a llama.cpp adapter file). A sync is timed
// as writing (sync()) plus loading what it wrote (prepare(): the model file, or the adapter on a
// one-sequence context, minus the same context with nothing new to load). The model: a fresh one of a named size (--model tiny,
// small, base) or a checkpoint (--model DIR); fresh rank-16 adapters on every projection, or the
// folder's own when DIR is a PEFT adapter folder, with B drawn anew before each sync as training would.
import { statSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchOptions } from '../commands/bench.ts';
import { initBackend } from '../../engine/backend.ts';
import { loadModel, projectionParams } from '../../model/checkpoint.ts';
import { family, parameterCount } from '../../model/config.ts';
import { LoraAdapters } from '../../model/lora.ts';
import { Transformer } from '../../model/transformer.ts';
import { LLAMA_CPP_DEVICES, LlamaCppRollouts, type LlamaCppDevice } from '../../rollout/llama-cpp.ts';
import { UserError } from '../../errors.ts';
import { SIZES, sizeNamed } from './sizes.ts';

const RANK = 16;

/** Bytes of the newest GGUF file (`<prefix><version>.gguf`) in the engine's directory, 0 if none. */
function bytesOf(dir: string, prefix: string): number {
  const versions = readdirSync(dir)
    .filter((f) => f.startsWith(prefix))
    .map((f) => Number(f.slice(prefix.length, -'.gguf'.length)));
  return versions.length ? statSync(join(dir, `${prefix}${Math.max(...versions)}.gguf`)).size : 0;
}

export async function run(opts: BenchOptions): Promise<Record<string, unknown>[]> {
  const backend = await initBackend(opts.backend);
  const device = String(opts.device ?? 'auto') as LlamaCppDevice;
  if (!LLAMA_CPP_DEVICES.includes(device)) throw new UserError(`--device ${device}: use one of ${LLAMA_CPP_DEVICES.join(', ')}`);
  const size = sizeNamed(opts.model ?? 'tiny');
  const model = size ? Transformer.init({ ...SIZES[size], max_position_embeddings: 64 }, 0) : loadModel(opts.model as string);
  if (!model.adapters) model.attachAdapters(LoraAdapters.init(model.config, projectionParams(model.config), { r: RANK }, 'bench', 0));
  const config = model.config;
  const reps = opts.quick ? 2 : 5;
  const out: Record<string, unknown>[] = [];
  for (const way of ['merged', 'adapter'] as const) {
    const engine = await LlamaCppRollouts.open(
      config,
      { decode: () => '' },
      { device, mergeAdapters: way === 'merged', ...(opts.workers !== undefined && { threads: Number(opts.workers) }) },
    );
    /** Milliseconds to write (sync()) and to load (prepare(): what the next generation would load,
     * on a one-sequence context), and the bytes written. */
    const syncOnce = async (seed: number) => {
      model.adapters!.drawB(seed, 0.01);
      const t0 = performance.now();
      engine.sync(model);
      const t1 = performance.now();
      const bytes = bytesOf(engine.workDir, 'policy-') + bytesOf(engine.workDir, 'adapter-');
      const t2 = performance.now();
      await engine.prepare();
      return { exportMs: t1 - t0, loadMs: performance.now() - t2, bytes };
    };
    const first = await syncOnce(1);
    const idle: number[] = [],
      syncs: Awaited<ReturnType<typeof syncOnce>>[] = [];
    for (let i = 0; i < reps; i++) {
      const t0 = performance.now();
      await engine.prepare(); // nothing new to load: the context alone, subtracted from each load
      idle.push(performance.now() - t0);
      syncs.push(await syncOnce(2 + i));
    }
    await engine.close();
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const contextMs = mean(idle);
    const ms = (x: number) => +x.toFixed(1);
    const exportMs = mean(syncs.map((s) => s.exportMs)),
      loadMs = mean(syncs.map((s) => s.loadMs)) - contextMs;
    out.push({
      bench: 'sync',
      engine: 'llama.cpp',
      device: engine.gpu || 'cpu',
      backend,
      model: size ?? opts.model,
      family: family(config),
      n_params: parameterCount(config),
      lora_r: model.adapters!.config.r,
      way: way === 'merged' ? 'merged model as float32 GGUF, reloaded, every sync' : 'float16 base once, adapter GGUF every sync',
      first_sync_ms: ms(first.exportMs + first.loadMs - contextMs),
      first_sync_mb_written: +(first.bytes / 2 ** 20).toFixed(2),
      sync_ms: ms(exportMs + loadMs),
      sync_export_ms: ms(exportMs),
      sync_load_ms: ms(loadMs),
      sync_mb_written: +mean(syncs.map((s) => s.bytes / 2 ** 20)).toFixed(2),
      context_ms: ms(contextMs),
      syncs: reps,
    });
  }
  out.push({
    bench: 'sync',
    speedup: +(Number(out[0].sync_ms) / Number(out[1].sync_ms)).toFixed(1),
    max_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
  });
  model.dispose();
  return out;
}
