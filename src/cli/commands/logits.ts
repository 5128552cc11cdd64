import type { Command } from 'commander';

export function register(program: Command): void {
  program
    .command('logits')
    .description(
      'write the logits of token-id sequences under a model, as float32 JSON {"ids": [[..]], "logits": [B][T][V]} (what hf_reference.py compare reads)',
    )
    .requiredOption('--model <dir>', 'model directory (config.json + safetensors) or hf:<org>/<name>[@revision]')
    .requiredOption('--ids <list>', 'token ids: sequences separated by ";", ids by ","; e.g. "1,2,3;4,5,6"')
    .requiredOption('--output <file>', 'the JSON file to write')
    .option('--backend <name>', 'auto | tensorflow | wasm | cpu', 'auto')
    .option(
      '--mtp',
      'also write "mtp_logits": [B][T-1][V], the multi-token prediction module\'s logits (row i predicts token i+2; deepseek_v3 with num_nextn_predict_layers 1)',
    )
    .action(async (o: Record<string, string | boolean>) => {
      // Loaded on use: `r1 --help` and light commands stay fast.
      const tf = await import('@tensorflow/tfjs-core');
      const { initBackend } = await import('../../engine/backend.ts');
      const { writeFileAtomic } = await import('../../files.ts');
      const { UserError } = await import('../../errors.ts');
      const { loadModel } = await import('../../model/checkpoint.ts');
      const { deepseek, family } = await import('../../model/config.ts');
      const { mtpLogits } = await import('../../model/mtp.ts');
      const { modelDirFlag } = await import('../paths.ts');
      const dir = modelDirFlag('--model', o.model as string);
      const ids = parseIds(o.ids as string, (msg) => new UserError(`--ids: ${msg}`));
      await initBackend(o.backend as string);
      const model = loadModel(dir);
      const mtp = o.mtp === true;
      if (mtp && (family(model.config) !== 'deepseek_v3' || !deepseek(model.config).num_nextn_predict_layers)) {
        throw new UserError(`--mtp: ${o.model} has no multi-token prediction module (a deepseek_v3 model with num_nextn_predict_layers 1)`);
      }
      if (mtp && ids.some((s) => s.length < 2))
        throw new UserError('--mtp: every sequence needs at least 2 tokens (row i predicts token i+2)');
      const { vocab_size: V, max_position_embeddings: ctx } = model.config;
      ids.forEach((seq, i) => {
        const bad = seq.find((t) => t >= V);
        if (bad !== undefined) throw new UserError(`--ids: sequence ${i + 1} has id ${bad}, outside the vocabulary of ${V}`);
        if (seq.length > ctx)
          throw new UserError(`--ids: sequence ${i + 1} has ${seq.length} tokens, more than the model's context of ${ctx}`);
      });
      // Sequences of one length run as one batch; each row is written as soon as it is read back.
      const rows = new Array<string>(ids.length),
        mtpRows = new Array<string>(ids.length);
      const byLength = new Map<number, number[]>();
      ids.forEach((s, i) => byLength.set(s.length, [...(byLength.get(s.length) ?? []), i]));
      const write = (data: Float32Array, members: number[], T: number, into: string[]) =>
        members.forEach((i, b) => {
          const steps: string[] = [];
          for (let t = 0; t < T; t++) steps.push(JSON.stringify(Array.from(data.subarray((b * T + t) * V, (b * T + t + 1) * V))));
          into[i] = `[${steps.join(',')}]`;
        });
      for (const [T, members] of byLength) {
        const [logits, extra] = tf.tidy(() => {
          const input = tf.tensor2d(
            members.map((i) => ids[i]),
            [members.length, T],
            'int32',
          );
          const hidden = model.hidden(input);
          return [model.logits(hidden), ...(mtp ? [mtpLogits(model, hidden, input)] : [])];
        });
        write(logits.dataSync() as Float32Array, members, T, rows);
        if (extra) write(extra.dataSync() as Float32Array, members, T - 1, mtpRows);
        tf.dispose([logits, extra]);
      }
      model.dispose();
      const tail = mtp ? ['],"mtp_logits":[', mtpRows.join(',')] : [];
      writeFileAtomic(o.output as string, [`{"ids":${JSON.stringify(ids)},"logits":[`, rows.join(','), ...tail, ']}\n']);
    });
}

/** "1,2,3;4,5,6" -> [[1, 2, 3], [4, 5, 6]]: non-negative integers, no empty sequence. */
export function parseIds(text: string, error: (msg: string) => Error): number[][] {
  const seqs = text
    .split(';')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (!seqs.length) throw error('no sequence given (e.g. "1,2,3;4,5,6")');
  return seqs.map((s, i) =>
    s.split(',').map((t) => {
      const n = Number(t.trim());
      if (t.trim() === '' || !Number.isInteger(n) || n < 0)
        throw error(`sequence ${i + 1}: '${t.trim()}' is not a token id (a non-negative integer)`);
      return n;
    }),
  );
}
