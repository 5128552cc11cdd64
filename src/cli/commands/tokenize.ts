import { once } from 'node:events';
import { createReadStream, createWriteStream, existsSync, renameSync, rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Command } from 'commander';

export function register(program: Command): void {
  program
    .command('tokenize')
    .description('token ids of texts: one {"ids": [...]} line per {"text": ...} line, with no BOS/EOS added')
    .requiredOption('--tokenizer <path>', 'a folder with tokenizer.json (and tokenizer_config.json), or a tokenizer.json file')
    .requiredOption('--input <file>', 'JSONL rows, each with a string "text"')
    .option('--output <file>', 'where to write the ids (default: standard output)')
    .action(async (o: { tokenizer: string; input: string; output?: string }) => {
      // r1kit's modules are loaded on use, like the other commands': `r1 --help` stays fast.
      const { UserError } = await import('../../errors.ts');
      const { Tokenizer } = await import('../../model/tokenizer.ts');
      if (!existsSync(o.input)) throw new UserError(`--input: file not found: ${o.input}`);
      const tok = Tokenizer.load(o.tokenizer);
      // Into a temporary file renamed at the end, so a bad line leaves no partial output behind.
      const part = o.output && `${o.output}.part`;
      const out = part ? createWriteStream(part) : process.stdout;
      const close = () => new Promise<void>((ok) => (part ? out.end(ok) : ok()));
      let lineNo = 0;
      try {
        for await (const line of createInterface({ input: createReadStream(o.input), crlfDelay: Infinity })) {
          lineNo++;
          if (!line.trim()) continue;
          let row: unknown;
          try {
            row = JSON.parse(line);
          } catch (e) {
            throw new UserError(`${o.input} line ${lineNo}: invalid JSON (${(e as Error).message})`);
          }
          const text = (row as { text?: unknown } | null)?.text;
          if (typeof text !== 'string') throw new UserError(`${o.input} line ${lineNo}: needs a string field "text"`);
          if (!out.write(JSON.stringify({ ids: tok.encode(text) }) + '\n')) await once(out, 'drain');
        }
      } catch (e) {
        await close();
        if (part) rmSync(part, { force: true });
        throw e;
      }
      await close();
      if (part) renameSync(part, o.output!);
    });
}
