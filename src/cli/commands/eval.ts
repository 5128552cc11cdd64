import type { Command } from 'commander';

export function register(program: Command): void {
  program
    .command('eval')
    .description('evaluate a checkpoint on a dataset: pass@1 (averaged over k), maj@k, format rate, mean length')
    .requiredOption('--model <dir>', 'checkpoint folder (config.json, safetensors, tokenizer.json) or hf:<org>/<name>[@revision]')
    .requiredOption('--dataset <file>', 'rows with a prompt and a reference answer (.jsonl/.json/.parquet)')
    .option('-k, --num-generations <k>', 'samples per prompt', '4')
    .option('--max-new-tokens <n>', 'tokens per completion', '128')
    .option('--temperature <t>', 'sampling temperature', '0.6')
    .option('--top-p <p>', 'nucleus sampling', '0.95')
    .option(
      '--template <name>',
      "r1-zero | chat (the model's own chat template when its tokenizer_config.json has one) | none, or a string with {prompt}",
      'r1-zero',
    )
    .option('--prompt-field <name>', 'field of each row that holds the prompt', 'prompt')
    .option('--rewards <names>', 'comma-separated reward functions', 'accuracy,format')
    .option('--limit <n>', 'use at most n rows')
    .option('--seed <n>', 'sampling seed', '0')
    .option('--backend <name>', 'auto | tensorflow | wasm | cpu', 'auto')
    .action(async (o: Record<string, string>) => {
      // Loaded on use: `r1 --help` and light commands stay fast.
      const { readRows } = await import('../../data/io.ts');
      const { initBackend } = await import('../../engine/backend.ts');
      const { loadModel } = await import('../../model/checkpoint.ts');
      const { Tokenizer } = await import('../../model/tokenizer.ts');
      const { evaluate } = await import('../../stages/eval.ts');
      const { flagNumber } = await import('../numbers.ts');
      const { inputFileFlag, modelDirFlag } = await import('../paths.ts');
      const opts = {
        k: flagNumber('--num-generations', o.numGenerations, { integer: true, min: 1 }),
        maxNewTokens: flagNumber('--max-new-tokens', o.maxNewTokens, { integer: true, min: 1 }),
        temperature: flagNumber('--temperature', o.temperature, { min: 0 }),
        topP: flagNumber('--top-p', o.topP, { gt: 0, max: 1 }),
        seed: flagNumber('--seed', o.seed, { integer: true, min: 0 }),
        limit: o.limit === undefined ? undefined : flagNumber('--limit', o.limit, { integer: true, min: 1 }),
      };
      const dir = modelDirFlag('--model', o.model, ['config.json', 'tokenizer.json']);
      inputFileFlag('--dataset', o.dataset);
      await initBackend(o.backend);
      const tok = Tokenizer.load(dir);
      const model = loadModel(dir);
      let rows = await readRows(o.dataset);
      if (opts.limit !== undefined) rows = rows.slice(0, opts.limit);
      const { report } = await evaluate(model, tok, rows, {
        k: opts.k,
        maxNewTokens: opts.maxNewTokens,
        temperature: opts.temperature,
        topP: opts.topP,
        topK: 0,
        stop: [],
        template: o.template,
        promptField: o.promptField,
        seed: opts.seed,
        baseDir: process.cwd(),
        stage: 'eval',
        source: { where: o.dataset, promptFieldHint: 'set --prompt-field', newTokensHint: '--max-new-tokens' },
        rewards: o.rewards.split(',').map((name) => ({ name: name.trim(), weight: 1, options: {} })),
      });
      process.stdout.write(JSON.stringify(report, null, 2) + '\n');
    });
}
