// Code reward: runs the last fenced code block of the completion against the row's tests in the
// sandbox (sandbox/index.ts, loaded on first use) and returns the share of tests passed. The
// languages and their names come from the sandbox's table (sandbox/languages.ts, which loads nothing).
import type { Isolation, Language, Limits, Reuse, SandboxOptions, SandboxPool } from '../sandbox/index.ts';
import { languageNamed } from '../sandbox/languages.ts';
import type { BuiltinReward, RewardBatch, RewardValue } from './types.ts';

/** What the reward needs from the sandbox pool; tests pass a fake. */
export type CodeRunner = Pick<SandboxPool, 'run' | 'destroy'>;

/** A language name from a fence or a row ('Python', 'js'), or null when the sandbox does not run it. */
export function codeLanguage(name: unknown): Language | null {
  return languageNamed(name);
}

/** The last fenced block (```lang ... ```) and its language tag; an unclosed last fence runs to the end. */
export function lastCodeBlock(text: string): { lang: string; code: string } | null {
  // Fences alternate open/close from the start of the text.
  const fences: number[] = [];
  for (let i = text.indexOf('```'); i !== -1; i = text.indexOf('```', i + 3)) fences.push(i);
  if (!fences.length) return null;
  const start = fences.length % 2 === 0 ? fences[fences.length - 2] : fences[fences.length - 1];
  const end = fences.length % 2 === 0 ? fences[fences.length - 1] : text.length;
  const nl = text.indexOf('\n', start);
  if (nl === -1 || nl > end) return null;
  return { lang: text.slice(start + 3, nl).trim(), code: text.slice(nl + 1, end).replace(/\s+$/, '') + '\n' };
}

/** The tests of a row: `tests`, or `verification_info` (open-r1's shape, { language, test_cases }). */
export function rowTests(row: Record<string, unknown>): { tests: unknown; language: unknown } | null {
  if (row.tests !== undefined && row.tests !== null) return { tests: row.tests, language: row.programming_language ?? row.language };
  let info = row.verification_info;
  if (typeof info === 'string') {
    try {
      info = JSON.parse(info);
    } catch {
      return { tests: info, language: row.language };
    }
  }
  if (info && typeof info === 'object') {
    const v = info as Record<string, unknown>;
    return { tests: v.test_cases ?? v.tests ?? v, language: v.language ?? row.programming_language ?? row.language };
  }
  return null;
}

/** The pool's options from the reward's (null: the pool's default). The pool checks isolation and
 * reuse and names a bad value; the rest is checked here. */
export function sandboxOptions(options: Record<string, unknown>): SandboxOptions {
  const { workers, limits, isolation, reuse } = options;
  if (workers != null && (typeof workers !== 'number' || !Number.isInteger(workers) || workers < 1))
    throw new Error(`option workers: a positive integer, got ${JSON.stringify(workers)}`);
  if (limits != null && (typeof limits !== 'object' || Array.isArray(limits)))
    throw new Error(`option limits: an object ({ timeMs, memoryMb, outputBytes }), got ${JSON.stringify(limits)}`);
  return {
    workers: (workers ?? undefined) as number | undefined,
    limits: (limits ?? undefined) as Partial<Limits> | undefined,
    isolation: (isolation ?? undefined) as Isolation | undefined,
    reuse: (reuse ?? undefined) as Reuse | undefined,
  };
}

/** A sandbox pool with these options, the sandbox loaded on first use. */
export async function sandboxPool(options: SandboxOptions): Promise<SandboxPool> {
  // Loaded lazily: the other rewards work without the sandbox (and its workers) present.
  const { SandboxPool } = await import('../sandbox/index.ts').catch((err: Error) => {
    throw new Error(`the code reward runs programs in the sandbox (sandbox/index.ts), which failed to load: ${err.message}`);
  });
  return new SandboxPool(options);
}

/** The code reward with an explicit runner factory (the sandbox pool by default), given the pool's
 * options read from the reward's. */
export function makeCodeReward(
  options: Record<string, unknown>,
  createRunner: (pool: SandboxOptions) => Promise<CodeRunner> = sandboxPool,
) {
  const pool = sandboxOptions(options);
  let runner: Promise<CodeRunner> | null = null;
  const fn = async (b: RewardBatch): Promise<RewardValue[]> =>
    Promise.all(
      b.completions.map(async (c, i) => {
        const spec = rowTests(b.rows[i] ?? {});
        if (spec === null) return null;
        const block = lastCodeBlock(c);
        if (block === null) return 0;
        const language = codeLanguage(block.lang) ?? codeLanguage(spec.language) ?? codeLanguage(options.language);
        if (language === null) return 0;
        runner ??= createRunner(pool);
        const res = await (await runner).run({ language, code: block.code, tests: spec.tests });
        return res.total > 0 ? res.passed / res.total : 0;
      }),
    );
  return Object.assign(fn, {
    close: async () => {
      if (runner) await (await runner).destroy();
      runner = null;
    },
  });
}

export const code: BuiltinReward = {
  defaults: { language: null, workers: null, limits: null, isolation: null, reuse: null },
  doc: "share of the row's tests (tests or verification_info) passed by the last fenced code block, run in the sandbox",
  make: (options) => makeCodeReward(options),
};
