import type { Command } from 'commander';

export function register(program: Command): void {
  program
    .command('generate')
    .description('sample completions from a checkpoint')
    .requiredOption('--model <dir>', 'checkpoint folder (config.json, safetensors, tokenizer.json) or hf:<org>/<name>[@revision]')
    .option('--prompt <text...>', 'prompt(s)', [])
    .option(
      '--template <name>',
      "r1-zero | chat (the model's own chat template when its tokenizer_config.json has one) | none, or a string with {prompt}",
      'none',
    )
    .option('--max-new-tokens <n>', 'tokens to generate', '64')
    .option('--temperature <t>', 'sampling temperature (0 = greedy)', '0.7')
    .option('--top-p <p>', 'nucleus sampling', '1')
    .option('--top-k <k>', 'top-k sampling (0 = off)', '0')
    .option('-n, --num <n>', 'samples per prompt', '1')
    .option('--seed <n>', 'sampling seed', '0')
    .option('--backend <name>', 'auto | tensorflow | wasm | cpu', 'auto')
    .action(async (o: Record<string, string> & { prompt: string[] }) => {
      // Loaded on use: `r1 --help` and light commands stay fast.
      const { applyTemplate } = await import('../../data/chat.ts');
      const { initBackend } = await import('../../engine/backend.ts');
      const { Rng } = await import('../../engine/rng.ts');
      const { loadModel } = await import('../../model/checkpoint.ts');
      const { generate } = await import('../../model/generate.ts');
      const { Tokenizer } = await import('../../model/tokenizer.ts');
      const { documentIds } = await import('../../stages/batches.ts');
      const { flagNumber } = await import('../numbers.ts');
      const { modelDirFlag } = await import('../paths.ts');
      const n = flagNumber('--num', o.num, { integer: true, min: 1 });
      const opts = {
        maxNewTokens: flagNumber('--max-new-tokens', o.maxNewTokens, { integer: true, min: 1 }),
        temperature: flagNumber('--temperature', o.temperature, { min: 0 }),
        topP: flagNumber('--top-p', o.topP, { gt: 0, max: 1 }),
        topK: flagNumber('--top-k', o.topK, { integer: true, min: 0 }),
        seed: flagNumber('--seed', o.seed, { integer: true, min: 0 }),
      };
      const dir = modelDirFlag('--model', o.model, ['config.json', 'tokenizer.json']);
      await initBackend(o.backend);
      const tok = Tokenizer.load(dir);
      const model = loadModel(dir);
      const prompts = o.prompt.length ? o.prompt : [''];
      const texts = prompts.flatMap((p) => Array.from({ length: n }, () => applyTemplate(o.template, p, tok.chatTemplate)));
      const ids = texts.map((t) => documentIds(tok, t));
      const out = generate(model, tok, ids, {
        maxNewTokens: opts.maxNewTokens,
        temperature: opts.temperature,
        topP: opts.topP,
        topK: opts.topK,
        stopTokens: [...tok.eosIds],
        rng: new Rng(opts.seed),
      });
      out.forEach((c, i) =>
        process.stdout.write(
          JSON.stringify({
            prompt: texts[i],
            completion: c.text,
            finish_reason: c.finishReason,
            tokens: c.tokens.length,
            // The ids themselves, for comparisons with another implementation (scripts/qwen-check.sh).
            prompt_ids: ids[i],
            completion_ids: c.tokens,
          }) + '\n',
        ),
      );
    });
}
