// The accuracy reward as a math verifier, case by case: [gold, completion, expected score]. Each group
// says where its convention comes from: Math-Verify's documentation and test suite (huggingface/
// Math-Verify, the verifier open-r1 and TRL use; cases here are our own, written to its conventions),
// a dataset's answer format, or issue 13's stated conventions (exact values equal, a decimal gold
// allows rounding to its own places, tuples ordered, sets unordered, intervals by bracket, units and
// \text{} around a number ignored). Arguments are in Math-Verify's order: gold first.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { accuracy, judge } from '../rewards/accuracy.ts';
import { loadRewards, rewardSpecProblem, scoreBatch } from '../rewards/registry.ts';
import { readRows } from '../src/data/io.ts';

type Case = [gold: string, completion: string, expected: 0 | 1];
const check = (cases: Case[]) =>
  it.each(cases)('gold %j, completion %j -> %i', (gold, completion, expected) => {
    expect(judge(completion, gold).score).toBe(expected);
  });

describe('number forms', () => {
  // Math-Verify tests/test_all.py test_number_extraction: thousands separators (commas, spaces),
  // decimal comma where unambiguous, leading-dot decimals, currency and units around a number.
  check([
    ['7425000', '7,425,000', 1],
    ['1000', '1 000', 1],
    ['1234567', 'The count is 1 234 567', 1],
    ['1000', '1000.0', 1],
    ['1000.0', '1,000.0', 1],
    ['1000.99', '1000,99', 1],
    ['1,22', '1.22', 1],
    ['2.74', 'Soucis : 2,74 $ a..', 1],
    ['0.4', '.4', 1],
    ['-0.5', '-.5', 1],
    ['1000.99', '1,000.99', 1],
    ['1000.99', '$1,000.99', 1],
    ['1000.99', '1,000.99$', 1],
    ['1000.99', 'the number is not 10 which is 1,000.99€', 1],
    ['1000.99', 'so the number is 10 which is 1,000.99m²', 1],
    ['0,111', '0.111', 1],
    ['111', '0,111', 0],
    ['1234', '1,234', 1],
    ['1.234', '1,234', 0], // 1,234 is one thousand two hundred thirty-four
    ['1000', '1 000 000', 0],
    ['1000', '10,000', 0],
    ['32349', '\\boxed{32,\\! 349}', 1],
    ['11111111100', '\\boxed{11,\\! 111,\\! 111,\\! 100}', 1],
    ['32349', '\\boxed{32, 349}', 0], // a comma and a space: two numbers
    ['14916', '\\boxed{14{,}916}', 1],
    ['1000000', '\\boxed{1\\,000\\,000}', 1],
    ['1000001', '1000000', 0], // exact values: large integers are not rounded
    ['123456789', '123456788', 0],
    ['2', 'AZYUK2A', 0], // a number inside a word is not an answer
    ['5', 'The code is X5Y', 0],
    ['-5', '-5', 1],
    ['-5', '5', 0],
    ['+7', '7', 1],
    ['004', '4', 1],
  ]);
  // Scientific notation: Math-Verify parses it as a number; issue 13 lists it.
  check([
    ['1500', '1.5e3', 1],
    ['1500', '1.5E3', 1],
    ['1500', '1.5 \\times 10^3', 1],
    ['1500', '1.5 \\times 10^{3}', 1],
    ['0.00015', '1.5 \\times 10^{-4}', 1],
    ['0.00015', '1.5e-4', 1],
    ['3\\times10^8', '300000000', 1],
    ['6.02 \\times 10^{23}', '6.02e23', 1],
    ['15000', '1.5e3', 0],
    ['1500', '1.5 \\cdot 10^{4}', 0],
  ]);
  // Percent: Math-Verify test_percent_notation (28\% is 28 percent, pct, %, and the bare 28 or 0.28).
  check([
    ['28\\%', '28 percent', 1],
    ['28\\%', '28 pct', 1],
    ['28\\%', '28 %', 1],
    ['28\\%', '$28$ %', 1],
    ['28\\%', '\\boxed{28} pct', 1],
    ['28\\%', '\\boxed{28 percent}', 1],
    ['28\\%', '\\boxed{28 percentage}', 1],
    ['28\\%', '\\boxed{28}', 1],
    ['28\\%', '\\boxed{0.28}', 1],
    ['0.28', '\\boxed{28\\%}', 1],
    ['20\\%', '\\boxed{\\frac{1}{5}}', 1],
    ['28\\%', '\\boxed{29\\%}', 0],
    ['28\\%', '\\boxed{2.8}', 0],
    ['50\\%', '\\boxed{5}', 0],
  ]);
  // Fractions: Math-Verify test_simple_fraction_notation and test_latex_notation (a/b, \frac, \dfrac,
  // \tfrac, \cfrac, malformed \frac13 and \frac3{3}).
  check([
    ['10/9', '\\boxed{\\frac{10}{9}}', 1],
    ['-10/9', '\\boxed{-\\frac{10}{9}}', 1],
    ['$1/3$', '$\\frac13 $', 1],
    ['$1$', '$\\frac3{3} $', 1],
    ['$\\sqrt{3}$', '$\\sqrt3 $', 1],
    ['$1/3$', '$\\cfrac{1}{3} $', 1],
    ['$1/3$', '$\\dfrac{1}{3} $', 1],
    ['$1/3$', '$\\tfrac{1}{3} $', 1],
    ['$1/3$', '$ 1/3 $', 1],
    ['$1/3$', '$\\left( \\frac{1}{3} \\right)$', 1],
    ['$1/3$', '$\\boxed{\\frac{1}{3}}$', 1],
    ['\\frac{3}{4}', '\\boxed{3/4}', 1],
    ['\\frac{3}{4}', '\\boxed{0.75}', 1],
    ['\\frac{3}{4}', '\\boxed{4/3}', 0],
    ['\\frac{3}{4}', '\\boxed{\\frac{3}{5}}', 0],
    ['\\dfrac{7}{2}', '\\boxed{3\\frac{1}{2}}', 1],
    ['-\\frac{1}{2}', '\\boxed{\\frac{-1}{2}}', 1],
    ['\\frac{1}{2}', '\\boxed{-\\frac{1}{2}}', 0],
    ['\\frac{14}{3}', '$=2+\\frac{5}{3}+1=\\boxed{\\frac{14}{3}}$', 1],
    ['\\frac{3}{56}', 'so \\[p(8) = \\frac{q(8) + 8}{8^2 - 1} = \\boxed{\\frac{3}{56}}.\\]', 1],
  ]);
  // Rounding: issue 13 (a decimal gold allows rounding to its own places; exact values equal) and
  // Math-Verify's float_rounding = 6 (a prediction given to 6 places stands for the exact value).
  check([
    ['\\frac{1}{12}', '$0.0833333333333333$', 1],
    ['\\frac{1}{3}', '\\boxed{0.333333}', 1],
    ['\\frac{1}{3}', '\\boxed{0.33}', 0],
    ['\\frac{2}{3}', '\\boxed{0.67}', 0],
    ['0.33', '\\boxed{\\frac{1}{3}}', 1],
    ['0.33', '\\boxed{0.333}', 1],
    ['0.33', '\\boxed{0.3}', 0],
    ['0.33', '\\boxed{0.34}', 0],
    ['3.14', '\\boxed{\\pi}', 1],
    ['3.14', '\\boxed{3.14159}', 1],
    ['\\pi', '\\boxed{3.14}', 0],
    ['16386.17', '\\boxed{16386.1695}', 1],
    ['16386.17', '\\boxed{16386.16}', 0],
    ['7.78', 'Cost = $\\frac{7}{9} \\times 10 = 7.777$, so \\boxed{7.78}', 1],
    ['2.5', '\\boxed{2.50}', 1],
    ['2.5', '\\boxed{2.6}', 0],
    ['3', '\\boxed{3.4}', 0],
    ['3', '\\boxed{2.9999999}', 1],
    ['\\sqrt{17}', '\\boxed{4.123106}', 1],
    ['4.123105625617661', '\\boxed{\\sqrt{17}}', 1],
    ['4', '\\boxed{4\\sqrt{2}}', 0],
  ]);
});

describe('relations', () => {
  // Math-Verify test_relations_math: the last right-hand side of a chain counts, \approx, a bare value
  // against `k = 1` both ways, an equation (not a label) on the gold side is not its right side.
  check([
    ['$x = 11$', '$x = 5+5+1 = 7 =11$', 1],
    ['$11$', '$x = 5 + 5 + 1 = 11$', 1],
    ['$11$', '$x = 5 + 5 + 1 = 12$', 0],
    ['$x = 1/3$', '$x = 5+5+1 = 1/3 \\approx 11$', 1],
    ['$11$', '$x=11$', 1],
    ['$11$', '$x\\approx11$', 1],
    ['$11$', '$x\\approx12$', 0],
    ['$1/3$', '$x=1/3\\approx0.33$', 1],
    ['$k=1$', '$1$', 1],
    ['$1$', '$k=1$', 1],
    ['$k=1$', '$2$', 0],
    ['$z = 1 + 1 = 2$', '$z = 3+3 = 2$', 1],
    ['$1 = \\zeta = x = 0$', '$0$', 1],
    ['$7 = 11a+c$', '$11a+c$', 0],
    ['$a +3z = 0$', '$0$', 0],
    ['$2x + z = 1$', '$1$', 0],
    ['$a^2 + b = 0$', '$0$', 0],
    ['$2x+4y-3=0$', '$y=-\\frac{1}{2}x+\\frac{3}{4}$', 1],
    ['$x^2/4 + y^2/3 = 1$', '$x^2/16 + y^2/12 = 1/4$', 1],
    ['$34x+45y-20z+100=0$', '$-34x-45y+20z-100=0$', 1],
    ['$y = 2x + 1$', '$y = 2x - 1$', 0],
    ['$x - 2y + z - 1 = 0$', 'the plane is $\\boxed{x - 2y + z = 1}$', 1],
  ]);
  // Inequalities: Math-Verify test_relations_math (\geq, \lt, <=, \gt, \neq, flipped sides, negated).
  check([
    ['$x >= 5$', 'Therefore $x \\geq 5$ is the solution.', 1],
    ['$x < 3$', 'We find that $x \\lt 3$.', 1],
    ['$x \\leq 2$', 'Thus $x <= 2$ is our answer.', 1],
    ['$x > 5$', 'Therefore $x \\gt 5$ is the solution.', 1],
    ['$x != 3$', 'We find that $x \\neq 3$.', 1],
    ['$x > 5$', 'Therefore $x < 5$ is the solution.', 0],
    ['$x \\geq 5$', 'The solution is $x \\leq 5$', 0],
    ['$x \\leq 5$', '$5 \\geq x$', 1],
    ['$x \\geq 5$', '$5 \\leq x$', 1],
    ['$x < 1$', '$-x > -1$', 1],
    ['$x < 1$', '$x > -1$', 0],
    ['$x <= 1$', '$-x >= -1$', 1],
    ['$f(2) < f(1) < f(4)$', 'Hence, $\\boxed{f(2) < f(1) < f(4)}.$', 1],
  ]);
  // Labelled answers: Math-Verify tests/test_numina_cases.py ((p, q) = (3, 2), AB = 4, ratios 7:32,
  // \frac{NO}{BO} = ...); issue 13 (|AB| = 1 against the bare value).
  check([
    ['$(p,q)=(3,2)$', '$(3,2)$', 1],
    ['$(p,q)=(3,2)$', '$\\boxed{(3, 2)}$', 1],
    ['$(p,q)=(3,2)$', '$\\boxed{(2, 3)}$', 0],
    ['$(p,q,r)=(3,2,7)$', '$(3,2,7)$', 1],
    ['$|AB| = 1$', '\\boxed{1}', 1],
    ['$|AB| = 1$', '\\boxed{2}', 0],
    ['$1$', '\\boxed{|AB| = 1}', 1],
    ['$AB=4,CD=5$', '$\\boxed{4, 5}$', 1],
    ['$AB=4,CD=5$', '$\\boxed{4, 6}$', 0],
    ['$S_{MBCN}:S=7:32$', '$\\boxed{7:32}$', 1],
    ['$V_{1}:V_{2}=11:21$', '$11:21$', 1],
    ['$V_{1}:V_{2}=11:21$', '$21:11$', 0],
    ['$7:32$', '\\boxed{\\frac{7}{32}}', 1],
    ['$2:3$', '\\boxed{4:6}', 1],
    ['$\\frac{NO}{BO}=\\frac{1}{\\sqrt{6}}$', '$\\frac{1}{\\sqrt{6}}$', 1],
    ['$\\frac{NO}{BO}=\\frac{1}{\\sqrt{6}}$', '$\\frac{1}{\\sqrt{5}}$', 0],
    ['$\\angle ABC = 90^\\circ$', '\\boxed{90}', 1],
    ['$f(2) = 7$', '\\boxed{7}', 1],
    ['$a_{10} = 55$', 'so $a_{10} = \\boxed{55}$', 1],
  ]);
});

describe('sets and tuples', () => {
  // Math-Verify tests/test_numina_cases.py and test_all.py: several \boxed{} against one set, lists
  // joined by "and"/"or", unordered sets, ordered tuples, `;`-separated tuples, solution sets.
  check([
    ['$\\boxed{1}\\boxed{2}$', '$\\boxed{1,2}$', 1],
    ['\\(\\boxed{1}\\) and \\(\\boxed{-2}\\).', '$\\boxed{-2,1}$.', 1],
    [
      '$(2,1),(1,2),(-1,-20),(-20,-1)$',
      'solutions are:\n\n\\[\n\\boxed{(1, 2)}, \\boxed{(2, 1)}, \\boxed{(-1, -20)}, \\boxed{(-20, -1)}\n\\]',
      1,
    ],
    ['$(2,1),(1,2),(-1,-20),(-20,-1)$', '\\boxed{(1, 2)}, \\boxed{(2, 1)}, \\boxed{(-1, -20)}', 0],
    ['$-2,1$', 'the only integer roots are $\\boxed{-2,1}.$', 1],
    ['$-2,1$', '$\\boxed{1,-2}$', 1],
    ['$-2,1$', '$\\boxed{-2,2}$', 0],
    ['$1$ and $2$ and $3$', '$\\boxed{1,2,3}$', 1],
    ['$1$ and $2$ and $3$', '$\\boxed{1,2}$', 0],
    ['$21,16$ or $11$', '$21,16,11$', 1],
    ['\\(\\boxed{6 \\text{ and } 8}\\)', '$\\boxed{6,8}$', 1],
    ['12\\text{ and }13', 'is located between $\\boxed{12 $ and $13 }. $', 1],
    ['$(11,7)or(7,11)$', '$\\boxed{(7,11),\\ (11,7)}$', 1],
    ['$p=5,q=2;p=7,q=2$', '$(5,2),(7,2)$', 1],
    ['$p=5,q=2;p=7,q=2$', '$(5,2),(2,7)$', 0],
    ['$-12;-11;-10;-8;-7;-6$', '$\\boxed{\\{-12, -11, -10, -8, -7, -6\\}}$', 1],
    ['$-12;-11;-10;-8;-7;-6$', '$\\boxed{\\{-12, -11, -10, -8, -7\\}}$', 0],
    ['$(0;0;0),(0;-2;0),(4;0;6)$', '\\boxed{(4, 0, 6), (0, -2, 0), (0, 0, 0)}', 1],
    ['$(0;0;0),(0;-2;0),(4;0;6)$', '\\boxed{(4, 6, 0), (0, -2, 0), (0, 0, 0)}', 0],
    [
      '$(37,3,3,13),(17,3,3,7),(3,37,3,13),(3,17,3,7),(3,3,2,3)$',
      '$\\boxed{(3, 37, 3, 13), (3, 17, 3, 7), (3, 3, 2, 3), (3,17,3,7), (17,3,3,7), (37,3,3,13)}$',
      1,
    ],
    [
      '$(37,3,3),(17,3,3,7),(3,37,3,13),(3,17,3,7),(3,3,2,3)$',
      '$\\boxed{(3, 37, 3, 13), (3, 17, 3, 7), (3, 3, 2, 3), (3,17,3,7), (17,3,3,7), (37,3,3,13)}$',
      0,
    ],
    ['\\boxed{x = -5,\\ p = \\frac{14}{3}} ', '$\\boxed{-5, \\frac{14}{3}}$', 1],
    ['\\boxed{a=4,\\,-8,\\,-10}', '$\\boxed{-10,-8,4}$', 1],
    ['\\boxed{W(n) = 1 \\text{ and } W(n) = -1}', '$W(x)=1orW(x)=-1$', 1],
    ['\\[ \\boxed{p = -1 \\text{ and } p = \\dfrac{15}{8}} \\]', '$p=-1,p=\\frac{15}{8}$', 1],
    ['$(3,1)$', '${1,3}$', 0],
    ['$(1,3)$', '${1,3}$', 1],
    ['\\{1, 2, 3\\}', '\\boxed{\\{3, 1, 2\\}}', 1],
    ['\\{1, 2, 3\\}', '\\boxed{\\{3, 1, 4\\}}', 0],
    ['(1, 2, 3)', '\\boxed{(3, 2, 1)}', 0],
    ['(1, 2, 3)', '\\boxed{(1, 2, 3)}', 1],
    ['\\{1\\pm\\sqrt{5},-2\\}', 'so the answer is $\\boxed{\\{1\\pm\\sqrt{5},-2\\}}.$', 1],
    ['1 \\pm \\sqrt{19}', '$x = \\boxed{1 \\pm \\sqrt{19}}.$', 1],
    ['3 \\pm 2 \\sqrt{2}', 'the roots are $x = \\boxed{3 \\pm 2 \\sqrt{2}}.$', 1],
    ['3 \\pm 2 \\sqrt{2}', '\\boxed{3 + 2\\sqrt{2}, 3 - 2\\sqrt{2}}', 1],
    ['3 \\pm 2 \\sqrt{2}', '\\boxed{3 + 2\\sqrt{2}}', 0],
    ['$(6,31,-1)$', 'we find $(p,q,r) = \\boxed{(6,31,-1)}.$', 1],
    ['$(3, \\frac{\\pi}{2})$', 'the polar coordinates are $\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}.$', 1],
    ['$(1,\\frac{9}{2})$', '$(1,4.5)$', 1],
    ['$(1,\\frac{9}{2})$', '$(4.5,1)$', 0],
    ['$\\left(\\frac{4}{5},\\frac{1}{5}\\right)$', '\\boxed{\\left( \\frac{4}{5}, \\frac{1}{5} \\right)}', 1],
    ['\\emptyset', '\\boxed{\\varnothing}', 1],
    ['\\emptyset', '\\boxed{\\{0\\}}', 0],
    ['\\{5\\}', '\\boxed{5}', 1],
    ['x = 2 \\text{ or } x = 3', '\\boxed{3, 2}', 1],
    ['x = 2 \\text{ or } x = 3', '\\boxed{2}', 0],
  ]);
});

describe('intervals and inequalities', () => {
  // Math-Verify test_sets_handling and test_set_rel_assymetry (x \in [-2, 7] and -2 \le x \le 7);
  // issue 13: intervals compared by bracket, unions in any order, (1, +\infty).
  check([
    ['$[0,1)$', '$[0,1)$', 1],
    ['$[0,9)$', '$[0,1)$', 0],
    ['$(0,9)$', '$[0,9)$', 0],
    ['$1$', '$-[0,1)$', 0],
    ['$-2 \\le x \\le 7$', '$x \\in [-2,7]$', 1],
    ['$x \\in [-2,7]$', '$-2 \\le x \\le 7$', 1],
    ['$x \\in [-2,7]$', '$-2 < x \\le 7$', 0],
    ['$[-2,7]$', '\\boxed{x \\in [-2, 7]}', 1],
    ['$(1, \\infty)$', '\\boxed{(1, +\\infty)}', 1],
    ['$(1, +\\infty)$', '\\boxed{x > 1}', 1],
    ['$(1, +\\infty)$', '\\boxed{x \\ge 1}', 0],
    ['$(-\\infty, 3]$', '\\boxed{x \\le 3}', 1],
    ['$(-\\infty, 3]$', '\\boxed{(-\\infty, 3)}', 0],
    ['$0<f(x)<1$', '$(0,1)$', 1],
    [
      '$[-1, -\\frac{1}{2}) \\cup (-\\frac{1}{2}, 0) \\cup (0, 1) \\cup (1, \\infty)$',
      'The solution set is $\\boxed{[-1, -\\tfrac12) \\cup (-\\tfrac12, 0) \\cup (0, 1) \\cup (1, \\infty)}.$',
      1,
    ],
    ['$(2, 12) \\cup (12, 102)$', 'Thus, the answer is $x \\in \\boxed{(2,12) \\cup (12,102)}$', 1],
    ['$(2, 12) \\cup (12, 102)$', '$x \\in \\boxed{(2,12) \\cup [12,102)}$', 0],
    ['$(-\\infty, -4] \\cup [4, \\infty)$', '\\boxed{[4, \\infty) \\cup (-\\infty, -4]}', 1],
    ['x \\in \\boxed{\\{-1\\} \\cup [0,7)}.$', 'x \\in \\boxed{\\{-1\\} \\cup [0,7)}.$', 1],
    ['$[-4,0]$', 'the values of \\( k \\) are: \\[ \\boxed{[-4, 0]} \\]', 1],
    ['$(-6, 10)$', 'Final Answer: The final answer is \\((-6, 10)\\). I hope it is correct.', 1],
    ['$(\\frac{3}{5},\\frac{8}{3}]$', '$(0.6,\\frac{8}{3}]$', 1],
    ['$(\\frac{3}{5},\\frac{8}{3}]$', '$(0.6,\\frac{8}{3})$', 0],
  ]);
});

describe('matrices', () => {
  // Math-Verify test_matrix_extraction and test_complex_math_expressions: pmatrix, bmatrix, array inside
  // \left[ \right], entries compared as expressions.
  check([
    ['$\\begin{pmatrix}1 & 0 \\\\ 0 & 1\\end{pmatrix}$', 'The identity matrix is $ \\begin{pmatrix}1 & 0 \\\\ 0 & 1\\end{pmatrix} $.', 1],
    ['$\\begin{bmatrix}0 & 0 \\\\0 & 0\\end{bmatrix}$', 'Here is a zero matrix: $ \\begin{pmatrix}0 & 0 \\\\0 & 0\\end{pmatrix} $', 1],
    [
      '$\\begin{pmatrix}1 & 2 \\\\3 & 4\\end{pmatrix}$',
      'Special matrix: $ \\left[\\begin{array}{cc}1 & 2 \\\\3 & 4\\end{array}\\right] $',
      1,
    ],
    [
      '$\\begin{pmatrix}\\frac{1}{2} & \\frac{3}{4} \\\\ \\frac{5}{6} & \\frac{7}{8}\\end{pmatrix}$',
      '$ \\begin{pmatrix}\\frac{1}{2} & \\frac{3}{4} \\\\ \\frac{5}{6} & \\frac{7}{8}\\end{pmatrix} $',
      1,
    ],
    ['$\\begin{pmatrix}1 & 2 \\\\ 3 & 4\\end{pmatrix}$', 'The matrix is $\\begin{pmatrix}1 & 2 \\\\ 3 & 5\\end{pmatrix}$', 0],
    ['$\\begin{pmatrix}1 & 2 \\\\ 3 & 4\\end{pmatrix}$', '$\\begin{pmatrix}1 & 3 \\\\ 2 & 4\\end{pmatrix}$', 0],
    [
      '\\boxed{\n\\begin{pmatrix} 0 & 3 \\\\ 0 & -1 \\end{pmatrix}\n}.',
      '\\boxed{\n\\begin{pmatrix} 0 & 3 \\\\ 0 & -1 \\end{pmatrix}\n}.',
      1,
    ],
    ['$\\begin{pmatrix}-\\frac{7}{4}&-2\\\\4&\\frac{1}{4}\\\\\\end{pmatrix}$', '$\\begin{pmatrix}-1.75&-2\\\\4&0.25\\end{pmatrix}$', 1],
    [
      '$\\begin{pmatrix}\\frac{1}{3\\sqrt[3]{x}^2}&0\\\\-\\sin(x)&0\\end{pmatrix}$',
      '$\\begin{pmatrix}\\frac{1}{3x^{2/3}}&0\\\\-\\sin(x)&0\\end{pmatrix}$',
      1,
    ],
    ['$\\begin{pmatrix}2x & 1\\\\ 0 & x^2\\end{pmatrix}$', '\\boxed{\\begin{bmatrix}x+x & 1\\\\ 0 & x\\cdot x\\end{bmatrix}}', 1],
    ['$\\begin{pmatrix}2x & 1\\\\ 0 & x^2\\end{pmatrix}$', '\\boxed{\\begin{bmatrix}2x & 1\\\\ 0 & 2x\\end{bmatrix}}', 0],
    ['$\\begin{pmatrix} 3 \\\\ 2 \\\\ -6 \\end{pmatrix}$', '\\boxed{\\begin{pmatrix} 3 \\\\ 2 \\\\ -6 \\end{pmatrix}}', 1],
    ['$\\begin{pmatrix} 3 \\\\ 2 \\\\ -6 \\end{pmatrix}$', '\\boxed{\\begin{pmatrix} 3 & 2 & -6 \\end{pmatrix}}', 0],
  ]);
});

describe('text answers and units', () => {
  // Math-Verify test_latex_notation_math and test_numina_cases (\text{Evelyn}, 90^\circ, 15\mbox{ cm}^2,
  // 125 miles, \text{odd}); issue 13: units and \text{} around a number ignored, trailing periods.
  check([
    ['$\\text{Evelyn}$', 'Therefore, $\\boxed{\\text{Evelyn}}$ is our answer.', 1],
    ['$\\text{Evelyn}$', 'Therefore, $\\boxed{\\text{Carla}}$ is our answer.', 0],
    ['$90^\\circ$', 'Hence, the angle between the lines is $\\boxed{90^\\circ}.$', 1],
    ['$90^\\circ$', '\\boxed{90}', 1],
    ['$90^\\circ$', '\\boxed{90°}', 1],
    ['$90^\\circ$', '\\boxed{45^\\circ}', 0],
    ['$15\\mbox{ cm}^2$', 'the area of the triangle is $$\\frac{1}{2}\\times 3 \\times 10 = \\boxed{15\\mbox{ cm}^2}.$$', 1],
    ['$15\\mbox{ cm}^2$', '\\boxed{16\\text{ cm}^2}', 0],
    ['$125$ miles', 'The distance is $\\boxed{125\\textnormal{ miles}}.$', 1],
    ['$\\text{odd}$', '$odd$', 1],
    ['$\\text{odd}$', '$even$', 0],
    ['$\\text{Even}$', '$Even$', 1],
    ['$\\text{e}$', '$e$', 1],
    ['$d$', '$\\text{E}$', 0],
    ['$\\text{13}$', '$13$', 1], // issue 13: \text{} around a number is ignored (Math-Verify keeps it a string)
    ['35', '\\boxed{35 cm}', 1],
    ['35', '\\boxed{35\\text{ cm}}', 1],
    ['35', '\\boxed{36 cm}', 0],
    ['5', '\\boxed{5 \\text{ apples}}', 1],
    ['5', 'So she has 5 apples left.', 1],
    ['12', '\\boxed{\\$12}', 1],
    ['12.50', '\\boxed{\\$12.50}', 1],
    ['12.50', '\\boxed{\\$12.05}', 0],
    ['7', '\\boxed{7.}', 1],
    ['40', 'The speed is \\boxed{40 km/h}.', 1],
    ['\\text{no solution}', '\\boxed{\\text{No solution}}', 1],
    ['\\text{no solution}', '\\boxed{\\text{one solution}}', 0],
    ['$204_5$', 'for a quotient of $\\boxed{204_5}$.', 1],
    ['$2 \\sin b \\cos a$', '\\[\\sin (a + b) - \\sin (a - b) = \\boxed{2 \\sin b \\cos a}.\\]', 1],
    ['$\\frac{\\pi r}{h+r}$', 'The answer is $\\boxed{\\frac{\\pi r}{h+r}}$.', 1],
    ['$\\sqrt{2}+\\sqrt{5}$', 'The answer is $\\boxed{\\sqrt 2+\\sqrt 5}$', 1],
    ['$\\frac{9}{4}\\pi$', 'Therefore $\\boxed{\\frac94\\pi}$.', 1],
    ['$2-2p$', 'Thus $x-p=\\boxed{2-2p}$.', 1],
    ['$3\\sqrt{13}$', '\\sqrt{117} = \\boxed{3\\sqrt{13}}. \\end{align*}', 1],
  ]);
});

describe('expressions', () => {
  // Math-Verify test_complex_math_expressions: algebraic identities, order invariance, non-equivalences.
  check([
    ['$\\frac{x+2}{7}$', '$\\frac{x}{7}+\\frac{2}{7}$', 1],
    ['$\\tan^2(y)+1$', '$\\sec^2(y)$', 1],
    ['$\\frac{\\sqrt{\\sqrt{11}+\\sqrt{194}}}{15+2\\sqrt{33}}$', '$\\frac{\\sqrt{\\sqrt{11}+\\sqrt{194}}}{2\\sqrt{33}+15}$', 1],
    ['$(a+5)(b+2)$', '$(+5)(b+2)$', 0],
    ['$2$', '$\\frac{1+\\sqrt{5}}{2}$', 0],
    ['$4$', '$\\frac{34}{16}+\\frac{\\sqrt{1358}}{16}$', 0],
    ['$1\\sqrt{19}$', '$1$', 0],
    ['$x+2n+1$', '$x+1$', 0],
    ['$x^2+2x+1$', '\\boxed{(x+1)^2}', 1],
    ['$x^2+2x+1$', '\\boxed{(x-1)^2}', 0],
    ['$\\frac{5\\sqrt{42}}{27}$', '\\boxed{\\frac{5\\sqrt{42}}{27}}', 1],
    ['$\\frac{\\sqrt{3}}{3}$', '\\boxed{\\frac{1}{\\sqrt{3}}}', 1],
    ['$2\\sqrt{2}$', '\\boxed{\\sqrt{8}}', 1],
    ['$2\\sqrt{2}$', '\\boxed{\\sqrt{6}}', 0],
    ['$e^{i\\pi}$', '\\boxed{-1}', 1],
    ['$\\log_2 8$', '\\boxed{3}', 1],
    ['$\\binom{5}{2}$', '\\boxed{10}', 1],
    ['$5!$', '\\boxed{120}', 1],
    ['$2+3i$', '\\boxed{3i+2}', 1],
    ['$2+3i$', '\\boxed{2-3i}', 0],
  ]);
});

describe('gold answers that are whole solutions', () => {
  // MATH / NuminaMath solutions (the gold's own final answer is its last \boxed{}); GSM8K (`#### n`);
  // Math-Verify test_math_extraction_additional_cases (gold given as a worked solution).
  check([
    ['Since $x<2$, it follows that $|x-2|=2-x$. Thus $x-p=\\boxed{2-2p}$.', '\\boxed{2-2p}', 1],
    ['Since $x<2$, it follows that $|x-2|=2-x$. Thus $x-p=\\boxed{2-2p}$.', '\\boxed{2-p}', 0],
    [
      'In order for $N$ to be divisible by 12 ... the smallest is $14{,}912.$ However $\\boxed{14{,}916}$ is our answer.',
      'Final Answer: The final answer is $14916$. I hope it is correct.',
      1,
    ],
    [
      'In order for $N$ to be divisible by 12 ... the smallest is $14{,}912.$ However $\\boxed{14{,}916}$ is our answer.',
      'the answer is $14912$',
      0,
    ],
    ['Janet sells 16 - 3 - 4 = 9 eggs a day. She makes 9 * 2 = $18 every day.\n#### 18', 'She makes \\boxed{18} dollars.', 1],
    ['Janet sells 16 - 3 - 4 = 9 eggs a day. She makes 9 * 2 = $18 every day.\n#### 18', 'She makes \\boxed{9} dollars.', 0],
    ['The total is 1,000 + 234 = 1,234.\n#### 1,234', '<think>add</think><answer>1234</answer>', 1],
    ['The total is 1,000 + 234 = 1,234.\n#### 1,234', '<think>add</think><answer>1,234</answer>', 1],
    ['The total is 1,000 + 234 = 1,234.\n#### 1,234', '<think>add</think><answer>1,000</answer>', 0],
    ['So the sum is $\\boxed{1}$ and the product is $\\boxed{-2}$.', '\\boxed{-2}', 1],
    ['Therefore, $x = \\boxed{\\dfrac{3}{4}}$.', '<answer>0.75</answer>', 1],
    ['Therefore, $x = \\boxed{\\dfrac{3}{4}}$.', '<answer>0.7</answer>', 0],
    ['The roots are $\\boxed{2}$ and $\\boxed{3}$.', 'The roots are \\boxed{3, 2}', 1],
    ['The roots are $\\boxed{2}$ and $\\boxed{3}$.', 'The roots are \\boxed{2}', 0],
    [' So the answer is: \\[ \\boxed{11111111100} \\]', 'is $\\boxed{11,\\! 111,\\! 111,\\! 100}$', 1],
    [' the answer should be \\boxed{004}.\n\nBut let me check: \\boxed{004', '$004$', 1],
    ['SoHi YES.\n\n could answer therefore\\boxed{840}.,but let me put this after explain.\n\n**Final Answer**\n\\boxed{840}', '$840$', 1],
  ]);
});

describe('multiple-choice letters', () => {
  // Multiple-choice rows (AQuA, OpenR1-Math MCQ rows, MMLU-style): the gold is a letter, written
  // (B), B), \text{(B)} or B; Math-Verify test_math_extraction_additional_cases (\text{C} vs \text{(C)}).
  check([
    ['\\(\\boxed{\\text{C}}\\).', '$\\boxed{\\text{(C)}}.$', 1],
    ['$\\text{E}$', '$E$', 1],
    ['B', '\\boxed{B}', 1],
    ['B', '\\boxed{(B)}', 1],
    ['B', '\\boxed{\\text{(B)}}', 1],
    ['B', '\\boxed{\\textbf{(B)}}', 1],
    ['B', 'The answer is (B).', 1],
    ['B', '<answer>B) 12</answer>', 1],
    ['B', '<answer>(B) 12</answer>', 1],
    ['(B)', '\\boxed{B}', 1],
    ['B)', '\\boxed{B}', 1],
    ['\\text{(B)}', '\\boxed{B}', 1],
    ['B', '\\boxed{C}', 0],
    ['B', '\\boxed{(C)}', 0],
    ['(B)', '<answer>C) 12</answer>', 0],
    ['\\text{(D)}', 'The answer is (A).', 0],
    ['A', '\\boxed{\\mathbf{(A)}}', 1],
    ['E', '<answer>(E)</answer>', 1],
  ]);
});

describe('issue 29: misses after the rewrite', () => {
  // Display math and \( \): Math-Verify reads $$...$$ and \[...\] across lines, \(...\) on one line,
  // and evaluates what it reads (tests/test_all.py test_latex_notation).
  check([
    ['$$[2, +\\infty)$$', 'The range is $$[2, +\\infty)$$', 1],
    ['$$[2, +\\infty)$$', 'The range is $$[2, \\infty)$$', 1],
    ['$$[2, +\\infty)$$', 'The range is $$(2, +\\infty)$$', 0],
    ['$$g(x) = 2x$$', 'so we find\n$$\ng(x) = x + x\n$$', 1],
    ['$$g(x) = 2x$$', 'so we find\n$$\ng(x) = 2x + 1\n$$', 0],
    ['$4$', 'Result: \\[\n4\n\\]', 1],
    ['$8$', 'Answer \\( (5+3) \\)', 1],
    ['$8$', 'Answer \\( (5+4) \\)', 0],
    ['$\\frac{2}{5}$', 'We get \\(\\frac{4}{10}\\).', 1],
  ]);
  // A bare LaTeX completion: no delimiters, no box, no tags (Math-Verify reads a bare \frac{a}{b} and a
  // plain expression after the last =); the same answer in $...$ or <answer> already scored 1.
  check([
    ['7/3', '\\frac{7}{3}', 1],
    ['7/3', '\\frac{3}{7}', 0],
    ['7/3', '<think>Divide.</think>\n\\dfrac{14}{6}', 1],
    ['[2, +\\infty)', '<think>Domain.</think> [2, \\infty)', 1],
    ['\\sqrt{2}', 'so the side is s = \\sqrt{2}', 1],
    ['\\sqrt{2}', 'so the side is s = \\sqrt{3}', 0],
    ['13', '8 + 2 + 3', 1],
    ['15/2', 'So the cost is x = \\frac{15}{2} dollars.', 1],
    ['2', 'So the cost is x = \\frac{15}{2} dollars.', 0],
    ['2', 'we get 2^{10}', 0], // an exponent is not a number stated on its own
    ['1024', '$2^{10}.$', 1],
  ]);
  // "Final Answer:" phrasing with a variable in dollars before the number: the answer is what the
  // sentence says after its last "is" (Math-Verify: "final answer" ... "is" within 100 characters).
  check([
    ['$12$', 'Final Answer: The smallest $k$ is 12.', 1],
    ['$12$', 'Final Answer: The smallest $k$ is 13.', 0],
    ['$34$', '**Final Answer:** the largest possible $n$ is $34$.', 1],
    ['12', 'Final Answer: The smallest $k$ is 12, since 13 fails.', 1],
    ['12', 'Final Answer: The smallest $k$ is 13, since 12 fails.', 0],
    ['$\\frac{1}{2}$', 'Answer: the probability that $X > Y$ equals \\(\\frac{1}{2}\\).', 1],
    ['5', 'Final Answer: The number of ways is 5 if order is ignored, otherwise 10.', 1],
    ['10', 'Final Answer: The number of ways is 5 if order is ignored, otherwise 10.', 0],
    ['4', 'The answer is that x is 4', 1],
    ['4', 'The answer is that x is 3', 0],
    ['3', 'The final answer is 3 because x is 2.', 1],
    ['2', 'The final answer is 3 because x is 2.', 0],
  ]);
  // Matrices inside longer text, in display math or bare.
  check([
    [
      '\\begin{pmatrix}1 & 2 \\\\ 3 & 4\\end{pmatrix}',
      'So the matrix is \\[\\begin{pmatrix}1 & 2 \\\\ 3 & 4\\end{pmatrix}\\] as required.',
      1,
    ],
    ['\\begin{pmatrix}1 & 2 \\\\ 3 & 4\\end{pmatrix}', 'Hence M = \\begin{pmatrix}1 & 2 \\\\ 3 & 4\\end{pmatrix}.', 1],
    ['\\begin{pmatrix}1 & 2 \\\\ 3 & 4\\end{pmatrix}', 'Hence M = \\begin{pmatrix}1 & 2 \\\\ 3 & 5\\end{pmatrix}.', 0],
    [
      '\\begin{pmatrix} 2 \\\\ -1 \\end{pmatrix}',
      'The projection is\n$$\n\\begin{pmatrix} 2 \\\\ -1 \\end{pmatrix}\n$$\nwhich we check.',
      1,
    ],
  ]);
  // Decimal approximations inside intervals, tuples and vectors: 2 or more places stand for the exact
  // value they round to (a bare 0.33 is still not 1/3: see 'Rounding' above).
  check([
    ['(\\frac{1}{4}, \\frac{4}{3}]', '(0.25, 1.3333]', 1],
    ['(\\frac{1}{4}, \\frac{4}{3}]', '(0.25, 1.33]', 1],
    ['(\\frac{1}{4}, \\frac{4}{3}]', '(0.25, 1.3]', 0],
    ['(\\frac{1}{4}, \\frac{4}{3}]', '(0.25, 1.3334]', 0],
    ['(\\frac{1}{4}, \\frac{4}{3}]', '(0.25, 1.3333)', 0],
    ['(\\frac{2}{3}, \\sqrt{2})', '(0.67, 1.41)', 1],
    ['(\\frac{2}{3}, \\sqrt{2})', '(0.66, 1.41)', 0],
    ['\\begin{pmatrix}\\frac{1}{3} \\\\ \\frac{1}{5}\\end{pmatrix}', '\\begin{pmatrix}0.33 \\\\ 0.2\\end{pmatrix}', 1],
    ['\\begin{pmatrix}\\frac{1}{3} \\\\ \\frac{1}{5}\\end{pmatrix}', '\\begin{pmatrix}0.3 \\\\ 0.2\\end{pmatrix}', 0],
  ]);
  // An interval gold against an inequality answer and the reverse, unions against inequalities joined
  // by "or", x \ne c against the two open intervals it leaves.
  check([
    ['[\\frac{1}{2}, \\infty)', '\\boxed{x \\geq \\frac{1}{2}}', 1],
    ['x \\geq \\frac{1}{2}', '\\boxed{[\\frac{1}{2}, \\infty)}', 1],
    ['x \\geq \\frac{1}{2}', '\\boxed{(\\frac{1}{2}, \\infty)}', 0],
    ['(-1, 2]', '\\boxed{-1 < x \\leq 2}', 1],
    ['(-1, 2]', '\\boxed{-1 \\leq x \\leq 2}', 0],
    ['(-\\infty, -2) \\cup (3, \\infty)', '\\boxed{x < -2 \\text{ or } x > 3}', 1],
    ['x < -2 \\text{ or } x > 3', '\\boxed{(3, \\infty) \\cup (-\\infty, -2)}', 1],
    ['x < -2 \\text{ or } x > 3', '\\boxed{(-\\infty, -2] \\cup (3, \\infty)}', 0],
    ['(-\\infty,-1]\\cup[1,+\\infty)', '\\boxed{x \\le -1 \\text{ or } x > 1}', 0],
    ['(-\\infty, 2) \\cup (2, \\infty)', '\\boxed{x \\neq 2}', 1],
    ['(-\\infty, 2) \\cup (2, \\infty)', '\\boxed{x \\neq 3}', 0],
    ['\\mathbb{R}', '\\boxed{(-\\infty, \\infty)}', 1],
    ['\\mathbb{R}', '\\boxed{(0, \\infty)}', 0],
  ]);
  // Several \boxed{} separated by units or words against a set gold (one paragraph; boxing extra
  // candidates is not rewarded), boxed parts of a multi-part answer against a tuple gold, and a gold
  // of two equations against two boxed equations.
  check([
    ['3, 5', 'The sides are \\boxed{3} cm and \\boxed{5} cm.', 1],
    ['\\{3, 5\\}', 'The first root is \\boxed{5}, the second one \\boxed{3}.', 1],
    ['3, 5', 'The sides are \\boxed{3} cm and \\boxed{6} cm.', 0],
    ['3, 5', 'It is \\boxed{1} cm, \\boxed{3} cm or \\boxed{5} cm.', 0],
    ['1, 2', 'At first \\boxed{1}.\n\nAfter checking, the answer is \\boxed{2}.', 0],
    ['(4, 5)', '(a) The area is \\boxed{4}.\n\n(b) Working on the perimeter, it is \\boxed{5}.', 1],
    ['(4, 5)', '(a) The area is \\boxed{5}.\n\n(b) Working on the perimeter, it is \\boxed{4}.', 0],
    ['(4, 5)', '(a) \\boxed{4}. (b) \\boxed{5}. (c) \\boxed{6}.', 0],
    ['[4, 5]', '(a) The area is \\boxed{4}.\n\n(b) The perimeter is \\boxed{5}.', 0], // an interval is not two parts
    ['y = 2x + 1, y = -x + 4', 'The two lines are \\boxed{y = 2x + 1} and \\boxed{y = 4 - x}.', 1],
    ['x + y = 5, x - y = 1', 'First: \\boxed{x + y = 5}. Second: \\boxed{x - y = 1}.', 1],
    ['x + y = 5, x - y = 1', 'First: \\boxed{x + y = 5}. Second: \\boxed{x - y = 2}.', 0],
  ]);
  // Completions that are only the answer: a word, a choice letter, GSM8K's #### line.
  check([
    ['yes', '<think>Check both cases.</think>\nyes', 1],
    ['yes', '<think>Check both cases.</think>\nno', 0],
    ['(D)', '<think>Compare the options.</think>\nD', 1],
    ['18', 'She makes 9 * 2 = 18 dollars.\n#### 18', 1],
    ['19', 'She makes 9 * 2 = 18 dollars.\n#### 18', 0],
  ]);
});

// ---- dataset rows, notes in the metrics, pathological input ----------------------------------

const dir = mkdtempSync(join(tmpdir(), 'r1-verify-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const score = async (options: Record<string, unknown>, rows: Record<string, unknown>[], completions: string[]) => {
  const rewards = await loadRewards([{ name: 'accuracy', options }], dir);
  return scoreBatch(rewards, { prompts: completions.map(() => ''), completions, rows });
};

describe('dataset answer formats', () => {
  // GSM8K (openai/gsm8k): {question, answer}, the answer a worked solution ending `#### 1,234`.
  it('GSM8K rows: the number after ####, thousands separators read', async () => {
    const rows = [{ question: 'q', answer: 'She pays 1,000 + 234 = <<1000+234=1234>>1,234 dollars.\n#### 1,234' }];
    const res = await score({}, [rows[0], rows[0], rows[0]], ['<answer>1234</answer>', 'so \\boxed{1,234}', '<answer>1,243</answer>']);
    expect(res.byFunction.accuracy).toEqual([1, 1, 0]);
  });

  // MATH (hendrycks/competition_math) and NuminaMath-CoT: {problem, solution}, no separate answer:
  // the gold is the solution's last \boxed{} (gold_from: solution).
  it('MATH / NuminaMath rows: gold_from solution takes the last \\boxed{} of the solution field', async () => {
    const row = {
      problem: 'p',
      solution: 'First $x = \\boxed{2}$ is wrong; in fact we get $\\frac{6}{8}$, so $x = \\boxed{\\dfrac{3}{4}}$.',
    };
    const res = await score({ gold_from: 'solution' }, [row, row, row], ['\\boxed{0.75}', '<answer>3/4</answer>', '\\boxed{2}']);
    expect(res.byFunction.accuracy).toEqual([1, 1, 0]);
    // A row that has both: gold_from solution reads the solution even though 'answer' comes first.
    const both = { answer: '7', solution: 'so it is \\boxed{8}' };
    expect((await score({ gold_from: 'solution' }, [both], ['\\boxed{8}'])).byFunction.accuracy).toEqual([1]);
    expect((await score({}, [both], ['\\boxed{7}'])).byFunction.accuracy).toEqual([1]);
  });

  // OpenR1-Math-220k (open-r1): {problem, solution, answer, problem_type, question_type, ...}; MCQ rows
  // have a letter as answer.
  it('OpenR1-style rows: the answer field, letters for multiple choice', async () => {
    const rows = [
      { problem: 'p', solution: 'long ... \\boxed{(B)}', answer: 'B', question_type: 'MCQ' },
      { problem: 'p', solution: 'long ... \\boxed{(p,q)=(3,2)}', answer: '(p,q)=(3,2)', question_type: 'math-word-problem' },
      { problem: 'p', solution: 'long ... \\boxed{x\\in[-2,7]}', answer: 'x\\in[-2,7]', question_type: 'math-word-problem' },
    ];
    const res = await score({}, rows, ['<think>..</think><answer>\\text{(B)}</answer>', '\\boxed{(3, 2)}', '\\boxed{-2 \\le x \\le 7}']);
    expect(res.byFunction.accuracy).toEqual([1, 1, 1]);
  });

  it('answer_field maps a dataset field to the reference; gold_from answer takes a bare answer whole', async () => {
    const rows = [{ question: 'q', final: '42', answer: '41' }];
    expect((await score({ answer_field: 'final' }, rows, ['\\boxed{42}'])).byFunction.accuracy).toEqual([1]);
    expect((await score({ answer_field: 'final', gold_from: 'answer' }, rows, ['\\boxed{41}'])).byFunction.accuracy).toEqual([0]);
    // The older spelling 'field' still works.
    expect((await score({ field: 'final' }, rows, ['\\boxed{42}'])).byFunction.accuracy).toEqual([1]);
  });

  it('recipe check refuses unknown options; make() refuses a bad gold_from or timeout with the option named', () => {
    expect(rewardSpecProblem({ name: 'accuracy', options: { answer_field: 'x', gold_from: 'solution', timeout_s: 2 } })).toBeNull();
    expect(rewardSpecProblem({ name: 'accuracy', options: { gold: 'x' } })?.message).toMatch(/unknown option 'gold'/);
    expect(() => accuracy.make({ ...accuracy.defaults, gold_from: 'boxed' })).toThrow(/gold_from must be one of auto, answer, solution/);
    expect(() => accuracy.make({ ...accuracy.defaults, timeout_s: 0 })).toThrow(/timeout_s must be a number > 0/);
  });

  it('reads the same rows from JSONL and Parquet', async () => {
    const rows = [
      { question: 'a', answer: 'x\n#### 1,234' },
      { question: 'b', answer: 'y\n#### 72' },
    ];
    const jsonl = join(dir, 'gsm.jsonl'),
      parquet = join(dir, 'gsm.parquet');
    writeFileSync(jsonl, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
    const buf = parquetWriteBuffer({
      columnData: [
        { name: 'question', data: rows.map((r) => r.question), type: 'STRING' },
        { name: 'answer', data: rows.map((r) => r.answer), type: 'STRING' },
      ],
    });
    writeFileSync(parquet, new Uint8Array(buf));
    for (const file of [jsonl, parquet]) {
      const read = await readRows(file);
      const res = await score({}, read, ['\\boxed{1234}', '\\boxed{27}']);
      expect(res.byFunction.accuracy).toEqual([1, 0]);
    }
  });
});

describe('a reference that does not parse', () => {
  it('scores null, not 0, and is counted in the metrics with a warning', async () => {
    const rows = [
      { answer: '\\frac{1}{' },
      { answer: '\\boxed{3' },
      { answer: '5' },
      { solution: 'no boxed answer here at all, just words' },
    ];
    const res = await score({ gold_from: 'solution' }, rows.slice(3), ['\\boxed{5}']);
    expect(res.byFunction.accuracy).toEqual([null]);
    const auto = await score({}, rows.slice(0, 3), ['\\boxed{\\frac{1}{', '\\boxed{3}', '\\boxed{5}']);
    expect(auto.byFunction.accuracy).toEqual([null, null, 1]);
    expect(auto.counts).toEqual({ 'accuracy/gold_unparsable': 2 });
    expect(auto.errors.join('\n')).toMatch(/reward 'accuracy': 2 x gold_unparsable \(e\.g\. row 0 answer/);
    // The mean skips rows that do not apply.
    expect(auto.stats.accuracy.mean).toBe(1);
  });

  it('a text answer is not a broken reference', () => {
    expect(judge('\\boxed{Evelyn}', '\\text{Evelyn}')).toEqual({ score: 1 });
    expect(judge('\\boxed{odd}', 'even')).toEqual({ score: 0 });
  });
});

describe('pathological input', () => {
  // Issue 13: a bounded time per comparison (default 1 s), then 0 with the reason counted.
  const hostile = [
    '\\boxed{\\binom{1000000000}{500000000}}',
    '\\boxed{100000000!}',
    '\\boxed{(10^{10})!}',
    '\\boxed{2^{2^{2^{2^{2^{2^{2^{2}}}}}}}}',
    '\\boxed{10^{1000000}}',
    '\\boxed{1e999999}',
    '\\boxed{' + '('.repeat(300) + 'x' + ')'.repeat(300) + '}',
    '\\boxed{' + '\\frac{1}{'.repeat(60) + 'x' + '}'.repeat(60) + '}',
    '\\boxed{' + Array.from({ length: 300 }, (_, i) => `${i}x^{${i}}`).join('+') + '}',
    '\\boxed{' + Array.from({ length: 150 }, (_, i) => `(${i}, x+${i})`).join(',') + '}',
    '\\boxed{' + 'x+'.repeat(1000) + 'x}',
    '<answer>' + '9^'.repeat(400) + '9</answer>',
  ];
  it('each comparison returns within the budget and scores 0', () => {
    for (const c of hostile) {
      const t0 = performance.now();
      const v = judge(c, Array.from({ length: 150 }, (_, i) => `(${i}, x+${i + 1})`).join(', '));
      expect(performance.now() - t0).toBeLessThan(5000);
      expect(v.score).toBe(0);
    }
  });

  it('a comparison over its budget scores 0 with the reason counted; the batch goes on', async () => {
    // Two sets of 100 expressions in opposite orders: thousands of item comparisons. The clock is
    // made to advance 1 ms at every look, so the 50 ms budget runs out after 50 steps of the
    // comparison whatever the machine's speed (a real clock made this test pass or fail by load).
    const items = Array.from({ length: 100 }, (_, i) => `x^{${(i % 7) + 1}}+${i}`);
    const gold = '\\{' + items.join(',') + '\\}',
      pred = '\\{' + [...items].reverse().join(',') + '\\}';
    let fake = 0;
    const clock = vi.spyOn(performance, 'now').mockImplementation(() => ++fake);
    let res: Awaited<ReturnType<typeof score>>;
    try {
      res = await score({ timeout_s: 0.05 }, [{ answer: gold }, { answer: '4' }], [`\\boxed{${pred}}`, '\\boxed{4}']);
    } finally {
      clock.mockRestore();
    }
    expect(res.byFunction.accuracy).toEqual([0, 1]);
    expect(res.counts).toEqual({ 'accuracy/timeout': 1 });
    expect(judge('\\boxed{' + '('.repeat(60) + '1' + ')'.repeat(60) + '}', '1')).toEqual({ score: 0, note: 'too_complex' });
    // Bare math past the nesting limit ends the comparison the same way; in a gold it makes the row null.
    const deep = '\\frac{1}{2} + ' + '('.repeat(60) + '1' + ')'.repeat(60);
    expect(judge(`so x = ${deep}`, '1')).toEqual({ score: 0, note: 'too_complex' });
    expect(judge('1', `The value is so x = ${deep}`)).toEqual({ score: null, note: 'gold_unparsable' });
  });
});
