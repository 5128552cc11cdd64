// The `r1` command. Each sub-command lives in its own file under commands/ and exports
// `register(program)`, so adding one touches no other file.
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Command, CommanderError } from 'commander';
import { UserError } from '../errors.ts';

const here = dirname(fileURLToPath(import.meta.url));

/** Exit code of every usage error: bad flags, missing options, bad input files (UserError's default). */
export const USAGE_ERROR = 2;

export async function buildProgram(): Promise<Command> {
  const program = new Command('r1')
    .description('r1kit: reinforcement-learning post-training of language models, the DeepSeek-R1 way')
    .showHelpAfterError()
    .exitOverride();
  const dir = join(here, 'commands');
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith('.ts'))
    .sort()) {
    const mod = (await import(pathToFileURL(join(dir, file)).href)) as { register?: (p: Command) => void };
    mod.register?.(program);
  }
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = await buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    // Commander has already printed what was wrong (a missing option, an unknown flag or command) and the
    // usage. It exits 1 by default; a usage error is exit 2 here, like every other bad input (UserError).
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : USAGE_ERROR;
    if (err instanceof UserError) {
      process.stderr.write(`r1: ${err.message}\n`);
      return err.exitCode;
    }
    throw err;
  }
}

// Run directly (`tsx src/cli/main.ts`); bin/r1.js calls main() itself, whatever path npx gives it.
if (process.argv[1] && /[\\/]cli[\\/]main\.ts$/.test(process.argv[1])) {
  process.exitCode = await main(process.argv.slice(2));
}
