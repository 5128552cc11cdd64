// The languages the sandbox runs, in one table: everything that differs between them (the runner
// inside the process, the runtime folder the process may read, whether it loads native addons, how
// often a process is recycled, the names programs and fences give it, the program `r1 sandbox --check`
// runs). The pool, launch, the child entries, the CLI and the code reward ask this table and never test
// a language's name; adding a language is an entry here and its runner in sandbox/child/ (plus tests
// and docs). It imports no module at load time (the runners are loaded by the child on use), so the
// code reward and the CLI read it without loading the sandbox.
import type { Job, Run } from './protocol.ts';

/** What a language's runner module (sandbox/child/) exports: the child entry loads the runtime with
 * `prepare`, closes its realm, then serves jobs with `runProgram` (child/serve.ts). */
export type LanguageRunner = {
  /** Loads the runtime from its folder (the one folder of it the process may read). */
  prepare(runtimeDir: string): Promise<void>;
  runProgram(job: Job, ran: (i: number, run: Run) => void): Promise<void>;
  /** Why the process must not take another program, or null. */
  taint(): string | null;
};

export type LanguageEntry = {
  /** The runner, loaded inside the sandbox process only (bundled into the child by launch.ts). */
  runner: () => Promise<LanguageRunner>;
  /** The npm package whose folder holds the runtime: with the bundled child code, all the process may
   * read; kept out of the bundle (the child imports it by path). */
  runtimePackage: string;
  /** Whether the process may load native addons (Node's --allow-addons). */
  addons: boolean;
  /** Programs a process runs before it is replaced (SandboxOptions.recycleAfter overrides). */
  recycleAfter: number;
  /** The extension of its source files; without its dot, also a name fences give it ('py'). */
  extension: string;
  /** Other names a fence or a dataset row gives it, lower case ('python3'). */
  aliases: readonly string[];
  /** The harness `r1 sandbox --check` runs: reads an integer from standard input and prints its double. */
  doubler: string;
};

/** The sandbox's languages, keyed by the name programs, jobs and the process's command line use. */
export const LANGUAGES = {
  /** JavaScript in isolated-vm isolates (child/js.ts): a fresh V8 context per test. */
  javascript: {
    runner: () => import('./child/js.ts'),
    runtimePackage: 'isolated-vm',
    addons: true,
    recycleAfter: 2000,
    extension: '.js',
    aliases: ['node', 'mjs'],
    doubler: 'console.log(require("fs").readFileSync(0, "utf8").trim() * 2)',
  },
  /** Python in pyodide (child/py.ts): the interpreter restored from its start-up snapshot per test. */
  python: {
    runner: () => import('./child/py.ts'),
    runtimePackage: 'pyodide',
    addons: false,
    recycleAfter: 5000,
    extension: '.py',
    aliases: ['python3'],
    doubler: 'print(int(input()) * 2)',
  },
} as const satisfies Record<string, LanguageEntry>;

export type Language = keyof typeof LANGUAGES;
export const LANGUAGE_NAMES = Object.keys(LANGUAGES) as Language[];

export const isLanguage = (v: unknown): v is Language => typeof v === 'string' && Object.hasOwn(LANGUAGES, v);

/** The names, for error messages: "javascript" or "python". */
export const languageList = (quote = ''): string => {
  const q = LANGUAGE_NAMES.map((n) => `${quote}${n}${quote}`);
  return q.length > 1 ? `${q.slice(0, -1).join(', ')} or ${q[q.length - 1]}` : q.join('');
};

/** A language from its name, an alias or its extension without the dot, any case ('Python3', 'JS');
 * null when the sandbox does not run it. */
export function languageNamed(name: unknown): Language | null {
  if (typeof name !== 'string') return null;
  const n = name.trim().toLowerCase();
  const named = (l: Language) =>
    l === n || LANGUAGES[l].extension.slice(1) === n || (LANGUAGES[l].aliases as readonly string[]).includes(n);
  return LANGUAGE_NAMES.find(named) ?? null;
}

/** A per-language record, each value made from its language (the pool's queues, process sets, stats). */
export const perLanguage = <T>(make: (l: Language) => T): Record<Language, T> =>
  Object.fromEntries(LANGUAGE_NAMES.map((l) => [l, make(l)])) as Record<Language, T>;
