// Test-only entry (tests/sandbox-breach.test.ts): a sandbox process set up exactly as main.ts sets it
// up, runtime loaded and realm closed, that then runs each job's code as JavaScript: what a program
// that escaped its interpreter would hold, and more. The code gets a `require` and, as `raw`, the
// process functions the realm hardening removes (kill, dlopen), captured before it: an attacker who
// also undid the in-language layer. The tests show which walls hold against that. The pool never
// starts this entry.
import { createRequire } from 'node:module';
import { constants } from 'node:os';
import { hardenRealm } from './harden.ts';
import { serve } from './serve.ts';

const [language, runtimeDir] = process.argv.slice(2);
const runner = language === 'python' ? await import('./py.ts') : await import('./js.ts');
await runner.prepare(runtimeDir);
const AsyncFunction = (async () => {}).constructor as new (...args: string[]) => (...a: unknown[]) => Promise<unknown>;
const require = createRequire(import.meta.url);
const internalKill = (process as unknown as { _kill(pid: number, signal: number): number })._kill.bind(process);
const raw = {
  kill(pid: number, signal: keyof typeof constants.signals) {
    const errno = internalKill(pid, constants.signals[signal]);
    if (errno) throw Object.assign(new Error(`kill failed (errno ${errno})`), { code: errno });
  },
  dlopen: process.dlopen.bind(process),
};
hardenRealm();
serve({
  taint: () => null,
  async runProgram(job, ran) {
    for (let i = 0; i < job.tests.length; i++) {
      let out: string;
      try {
        out = String(await new AsyncFunction('require', 'raw', job.code)(require, raw));
      } catch (e) {
        out = `denied: ${(e as Error)?.message ?? String(e)}`.slice(0, 300);
      }
      ran(i, { status: 'ok', out, result: null, detail: '' });
    }
  },
});
