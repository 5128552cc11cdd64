#!/usr/bin/env node
// The `r1` command. TypeScript sources run through tsx, so user reward modules written in
// TypeScript load the same way, with no build step.
import { register } from 'tsx/esm/api';

register();
// `r1 ... | head`: a reader that stops early is not an error.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
