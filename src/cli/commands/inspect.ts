import type { Command } from 'commander';

export function register(program: Command): void {
  program
    .command('inspect')
    .description(
      'describe a model directory (family, parameters, dtype, layers, heads, context, vocabulary, chat template), checking its tensors against config.json without loading them',
    )
    .requiredOption('--model <dir>', 'model directory (config.json + safetensors) or hf:<org>/<name>[@revision]')
    .action(async (o: Record<string, string>) => {
      // Loaded on use: `r1 --help` and light commands stay fast.
      const { describeModel } = await import('../../model/inspect.ts');
      const { modelDirFlag } = await import('../paths.ts');
      modelDirFlag('--model', o.model);
      process.stdout.write(JSON.stringify(describeModel(o.model), null, 2) + '\n');
    });
}
