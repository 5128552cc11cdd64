// Test-only entry (tests/sandbox-breach.test.ts): a sandbox process set up exactly as main.ts sets it
// up, runtime loaded and realm closed, that then runs each job's code as JavaScript with a `require`
// of its own: what a program that escaped its interpreter would hold, and more. The tests show which
// walls still hold against it. The pool never starts this entry.
import { createRequire } from 'node:module';
import { hardenRealm } from './harden.ts';
import { serve } from './serve.ts';

const [language, runtimeDir] = process.argv.slice(2);
const runner = language === 'python' ? await import('./py.ts') : await import('./js.ts');
await runner.prepare(runtimeDir);
const AsyncFunction = (async () => {}).constructor as new (...args: string[]) => (...a: unknown[]) => Promise<unknown>;
const require = createRequire(import.meta.url);
hardenRealm();
serve({
  taint: () => null,
  async runProgram(job, started, ran) {
    for (let i = 0; i < job.tests.length; i++) {
      started(i);
      let out: string;
      try {
        out = String(await new AsyncFunction('require', job.code)(require));
      } catch (e) {
        out = `denied: ${(e as Error)?.message ?? String(e)}`.slice(0, 300);
      }
      ran(i, { status: 'ok', out, result: null, detail: '' });
    }
  },
});
