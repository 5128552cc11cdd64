import type { Command } from 'commander';

export function register(program: Command): void {
  program
    .command('convert')
    .description(
      "load a model and save it again in its family's Hugging Face layout: config.json, safetensors (sharded past --max-shard-size), generation_config.json and the tokenizer files",
    )
    .requiredOption('--model <dir>', 'model directory (config.json + safetensors) or hf:<org>/<name>[@revision]')
    .requiredOption('--output <dir>', 'directory to write (replaced as a whole once complete; a failed convert leaves nothing behind)')
    .option('--dtype <type>', 'f32 | bf16 | f16 (default: the dtype of the source)')
    .option(
      '--merge',
      'for a LoRA adapter folder (PEFT layout): write the merged full checkpoint, W + s B A (without it the adapter is written again)',
      false,
    )
    .option('--max-shard-size <size>', 'largest weight file: bytes, or with a unit (KB, MB, GB; powers of 1000 as save_pretrained)', '5GB')
    .action(async (o: { model: string; output: string; dtype?: string; maxShardSize: string; merge: boolean }) => {
      // Loaded on use: `r1 --help` and light commands stay fast.
      const { existsSync, readdirSync } = await import('node:fs');
      const { join, resolve } = await import('node:path');
      const { initBackend } = await import('../../engine/backend.ts');
      const { UserError } = await import('../../errors.ts');
      const { copyCompanions, isAdapterDir, loadModel, mergeAdapters, writeDirAtomic, writeModelFiles } = await import(
        '../../model/checkpoint.ts'
      );
      const { modelDirFlag } = await import('../paths.ts');
      const dtypes = { f32: 'F32', bf16: 'BF16', f16: 'F16' } as const;
      const dtype = o.dtype === undefined ? undefined : dtypes[o.dtype as keyof typeof dtypes];
      if (o.dtype !== undefined && !dtype) throw new UserError(`--dtype ${o.dtype}: supported: ${Object.keys(dtypes).join(', ')}`);
      const maxShardBytes = parseSize(o.maxShardSize, (msg) => new UserError(`--max-shard-size: ${msg}`));
      const out = resolve(o.output);
      // The output replaces whatever is there: only ever a model directory, never a folder of other files.
      if (
        existsSync(out) &&
        readdirSync(out).length > 0 &&
        !existsSync(join(out, 'config.json')) &&
        !existsSync(join(out, 'adapter_config.json'))
      ) {
        throw new UserError(
          `--output ${o.output} exists and is not a model directory (no config.json): refusing to replace it (nor an adapter folder, no adapter_config.json)`,
        );
      }
      const source = modelDirFlag('--model', o.model);
      // No arithmetic here: the plain JS backend holds weights in JS memory, not in the 4 GB wasm heap.
      await initBackend('cpu');
      const model = loadModel(source);
      if (o.merge) {
        if (!isAdapterDir(source)) throw new UserError(`--merge: ${o.model} is not a LoRA adapter folder (no adapter_config.json)`);
        mergeAdapters(model);
      }
      writeDirAtomic(out, (staging) => {
        writeModelFiles(staging, model, {}, { dtype, maxShardBytes });
        copyCompanions(source, staging);
      });
      model.dispose();
      process.stdout.write(JSON.stringify({ output: out, dtype: dtype ?? model.origin!.dtype, files: readdirSync(out).sort() }) + '\n');
    });
}

/** "5GB", "500MB", "100KB", "123" -> bytes (units are powers of 1000, as transformers reads them). */
export function parseSize(text: string, error: (msg: string) => Error): number {
  const m = /^(\d+(?:\.\d+)?)\s*(B|KB|MB|GB)?$/i.exec(text.trim());
  if (!m) throw error(`'${text}' is not a size (e.g. 5GB, 500MB, 100KB or a number of bytes)`);
  const bytes = Number(m[1]) * { B: 1, KB: 1e3, MB: 1e6, GB: 1e9 }[(m[2] ?? 'B').toUpperCase() as 'B'];
  if (!(bytes >= 1)) throw error(`'${text}' is below one byte`);
  return bytes;
}
