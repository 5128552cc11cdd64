// The entry of a sandbox process. The pool (sandbox/process.ts) starts it under Node's permission
// model, inside bubblewrap where the machine allows, as `node [flags] main.mjs <language> <runtime dir>`.
// It loads the language's runtime, closes its own JavaScript realm, says `ready` on file descriptor 3,
// then runs one job (a program and its tests' inputs) per line of standard input, reporting `start`
// and `run` for each test. It never sees expected outputs and never judges a run.
import { hardenRealm } from './harden.ts';
import { loadRunner } from './runner.ts';
import { serve } from './serve.ts';

const [language, runtimeDir] = process.argv.slice(2);
const runner = await loadRunner(language);
await runner.prepare(runtimeDir);
hardenRealm();
serve(runner);
