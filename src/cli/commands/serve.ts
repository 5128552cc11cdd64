import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { UserError } from '../../errors.ts';
import { flagNumber } from '../numbers.ts';

export function register(program: Command): void {
  program
    .command('serve')
    .description(
      'serve the runs folder on this machine: run pages, stage pages and samples, rendered fresh and updated live while a run writes',
    )
    .argument('[dir]', 'a runs folder or one run folder', 'runs')
    .option('-p, --port <n>', 'port (0: any free one)', '8765')
    .option('--host <host>', 'address to listen on; the default keeps it on this machine', '127.0.0.1')
    .action(async (dir: string, o: { port: string; host: string }) => {
      // Loaded on use: `r1 --help` and light commands stay fast.
      const { findRuns, serveRuns } = await import('../../report/serve.ts');
      if (!existsSync(dir)) throw new UserError(`no such folder: ${dir}`);
      const port = flagNumber('--port', o.port, { integer: true, min: 0 });
      const s = await serveRuns(dir, { port, host: o.host }).catch((e: NodeJS.ErrnoException) => {
        throw e.code === 'EADDRINUSE' ? new UserError(`port ${port} is taken; pick another with --port`) : e;
      });
      process.stdout.write(`serving ${dir} (${findRuns(dir).length} runs) at ${s.url} — Ctrl-C stops\n`);
      // Keep running until interrupted; the server holds the event loop open.
      await new Promise<void>((ok) => process.once('SIGINT', () => void s.close().then(ok)));
    });
}
