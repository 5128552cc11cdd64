import type { Command } from 'commander';

export function register(program: Command): void {
  program
    .command('logits')
    .description('write the logits of token-id sequences under a model, as float32 JSON {"ids": [[..]], "logits": [B][T][V]} (what hf_reference.py compare reads)')
    .requiredOption('--model <dir>', 'model directory (config.json + safetensors) or hf:<org>/<name>[@revision]')
    .requiredOption('--ids <list>', 'token ids: sequences separated by ";", ids by ","; e.g. "1,2,3;4,5,6"')
    .requiredOption('--output <file>', 'the JSON file to write')
    .option('--backend <name>', 'auto | tensorflow | wasm | cpu', 'auto')
    .action(async (o: Record<string, string>) => {
      // Loaded on use: `r1 --help` and light commands stay fast.
      const tf = await import('@tensorflow/tfjs-core');
      const { initBackend } = await import('../../engine/backend.ts');
      const { writeFileAtomic } = await import('../../engine/safetensors.ts');
      const { UserError } = await import('../../errors.ts');
      const { loadModel } = await import('../../model/checkpoint.ts');
      const ids = parseIds(o.ids, (msg) => new UserError(`--ids: ${msg}`));
      await initBackend(o.backend);
      const model = loadModel(o.model);
      const { vocab_size: V, max_position_embeddings: ctx } = model.config;
      ids.forEach((seq, i) => {
        const bad = seq.find((t) => t >= V);
        if (bad !== undefined) throw new UserError(`--ids: sequence ${i + 1} has id ${bad}, outside the vocabulary of ${V}`);
        if (seq.length > ctx) throw new UserError(`--ids: sequence ${i + 1} has ${seq.length} tokens, more than the model's context of ${ctx}`);
      });
      // Sequences of one length run as one batch; each row is written as soon as it is read back.
      const rows = new Array<string>(ids.length);
      const byLength = new Map<number, number[]>();
      ids.forEach((s, i) => byLength.set(s.length, [...(byLength.get(s.length) ?? []), i]));
      for (const [T, members] of byLength) {
        const logits = tf.tidy(() => model.forward(tf.tensor2d(members.map((i) => ids[i]), [members.length, T], 'int32')));
        const data = logits.dataSync() as Float32Array;
        logits.dispose();
        members.forEach((i, b) => {
          const steps: string[] = [];
          for (let t = 0; t < T; t++) steps.push(JSON.stringify(Array.from(data.subarray((b * T + t) * V, (b * T + t + 1) * V))));
          rows[i] = `[${steps.join(',')}]`;
        });
      }
      model.dispose();
      writeFileAtomic(o.output, [`{"ids":${JSON.stringify(ids)},"logits":[`, rows.join(','), ']}\n']);
    });
}

/** "1,2,3;4,5,6" -> [[1, 2, 3], [4, 5, 6]]: non-negative integers, no empty sequence. */
export function parseIds(text: string, error: (msg: string) => Error): number[][] {
  const seqs = text.split(';').map((s) => s.trim()).filter((s) => s !== '');
  if (!seqs.length) throw error('no sequence given (e.g. "1,2,3;4,5,6")');
  return seqs.map((s, i) =>
    s.split(',').map((t) => {
      const n = Number(t.trim());
      if (t.trim() === '' || !Number.isInteger(n) || n < 0) throw error(`sequence ${i + 1}: '${t.trim()}' is not a token id (a non-negative integer)`);
      return n;
    }),
  );
}
