import type { Command } from 'commander';

export function register(program: Command): void {
  program
    .command('loss')
    .description(
      "a model's held-out loss: the mean next-token loss (and perplexity) over a text dataset, packed into windows as the pretrain stage packs them " +
        '(documents joined by the end-of-text token); forward passes only; prints one JSON line',
    )
    .requiredOption('--model <dir>', 'checkpoint folder (config.json, safetensors, tokenizer.json) or hf:<org>/<name>[@revision]')
    .requiredOption('--dataset <file>', 'dataset file (.jsonl/.json/.parquet) of text rows, e.g. data/r1/heldout.jsonl')
    .option('--text-field <name>', 'field of each row that holds the text', 'text')
    .option('--seq-length <n>', "tokens per window (default: 256, or the model's context when shorter)")
    .option('--batch <n>', 'windows per forward pass', '8')
    .option('--backend <name>', 'auto | tensorflow | webgpu | wasm | cpu', 'auto')
    .action(async (o: { model: string; dataset: string; textField: string; seqLength?: string; batch: string; backend: string }) => {
      // Loaded on use: `r1 --help` and light commands stay fast.
      const { readRows } = await import('../../data/io.ts');
      const { packText } = await import('../../data/packing.ts');
      const { initBackend } = await import('../../engine/backend.ts');
      const { UserError } = await import('../../errors.ts');
      const { loadModel } = await import('../../model/checkpoint.ts');
      const { Tokenizer } = await import('../../model/tokenizer.ts');
      const { heldOutLoss } = await import('../../train/held-out.ts');
      const { flagNumber } = await import('../numbers.ts');
      const { inputFileFlag, modelDirFlag } = await import('../paths.ts');
      const dir = modelDirFlag('--model', o.model, ['config.json', 'tokenizer.json']);
      inputFileFlag('--dataset', o.dataset);
      const batch = flagNumber('--batch', o.batch, { integer: true, min: 1 });
      await initBackend(o.backend);
      const tok = Tokenizer.load(dir);
      const model = loadModel(dir);
      const context = model.config.max_position_embeddings;
      const T = o.seqLength === undefined ? Math.min(256, context) : flagNumber('--seq-length', o.seqLength, { integer: true, min: 1 });
      if (T > context) throw new UserError(`--seq-length ${T} exceeds the model's context (max_position_embeddings ${context})`);
      const windows = packText(
        await readRows(o.dataset),
        o.textField,
        tok,
        T + 1,
        (i) => new UserError(`${o.dataset}: row ${i + 1} has no string field '${o.textField}' (--text-field)`),
      );
      if (!windows.length)
        throw new UserError(`${o.dataset}: fewer than ${T + 1} tokens, not one window of --seq-length ${T} (+1 for the last target)`);
      const loss = heldOutLoss(model, windows, batch, T);
      model.dispose();
      console.log(
        JSON.stringify({
          model: o.model,
          dataset: o.dataset,
          loss: +loss.toFixed(5),
          perplexity: +Math.exp(loss).toFixed(4),
          windows: windows.length,
          tokens: windows.length * T,
          seq_length: T,
        }),
      );
    });
}
