// Countdown verification: an answer is right when it is an arithmetic expression that uses each given
// number exactly once and evaluates to the target. Any such expression counts, so there is no single
// reference to compare with. Parsed by mathjs and walked by hand: only numbers, + - * / and brackets.
import { parse, type MathNode } from 'mathjs';

const MAX_CHARS = 200;
const OPS = new Set(['+', '-', '*', '/']);

/** The numbers an expression uses and its value, or null when it is anything but plain arithmetic. */
export function arithmetic(expr: string): { numbers: number[]; value: number } | null {
  if (expr.length > MAX_CHARS) return null;
  let node: MathNode;
  try {
    node = parse(expr.replace(/×/g, '*').replace(/÷/g, '/').replace(/−/g, '-'));
  } catch {
    return null;
  }
  const numbers: number[] = [];
  const walk = (n: MathNode): number | null => {
    const x = n as MathNode & { op?: string; args?: MathNode[]; value?: unknown; content?: MathNode };
    if (n.type === 'ConstantNode' && typeof x.value === 'number') return (numbers.push(x.value), x.value);
    if (n.type === 'ParenthesisNode' && x.content) return walk(x.content);
    if (n.type !== 'OperatorNode' || !x.args || !OPS.has(x.op ?? '')) return null;
    if (x.args.length === 1 && x.op === '-') {
      const v = walk(x.args[0]);
      return v === null ? null : -v;
    }
    if (x.args.length !== 2) return null;
    const [a, b] = [walk(x.args[0]), walk(x.args[1])];
    if (a === null || b === null) return null;
    return x.op === '+' ? a + b : x.op === '-' ? a - b : x.op === '*' ? a * b : b === 0 ? null : a / b;
  };
  const value = walk(node);
  return value === null ? null : { numbers, value };
}

/** 1 when `answer` (optionally followed by "= target") uses exactly the given numbers, each once, and
 * equals the target; else 0. */
export function countdownScore(answer: string | null, numbers: readonly number[], target: number): 0 | 1 {
  if (answer === null) return 0;
  const lhs = answer.split('=')[0].trim();
  const got = arithmetic(lhs);
  if (got === null || Math.abs(got.value - target) > 1e-9) return 0;
  const want = [...numbers].sort((a, b) => a - b),
    used = [...got.numbers].sort((a, b) => a - b);
  return want.length === used.length && want.every((n, i) => n === used[i]) ? 1 : 0;
}

/** The row's Countdown puzzle, when it is one: `numbers` (a list of numbers) and a numeric `target`. */
export function countdownOf(row: Record<string, unknown>): { numbers: number[]; target: number } | null {
  const { numbers, target } = row;
  return Array.isArray(numbers) && numbers.every((n) => typeof n === 'number') && typeof target === 'number'
    ? { numbers: numbers as number[], target }
    : null;
}
