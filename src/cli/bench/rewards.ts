// Rewards benchmark: scores generated rows (R1-template completions with numeric, fraction, LaTeX and
// expression answers, a third of them wrong) with accuracy + format, the R1-Zero reward, and reports
// rows per second. Bar: 10,000 rows in under 5 s.
import { Rng } from '../../engine/rng.ts';
import type { BenchOptions } from '../commands/bench.ts';
import { loadRewards, scoreBatch } from '../../../rewards/registry.ts';

const FILLER =
  'First we read the problem carefully and write down what is given. Then we simplify the expression step by step and check the arithmetic.';

/** n rows whose answers take the shapes a math task set has; the same rows for the same seed. */
export function benchRows(n: number, seed = 0): { prompts: string[]; completions: string[]; rows: Record<string, unknown>[] } {
  const rng = new Rng(seed);
  const int = (k: number) => Math.floor(rng.next() * k);
  const prompts: string[] = [],
    completions: string[] = [],
    rows: Record<string, unknown>[] = [];
  for (let i = 0; i < n; i++) {
    // Distinct numbers per row, so the parse cache does not flatter the rate.
    const a = 10 + i,
      b = int(9) + 2;
    const shapes: [ref: string, right: string, wrong: string][] = [
      [String(a * b), `${a * b}`, `${a * b + 1}`],
      [`\\frac{${a}}{${b}}`, `${a}/${b}`, `\\frac{${b}}{${a}}`],
      [`${(a / 4).toFixed(2)}`, `\\frac{${a}}{4}`, `${(a / 4 + 1).toFixed(2)}`],
      [`${b}\\sqrt{${a}}`, `\\sqrt{${a * b * b}}`, `${b + 1}\\sqrt{${a}}`],
      [`x^2 + ${2 * b}x + ${b * b}`, `(x+${b})^2`, `(x-${b})^2`],
      [`(${a}, ${b})`, `(${a},${b})`, `(${b},${a})`],
      [`The total is \\boxed{${a + b}} dollars.`, `\\$${a + b}`, `${a - b}`],
      [(a * 1000).toLocaleString('en-US'), `${a * 1000}`, `${a * 100}`],
    ];
    const [ref, right, wrong] = shapes[i % shapes.length];
    const answer = int(3) === 0 ? wrong : right;
    const think = Array.from({ length: 1 + int(4) }, () => FILLER).join(' ');
    // Most completions follow the template; some box the answer instead, some break the tags.
    const completion =
      i % 10 === 7
        ? `${think} So the answer is \\boxed{${answer}}.`
        : i % 10 === 9
          ? `<think>${think}<answer>${answer}</answer>`
          : `<think>\n${think}\n</think>\n<answer>\n${answer}\n</answer>`;
    prompts.push(`Problem ${i}: compute the value. Assistant: `);
    completions.push(completion);
    rows.push({ answer: ref, correct: answer === right });
  }
  return { prompts, completions, rows };
}

export async function run(opts: BenchOptions): Promise<Record<string, unknown>[]> {
  const n = opts.quick ? 2000 : 10_000;
  const batch = benchRows(n);
  const rewards = await loadRewards([{ name: 'accuracy' }, { name: 'format' }], process.cwd());
  const t0 = performance.now();
  const res = await scoreBatch(rewards, batch);
  const seconds = (performance.now() - t0) / 1000;
  return [
    {
      bench: 'rewards',
      rewards: 'accuracy+format',
      rows: n,
      seconds: Number(seconds.toFixed(3)),
      rows_per_s: Math.round(n / seconds),
      accuracy_mean: Number(res.stats.accuracy.mean.toFixed(4)),
      format_mean: Number(res.stats.format.mean.toFixed(4)),
      // Rows the accuracy reward got wrong against how they were generated: 0 unless it has a bug.
      misjudged: batch.rows.filter((r, i) => (r.correct ? 1 : 0) !== res.byFunction.accuracy[i]).length,
      bar_seconds: 5 * (n / 10_000),
    },
  ];
}
