import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Command } from 'commander';
import { UserError } from '../../errors.ts';

/** Each benchmark is a module `../bench/<name>.ts` exporting `run(opts)`, which returns one JSON-able
 * object per measurement; the command prints each as one JSON line. */
export type BenchOptions = { backend: string; quick: boolean; [key: string]: unknown };
export type Bench = { run(opts: BenchOptions): Promise<Record<string, unknown>[]> };

export const BENCHES = ['train', 'generate', 'rewards', 'sandbox', 'grpo', 'kernels', 'cluster', 'sync'] as const;

export function register(program: Command): void {
  program
    .command('bench')
    .description(`measure speed; prints one JSON line per measurement (${BENCHES.join(', ')})`)
    .argument('<what>', BENCHES.join(' | '))
    .option(
      '--backend <name>',
      'auto | tensorflow | webgpu | wasm | cpu (webgpu on a software adapter only with R1_ALLOW_SOFTWARE_GPU=1)',
      'auto',
    )
    .option('--quick', 'fewer repetitions (smoke run)', false)
    .option('--workers <n>', 'worker threads, where the benchmark uses them')
    .option(
      '--model <size|dir>',
      'train, generate, grpo, sync: a fresh model of size tiny (the reference, default), small (~10M parameters) or base (~50M), all llama layout; train, generate, sync: or this checkpoint (model directory, adapter folder or hf: name)',
    )
    .option(
      '--engine <name>',
      'generate: tfjs (default: the main thread and the rollout worker pool) or llama.cpp (node-llama-cpp on a GGUF export)',
      'tfjs',
    )
    .option('--device <name>', 'generate --engine llama.cpp, sync (llama.cpp under LoRA): auto | cpu | vulkan | cuda', 'auto')
    .option(
      '--torch',
      'train, generate: also run the PyTorch baseline (scripts/torch_baseline.py; needs python3-torch) at the same size and print the ratio',
      false,
    )
    .option('--profile', 'train: also print kernel time by op (tf.profile) of one main-thread step', false)
    .action(async (what: string, opts: BenchOptions) => {
      const file = join(dirname(fileURLToPath(import.meta.url)), '..', 'bench', `${what}.ts`);
      if (!(BENCHES as readonly string[]).includes(what) || !existsSync(file)) {
        throw new UserError(`unknown benchmark '${what}'; valid: ${BENCHES.join(', ')}`);
      }
      const bench = (await import(pathToFileURL(file).href)) as Bench;
      for (const line of await bench.run(opts)) process.stdout.write(JSON.stringify(line) + '\n');
    });
}
