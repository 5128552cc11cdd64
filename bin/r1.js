#!/usr/bin/env node
// The `r1` command. TypeScript sources run through tsx, so user reward modules written in
// TypeScript load the same way, with no build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
