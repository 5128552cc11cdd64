// Issue 29's first rule: a gold answer given as the completion is right, whatever its form. Checked
// over every reference in the repository's datasets (data/**) and test fixtures, over golds of the
// shapes that were rejected against themselves (display math, equations, text sentences, intervals,
// sets, matrices), and over generated golds; each gold is also wrapped the ways completions state an
// answer (<answer>, after </think>, \boxed{}, "The final answer is"), which go through extraction
// rather than the identity shortcut, and a near miss of each generated gold must score 0.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { judge } from '../rewards/accuracy.ts';

const REFERENCE_FIELDS = ['answer', 'solution', 'reference', 'ground_truth', 'gold'];
const root = join(import.meta.dirname, '..');

function jsonlFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? jsonlFiles(path) : path.endsWith('.jsonl') ? [path] : [];
  });
}

/** Every distinct reference in the repository's JSONL datasets and fixtures. */
function repositoryGolds(): string[] {
  const golds = new Set<string>();
  for (const file of [...jsonlFiles(join(root, 'data')), ...jsonlFiles(join(root, 'tests/fixtures'))]) {
    readFileSync(file, 'utf8')
      .split('\n')
      .forEach((line, i) => {
        if (!line.trim()) return;
        let row: Record<string, unknown>;
        try {
          row = JSON.parse(line) as Record<string, unknown>;
        } catch {
          throw new Error(`${file}:${i + 1}: not JSON`);
        }
        for (const f of REFERENCE_FIELDS) if (typeof row[f] === 'string' || typeof row[f] === 'number') golds.add(String(row[f]));
      });
  }
  return [...golds];
}

/** The gold as completions state it. Boxing is for one-line golds (a boxed worked solution is not a form). */
function statedAs(gold: string): string[] {
  const forms = [gold, `<answer>${gold}</answer>`, `<think>Working it out.</think>\n${gold}`];
  if (!gold.includes('\n')) forms.push(`<think>Working it out.</think>\nSo the result is \\boxed{${gold}}.`);
  return forms;
}

/** Forms of a gold that carries no math delimiters of its own. */
function statedInline(math: string): string[] {
  return [
    ...statedAs(math),
    `<think>Working.</think> Final Answer: The final answer is $${math}$. I hope it is correct.`,
    `We solve it step by step. Therefore the answer is \\(${math}\\).`,
    `We solve it step by step.\n\n$$\n${math}\n$$`,
    `We solve it step by step:\n\\[ ${math} \\]`,
  ];
}

const misses = (gold: string, forms: string[]) => forms.filter((c) => judge(c, gold).score !== 1);

describe('a gold verified against itself is right', () => {
  it('every reference in data/** and tests/fixtures, stated the ways completions state it', () => {
    const golds = repositoryGolds();
    expect(golds.length).toBeGreaterThan(500);
    const failed = golds.flatMap((g) => misses(g, statedAs(g)).map((c) => [g, c]));
    expect(failed).toEqual([]);
  });

  // The shapes issue 29 lists, and the other answer kinds the verifier reads.
  const SHAPES = [
    '$$[2, +\\infty)$$',
    '\\[ [2, +\\infty) \\]',
    '$$g(x) = 2x$$',
    '\\[ h(t) = -16t^2 + 5 \\]',
    'g(x) = 2x',
    'y = 2x + 1',
    '2x + 3y = 6',
    '\\text{The sequence diverges because its terms grow without bound.}',
    '$\\text{No, such a triangle does not exist.}$',
    '\\text{Evelyn}',
    'Evelyn',
    'yes',
    'No solution',
    '[2, +\\infty)',
    '(-\\infty, 3] \\cup (5, \\infty)',
    'x \\in (1, 2]',
    '-2 \\le x \\le 7',
    'x > 3',
    'x \\ne 2',
    '\\{1, 2, 3\\}',
    '1, 2, 3',
    '(1, 2)',
    '(3, \\frac{\\pi}{2})',
    '\\emptyset',
    '\\mathbb{R}',
    '\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}',
    '\\begin{pmatrix} 3 \\\\ 2 \\\\ -6 \\end{pmatrix}',
    '\\frac{7}{3}',
    '7/3',
    '-\\frac{1}{2}',
    '3\\sqrt{13}',
    '2 \\sin b \\cos a',
    '28\\%',
    '90^\\circ',
    '15\\mbox{ cm}^2',
    '\\$12.50',
    '1,234',
    '3.14',
    '1.5 \\times 10^{3}',
    'x = 2 \\text{ or } x = 3',
    'x + y = 5, x - y = 1',
    '(p, q) = (3, 2)',
    '|AB| = 1',
    '7:32',
    'B',
    '(C)',
    '\\text{(D)}',
    '204_5',
    'f(2) < f(1) < f(4)',
    '1 \\pm \\sqrt{19}',
    '\\infty',
    '$x = 11$',
    '$$\\frac{1}{3}$$',
    '\\boxed{42}',
    'So the answer is \\boxed{\\frac{3}{4}}.',
    'Janet makes 9 * 2 = 18.\n#### 18',
    'The roots are $\\boxed{2}$ and $\\boxed{3}$.',
    'n^2 + n',
    'a_n = 2n + 1',
    '\\sqrt[3]{2}',
  ];
  it.each(SHAPES)('%j', (gold) => {
    expect(misses(gold, statedAs(gold))).toEqual([]);
  });

  // Generated golds: numbers and fractions in intervals, sets, tuples, equations and matrices, with or
  // without display delimiters; a near miss (one number changed) of each scores 0 in every form.
  const num = fc.oneof(
    fc.integer({ min: -40, max: 40 }).map((n) => ({ tex: String(n), next: String(n + 1) })),
    fc
      .tuple(fc.integer({ min: 1, max: 30 }), fc.integer({ min: 2, max: 9 }))
      .map(([p, q]) => ({ tex: `\\frac{${p}}{${q}}`, next: `\\frac{${p + q}}{${q}}` })),
  );
  const shape = fc.oneof(
    fc
      .tuple(num, num, fc.constantFrom('(', '['), fc.constantFrom(')', ']'))
      .map(([a, b, o, c]) => [`${o}${a.tex}, ${b.tex}${c}`, `${o}${a.tex}, ${b.next}${c}`]),
    fc.tuple(num, num, num).map(([a, b, c]) => [`\\{${a.tex}, ${b.tex}, ${c.tex}\\}`, `\\{${a.tex}, ${b.tex}, ${c.next}\\}`]),
    fc.tuple(num, num).map(([a, b]) => [`(${a.tex}, ${b.tex})`, `(${a.next}, ${b.tex})`]),
    fc.tuple(num, num).map(([a, b]) => [`y = ${a.tex}x + ${b.tex}`, `y = ${a.tex}x + ${b.next}`]),
    fc
      .tuple(num, num, num, num)
      .map(([a, b, c, d]) => [
        `\\begin{pmatrix} ${a.tex} & ${b.tex} \\\\ ${c.tex} & ${d.tex} \\end{pmatrix}`,
        `\\begin{pmatrix} ${a.tex} & ${b.tex} \\\\ ${c.tex} & ${d.next} \\end{pmatrix}`,
      ]),
    num.map((a) => [a.tex, a.next]),
  );
  const wrap = fc.constantFrom(
    (m: string) => m,
    (m: string) => `$$${m}$$`,
    (m: string) => `\\[ ${m} \\]`,
    (m: string) => `$${m}$`,
  );

  it('generated golds, display-wrapped or not, match themselves in every form and not a near miss', () => {
    fc.assert(
      fc.property(shape, wrap, ([math, miss], w) => {
        const gold = w(math);
        const failed = [...misses(gold, statedAs(gold)), ...misses(gold, statedInline(math))];
        const accepted = statedInline(miss).filter((c) => judge(c, gold).score !== 0);
        expect({ gold, failed, accepted }).toEqual({ gold, failed: [], accepted: [] });
      }),
      { numRuns: 150 },
    );
  });
});
