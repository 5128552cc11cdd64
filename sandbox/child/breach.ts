// Test-only entry (tests/sandbox-breach.test.ts): a sandbox process set up exactly as main.ts sets it
// up, runtime loaded and realm closed, that then runs each job's code as JavaScript: what a program
// that escaped its interpreter would hold, and more. The code gets a `require` and, as `raw`, the
// process functions the realm hardening removes (kill, dlopen), captured before it: an attacker who
// also undid the in-language layer, and, as `input`, the test's input. The tests show which walls
// hold against that. Setting `globalThis.retireWith` to a reason makes the process ask to retire
// after the program, as one whose clean-up failed does. Only tests start this entry (SandboxPool's
// `entry`, or a process of their own).
import { createRequire } from 'node:module';
import { constants } from 'node:os';
import { hardenRealm } from './harden.ts';
import { loadRunner } from './runner.ts';
import { serve } from './serve.ts';

const [language, runtimeDir] = process.argv.slice(2);
const runner = await loadRunner(language);
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
  taint: () => ((globalThis as { retireWith?: unknown }).retireWith as string | undefined) ?? null,
  async runProgram(job, ran) {
    for (let i = 0; i < job.tests.length; i++) {
      let out: string;
      try {
        const test = job.tests[i];
        out = String(await new AsyncFunction('require', 'raw', 'input', job.code)(require, raw, 'input' in test ? test.input : ''));
      } catch (e) {
        out = `denied: ${(e as Error)?.message ?? String(e)}`.slice(0, 300);
      }
      ran(i, { status: 'ok', out, result: null, detail: '' });
    }
  },
});
