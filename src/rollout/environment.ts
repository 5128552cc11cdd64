// A user environment in place of the sandboxed tools: a module of the user's own (a game, an API, a
// calculator) answers the model's calls, loaded by path like a reward (`environment:
// ./my-env.ts#Calculator`). It runs in the trainer's process, as a reward module does: it is the
// user's code, not the model's; the model's text reaches it only as the call's `code` string.
//
//   // my-env.ts: a running total the model adds numbers to
//   export class Counter {
//     step(state: { total?: number }, call: { tool: string; code: string }) {
//       const n = Number(call.code.trim());
//       if (!Number.isFinite(n)) return { output: '', error: `not a number: ${call.code}` };
//       state.total = (state.total ?? 0) + n;  // the trajectory's own state, kept across its calls
//       return String(state.total);            // the observation the model sees in <output>
//     }
//   }
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { UserError } from '../errors.ts';
import type { ToolCall } from '../../rewards/types.ts';
import { CountingRunner, type ToolLimits, type ToolSession } from './tools.ts';

/** What the model asked for: the tool (the r1 form's lang, the chat form's name) and its input. */
export type EnvironmentCall = { tool: string; code: string };

/** What the model sees: the text, or the text and an error message. */
export type Observation = string | { output: string; error?: string | null };

/** A user environment: `step` answers one call; `state` is the trajectory's own object, empty at its
 * start, kept across its calls and dropped with it. */
export interface Environment {
  step(state: Record<string, unknown>, call: EnvironmentCall): Observation | Promise<Observation>;
  close?(): void | Promise<void>;
}

/** Loads `path#Export` relative to `baseDir`: a class (constructed without arguments) or an object
 * with a `step` method. */
export async function loadEnvironment(spec: string, baseDir: string): Promise<Environment> {
  const hash = spec.lastIndexOf('#');
  const [file, exportName] = hash === -1 ? [spec, 'default'] : [spec.slice(0, hash), spec.slice(hash + 1) || 'default'];
  const path = resolve(baseDir, file);
  if (!existsSync(path)) throw new UserError(`tools.environment '${spec}': module not found: ${path}`);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  } catch (err) {
    throw new UserError(`tools.environment '${spec}': cannot load ${path}: ${(err as Error).message}`);
  }
  const value = mod[exportName];
  let env: unknown = value;
  if (typeof value === 'function') {
    try {
      env = new (value as new () => unknown)();
    } catch (err) {
      throw new UserError(`tools.environment '${spec}': constructing ${exportName} failed: ${(err as Error).message}`);
    }
  }
  if (typeof env !== 'object' || env === null || typeof (env as Environment).step !== 'function') {
    throw new UserError(
      `tools.environment '${spec}': ${path} export '${exportName}' is neither a class nor an object with a step(state, call) method; its exports: ${Object.keys(mod).join(', ') || '(none)'}`,
    );
  }
  return env as Environment;
}

/** Answers calls with a user environment; a step that throws, runs past the time limit or returns
 * something else than an observation gives the model an error message, never fails the step. */
export class EnvironmentRunner extends CountingRunner {
  constructor(
    private readonly env: Environment,
    private readonly limits: ToolLimits,
  ) {
    super();
  }

  async call(session: ToolSession, tool: string, code: string): Promise<ToolCall> {
    this.metrics.calls++;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'timeout'>((res) => (timer = setTimeout(() => res('timeout'), this.limits.timeoutS * 1000)));
    try {
      const got = await Promise.race([Promise.resolve().then(() => this.env.step(session.state, { tool, code })), late]);
      if (got === 'timeout') {
        this.metrics.timeouts++;
        return this.failed({ tool, code, output: '', error: `timed out after ${this.limits.timeoutS} s` });
      }
      const obs = typeof got === 'string' ? { output: got, error: null } : got;
      if (typeof obs !== 'object' || obs === null || typeof obs.output !== 'string') {
        return this.failed({ tool, code, output: '', error: 'the environment returned no observation (a string or { output, error })' });
      }
      const call = { tool, code, output: obs.output.slice(0, this.limits.outputChars), error: obs.error ?? null };
      return call.error ? this.failed(call) : call;
    } catch (e) {
      return this.failed({ tool, code, output: '', error: String((e as Error)?.message ?? e).slice(0, 300) });
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    await this.env.close?.();
  }
}
