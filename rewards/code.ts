// Code reward: runs the last fenced code block of the completion against the row's tests in the
// sandbox (sandbox/index.ts, loaded on first use) and returns the share of tests passed.
import type { BuiltinReward, RewardBatch, RewardValue } from './types.ts';

export type CodeLanguage = 'javascript' | 'python';
export type CodeJob = { language: CodeLanguage; code: string; tests: unknown };
export type CodeResult = { passed: number; total: number; results: { status: string; detail?: string }[] };
/** What the reward needs from the sandbox pool; tests pass a fake. */
export type CodeRunner = { run(job: CodeJob): Promise<CodeResult>; destroy(): Promise<void> };

const FENCE_LANGUAGES: Record<string, CodeLanguage> = {
  js: 'javascript', javascript: 'javascript', node: 'javascript', mjs: 'javascript',
  py: 'python', python: 'python', python3: 'python',
};

/** A language name from a fence or a row ('Python', 'js'), or null when unsupported. */
export function codeLanguage(name: unknown): CodeLanguage | null {
  return typeof name === 'string' ? (FENCE_LANGUAGES[name.trim().toLowerCase()] ?? null) : null;
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

async function sandboxPool(options: Record<string, unknown>): Promise<CodeRunner> {
  // Loaded lazily: the other rewards work without the sandbox (and its workers) present.
  const url = new URL('../sandbox/index.ts', import.meta.url).href;
  const mod = (await import(url).catch((err: Error) => {
    throw new Error(`the code reward runs programs in the sandbox (sandbox/index.ts), which failed to load: ${err.message}`);
  })) as { SandboxPool: new (o: Record<string, unknown>) => CodeRunner };
  return new mod.SandboxPool({ workers: options.workers ?? undefined, limits: options.limits ?? undefined, isolation: options.isolation ?? undefined });
}

/** The code reward with an explicit runner factory (the sandbox pool by default). */
export function makeCodeReward(options: Record<string, unknown>, createRunner: () => Promise<CodeRunner> = () => sandboxPool(options)) {
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
        runner ??= createRunner();
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
  defaults: { language: null, workers: null, limits: null, isolation: null },
  doc: "share of the row's tests (tests or verification_info) passed by the last fenced code block, run in the sandbox",
  make: (options) => makeCodeReward(options),
};
