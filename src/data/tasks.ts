// Seeded generators of one-step arithmetic tasks (sums and differences) with their answers: the
// prompts of the GRPO demo and its evaluation, and the facts the pretraining corpus states.
import { Rng } from '../engine/rng.ts';

export type TaskKind = 'sum' | 'difference';

/** One arithmetic problem: `a op b = result`. Differences never go below zero. */
export type Problem = { kind: TaskKind; a: number; b: number; result: number };

/** A GRPO / eval row: the prompt, the reference answer, and the task name for per-task scores. */
export type TaskRow = { prompt: string; answer: string; task: TaskKind };

export type ProblemOptions = {
  /** Operands are drawn uniformly from [min, max] (inclusive). */
  min?: number;
  max?: number;
  /** Share of differences; the rest are sums. */
  differenceShare?: number;
};

/** A random problem. */
export function makeProblem(rng: Rng, o: ProblemOptions = {}): Problem {
  const min = o.min ?? 1,
    max = o.max ?? 50;
  const x = min + rng.int(max - min + 1),
    y = min + rng.int(max - min + 1);
  if (rng.next() < (o.differenceShare ?? 0)) {
    const [a, b] = x >= y ? [x, y] : [y, x];
    return { kind: 'difference', a, b, result: a - b };
  }
  return { kind: 'sum', a: x, b: y, result: x + y };
}

export const opSymbol = (p: Problem): string => (p.kind === 'sum' ? '+' : '-');

/** `a + b` or `a - b`. */
export const expression = (p: Problem): string => `${p.a} ${opSymbol(p)} ${p.b}`;

/** The question the GRPO prompts ask: "What is 23 + 45?". */
export const question = (p: Problem): string => `What is ${expression(p)}?`;

/** A prompt row for GRPO or eval. */
export function taskRow(p: Problem): TaskRow {
  return { prompt: question(p), answer: String(p.result), task: p.kind };
}

/** Stable key of a problem, to keep train and test sets disjoint. */
export const problemKey = (p: Problem): string => `${p.a}${opSymbol(p)}${p.b}`;

/** Key that ignores the order of a sum's operands (23 + 45 and 45 + 23 are one fact): what a held-out
 * set must keep out of the training data. */
export const factKey = (p: Problem): string => (p.kind === 'sum' && p.b < p.a ? `${p.b}+${p.a}` : problemKey(p));

/** `n` distinct problems drawn with `seed`, skipping any whose key (problemKey, or factKey) is in `exclude`. */
export function distinctProblems(
  seed: number,
  n: number,
  o: ProblemOptions = {},
  exclude: ReadonlySet<string> = new Set(),
  key = problemKey,
): Problem[] {
  const rng = new Rng(seed);
  const seen = new Set(exclude);
  const out: Problem[] = [];
  // The operand space is finite: give up after many misses rather than loop forever.
  for (let tries = 0; out.length < n && tries < n * 100; tries++) {
    const p = makeProblem(rng, o);
    if (seen.has(key(p))) continue;
    seen.add(key(p));
    out.push(p);
  }
  if (out.length < n) throw new Error(`only ${out.length} distinct problems for ${n} requested (widen the operand range)`);
  return out;
}

/** `n` distinct task rows (see distinctProblems). */
export function taskRows(seed: number, n: number, o: ProblemOptions = {}, exclude: ReadonlySet<string> = new Set()): TaskRow[] {
  return distinctProblems(seed, n, o, exclude).map(taskRow);
}

/** Another chain of thought: tens and units apart, then together ("20 + 40 = 60, 3 + 5 = 8, 60 + 8 = 68."). */
export function placeValueSteps(p: Problem): string {
  if (p.kind !== 'sum' || p.a < 10 || p.b < 10) return workedSteps(p);
  const tens = p.a - (p.a % 10) + p.b - (p.b % 10),
    units = (p.a % 10) + (p.b % 10);
  return `${p.a - (p.a % 10)} + ${p.b - (p.b % 10)} = ${tens}, ${p.a % 10} + ${p.b % 10} = ${units}, ${tens} + ${units} = ${p.result}.`;
}

/** A short chain of thought: add (or take away) the tens of b first, then its units. */
export function workedSteps(p: Problem): string {
  const op = opSymbol(p),
    tens = p.b - (p.b % 10),
    units = p.b % 10;
  if (tens === 0 || units === 0) return `${expression(p)} = ${p.result}.`;
  const mid = p.kind === 'sum' ? p.a + tens : p.a - tens;
  return `${p.a} ${op} ${tens} = ${mid}, then ${mid} ${op} ${units} = ${p.result}.`;
}
