// Tools a model calls in the middle of its reasoning (tool-integrated reasoning, as ToRL and ReTool):
// the code it writes runs in the sandbox and the output goes back into its context.
//
// Sessions. A trajectory's calls share state (a variable set in call 1 exists in call 2) and nothing
// of any other trajectory. The sandbox starts every program from a pristine interpreter (that wall is
// what keeps one program from seeing another's), so a session does not keep a live interpreter:
// each call runs the session's earlier successful cells again, then the new one, and only the new
// cell's output is returned. State is then exactly the trajectory's own, and the sandbox's walls are
// unchanged. The cost: call k re-executes cells 1..k-1 (quadratic in the calls of a trajectory; with
// max_turns 4 at most 1 + 2 + 3 + 4 = 10 cell runs for 4 calls), and a cell with side effects that
// differ between runs (random numbers, time) may see other values on a re-run. A cell that failed is
// not kept (its partial effects are lost, as if the interpreter had been reset after the error).
import { randomBytes } from 'node:crypto';
import { SandboxPool, type Language, type TestResult } from '../../sandbox/index.ts';
import type { ToolCall } from '../../rewards/types.ts';
import { TOOL_NAMES, type ToolName } from './recipe-check.ts';

export type { ToolName };

/** The language each tool a recipe may name (recipe-check.ts TOOL_NAMES) runs. */
export const TOOL_LANGUAGES = { python: 'python', javascript: 'javascript' } as const satisfies Record<ToolName, Language>;

/** The state of one trajectory's tool calls: its earlier cells that ran without error, per language
 * (sandboxed tools), and the object a user environment keeps its state in (environment.ts). */
export class ToolSession {
  private readonly cells: Record<Language, string[]> = { python: [], javascript: [] };
  readonly state: Record<string, unknown> = {};

  /** The cells a new call in `language` runs first. */
  history(language: Language): readonly string[] {
    return this.cells[language];
  }

  remember(language: Language, code: string): void {
    this.cells[language].push(code);
  }
}

/** A line no program prints by chance: the new cell's output is what follows it. */
function newMarker(): string {
  return `__r1_cell_${randomBytes(9).toString('hex')}__`;
}

/** The program of one call: the earlier cells (their output cut off at the marker), the marker, the
 * new cell. Python runs each cell through compile/exec so that a syntax error in the new cell is an
 * error of that cell alone and its traceback counts lines from the cell's own start. */
export function sessionProgram(language: Language, history: readonly string[], code: string, marker: string): string {
  if (language === 'python') {
    const cell = (c: string, i: number) => `exec(compile(${JSON.stringify(c)}, "<cell ${i + 1}>", "exec"))`;
    return [...history.map(cell), `print(${JSON.stringify(marker)}, flush=True)`, cell(code, history.length)].join('\n') + '\n';
  }
  // JavaScript: one script, so top-level let/const of an earlier cell stay visible; a cell is
  // separated by a newline and a semicolon so two cells never join into one statement.
  return [...history, `console.log(${JSON.stringify(marker)});`, code].join('\n;\n') + '\n';
}

/** The new cell's output: what the program printed after the marker. */
export function cellOutput(out: string, marker: string): string {
  const at = out.lastIndexOf(marker + '\n');
  return at < 0 ? out : out.slice(at + marker.length + 1);
}

/** What answers a trajectory's calls: the sandboxed tools (ToolRunner) or a user environment
 * (environment.ts). Every failure is an error message in the returned call, never an exception. */
export interface CallRunner {
  call(session: ToolSession, tool: string, code: string): Promise<ToolCall>;
  /** A call the model wrote wrongly: counted as a call with an error. */
  malformed(error: string): ToolCall;
  takeMetrics(): { calls: number; errors: number; timeouts: number };
  close(): Promise<void>;
}

/** The counting both runners share: calls, errors and timeouts since the last takeMetrics, and the
 * malformed call (counted as a call with an error). */
export abstract class CountingRunner implements CallRunner {
  protected metrics = { calls: 0, errors: 0, timeouts: 0 };

  abstract call(session: ToolSession, tool: string, code: string): Promise<ToolCall>;
  abstract close(): Promise<void>;

  /** A call the model wrote wrongly (no code to run): counted as a call with an error. */
  malformed(error: string): ToolCall {
    this.metrics.calls++;
    return this.failed({ tool: '', code: '', output: '', error: `malformed tool call: ${error}` });
  }

  protected failed(call: ToolCall): ToolCall {
    this.metrics.errors++;
    return call;
  }

  /** Calls, errors and timeouts since the last call; resets them. */
  takeMetrics(): { calls: number; errors: number; timeouts: number } {
    const m = this.metrics;
    this.metrics = { calls: 0, errors: 0, timeouts: 0 };
    return m;
  }
}

/** Limits of one tool call. */
export type ToolLimits = { timeoutS: number; outputChars: number };

/** Runs tool calls in a sandbox pool of its own (never the code reward's: no verdict shares a process
 * with a tool call). Every failure of the call becomes an error message, never an exception. */
export class ToolRunner extends CountingRunner {
  private readonly pool: SandboxPool;

  constructor(
    private readonly limits: ToolLimits,
    opts: { workers?: number; isolation?: 'strict' | 'standard' | 'process' } = {},
  ) {
    super();
    // The cap is on characters read back; truncation to tokens happens after (max_output_tokens).
    this.pool = new SandboxPool({
      workers: opts.workers,
      isolation: opts.isolation,
      limits: { timeMs: limits.timeoutS * 1000, outputBytes: limits.outputChars },
    });
  }

  /** Runs `code` with tool `tool` in the trajectory's session. */
  async call(session: ToolSession, tool: string, code: string): Promise<ToolCall> {
    this.metrics.calls++;
    const language = (TOOL_LANGUAGES as Record<string, Language>)[tool];
    if (!language) return this.failed({ tool, code, output: '', error: `unknown tool '${tool}': the tools are ${TOOL_NAMES.join(', ')}` });
    const marker = newMarker();
    let result: TestResult;
    try {
      result = await this.pool.execute(language, sessionProgram(language, session.history(language), code, marker));
    } catch (e) {
      return this.failed({ tool, code, output: '', error: `the sandbox could not run the call: ${(e as Error).message}` });
    }
    const output = cellOutput(result.out ?? '', marker);
    if (result.status === 'pass') {
      session.remember(language, code);
      return { tool, code, output, error: null };
    }
    if (result.status === 'timeout') this.metrics.timeouts++;
    return this.failed({ tool, code, output, error: describeFailure(result) });
  }

  close(): Promise<void> {
    return this.pool.destroy();
  }
}

/** The error message the model sees for a call that did not end normally. */
function describeFailure(r: TestResult): string {
  switch (r.status) {
    case 'timeout':
      return `timed out${r.detail ? ` (${r.detail})` : ''}`;
    case 'memory':
      return `out of memory${r.detail ? ` (${r.detail})` : ''}`;
    default:
      return r.detail || r.status;
  }
}
