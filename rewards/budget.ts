// A time budget for one answer comparison. Comparisons are synchronous (parsing, mathjs evaluation),
// so a timer cannot interrupt them: instead the parser and the comparison call `spend()` between
// steps, and the input is bounded before any step can grow (answer length, bracket depth, factorial
// and binomial arguments), so no single step between two checks can run long.

/** Thrown when a comparison is given up: its budget is used up ('timeout') or its input is past a
 * structural limit ('too_complex'). The reward scores 0 and counts the reason. */
export class BudgetExceeded extends Error {
  constructor(
    readonly reason: 'timeout' | 'too_complex',
    detail: string,
  ) {
    super(detail);
    this.name = 'BudgetExceeded';
  }
}

let deadline = Infinity;
let limitMs = Infinity;

/** Runs `fn` with a budget of `ms` milliseconds; a budget already running (a nested call) is kept. */
export function withBudget<T>(ms: number, fn: () => T): T {
  if (deadline !== Infinity) return fn();
  deadline = performance.now() + ms;
  limitMs = ms;
  try {
    return fn();
  } finally {
    deadline = Infinity;
    limitMs = Infinity;
  }
}

/** Throws BudgetExceeded when the running budget is over; free when none runs. */
export function spend(): void {
  if (deadline !== Infinity && performance.now() > deadline)
    throw new BudgetExceeded('timeout', `comparison took longer than ${limitMs} ms`);
}
