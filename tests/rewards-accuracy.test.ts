import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { accuracy, accuracyScore, answersMatch, extractAnswer, extractReference } from '../rewards/accuracy.ts';
import { latexToMathjs } from '../rewards/latex.ts';

// [prediction, reference, equal?]
const EQUIVALENT: [string, string, boolean][] = [
  // plain numbers, signs, decimals
  ['42', '42', true],
  ['42', '43', false],
  ['-7', '-7', true],
  ['-7', '7', false],
  ['3.0', '3', true],
  ['0.5', '.5', true],
  ['+5', '5', true],
  ['1e3', '1000', true], // scientific notation (issue 13; Math-Verify reads it too)
  // thousands separators, decimal comma, spaces
  ['1,000', '1000', true],
  ['1,234,567', '1234567', true],
  ['1{,}000', '1000', true],
  ['1\\,000', '1000', true],
  ['3,5', '3.5', true],
  ['3,5', '35', false],
  // percentages
  ['50\\%', '0.5', true],
  ['50%', '50', true],
  ['25 percent', '0.25', true],
  ['50%', '0.25', false],
  // units and currency
  ['\\$5', '5', true],
  ['$5.50', '5.5', true],
  ['12 cm', '12', true],
  ['12\\text{ cm}', '12', true],
  ['12 \\mathrm{cm}^2', '12', true],
  ['7 apples', '7', true],
  ['30 dollars', '30', true],
  ['€20', '20', true],
  ['5 km/h', '5', true],
  ['18 元', '18', true],
  ['30^\\circ', '30', true],
  ['30^{\\circ}', '30', true],
  ['45°', '45', true],
  // rounding tolerance
  // A predicted decimal is an exact value (under 6 places): 0.33 is not 1/3 (issue 13, Math-Verify's float_rounding 6).
  ['0.33', '\\frac13', false],
  ['0.333333', '1/3', true],
  ['0.34', '1/3', false],
  ['3.14', '\\pi', false],
  ['\\pi', '3.14', true], // a decimal reference allows rounding to its own places
  ['3.14', '3.14159', false],
  ['3.14159', '3.14', true],
  ['3.48', '3.5', true],
  ['3.4', '3.5', false],
  ['\\frac{1}{3}', '0.33', true],
  ['3', '3.4', false],
  ['1.0000001', '1', true],
  ['1.001', '1', false],
  // fractions
  ['\\frac{1}{2}', '0.5', true],
  ['\\dfrac{1}{2}', '\\frac12', true],
  ['\\tfrac{3}{4}', '0.75', true],
  ['\\frac{2}{4}', '\\frac{1}{2}', true],
  ['1/2', '\\frac{1}{2}', true],
  ['-\\frac{1}{2}', '\\frac{-1}{2}', true],
  ['\\frac{1}{2}', '\\frac{1}{3}', false],
  ['\\frac{\\sqrt{3}}{2}', '\\frac{1}{2}\\sqrt{3}', true],
  ['\\frac{a}{b}', '\\frac{2a}{2b}', true],
  // roots, pi, powers
  ['\\sqrt{2}', '2^{1/2}', true],
  ['\\sqrt{8}', '2\\sqrt{2}', true],
  ['\\sqrt{8}', '3\\sqrt{2}', false],
  ['\\sqrt[3]{27}', '3', true],
  ['\\sqrt[3]{-8}', '-2', true],
  ['\\frac{\\sqrt{2}}{2}', '\\frac{1}{\\sqrt{2}}', true],
  ['2\\pi', '\\pi \\cdot 2', true],
  ['2\\pi', '6.2832', true],
  ['\\pi r^2', 'r^2\\pi', true],
  ['2^{10}', '1024', true],
  ['2^10', '1024', false], // LaTeX: 2^10 is 2^1 followed by 0
  ['10^{-3}', '0.001', true],
  ['3 \\times 4', '12', true],
  ['12 \\div 4', '3', true],
  ['5!', '120', true],
  ['\\binom{5}{2}', '10', true],
  ['|-3|', '3', true],
  ['\\left| -3 \\right|', '3', true],
  ['e^{i\\pi}', '-1', true],
  ['\\ln(e^2)', '2', true],
  ['\\log_2 8', '3', true],
  ['\\log_{10}(1000)', '3', true],
  ['\\sin^2 x + \\cos^2 x', '1', true],
  ['\\sin(\\pi/6)', '\\frac12', true],
  ['\\infty', '\\infty', true],
  ['-\\infty', '\\infty', false],
  // unicode
  ['√2', '\\sqrt{2}', true],
  ['3π', '3\\pi', true],
  ['−5', '-5', true],
  ['2×3', '6', true],
  // symbolic expressions
  ['x^2+2x+1', '(x+1)^2', true],
  ['(x+1)^2', 'x^2+1', false],
  ['2x+3y', '3y+2x', true],
  ['2(x+y)', '2x+2y', true],
  ['\\frac{x^2-1}{x-1}', 'x+1', true],
  ['a^2-b^2', '(a-b)(a+b)', true],
  ['2ab', '2ba', true],
  ['ab', 'ab', true],
  ['ab', 'ba', false], // a bare word is text: 'no' must not equal 'on'
  ['2ab', 'a \\cdot b \\cdot 2', true],
  ['x_1 + x_2', 'x_2 + x_1', true],
  ['x_1 + x_2', 'x_1 + x_3', false],
  ['\\alpha + \\beta', '\\beta+\\alpha', true],
  ['\\sqrt{x^2}', 'x', true], // equal at the (positive) sample points
  ['x', 'y', false],
  ['\\frac{n(n+1)}{2}', '\\frac{n^2+n}{2}', true],
  ['n!', 'n \\cdot (n-1)!', true],
  // relations and equations
  ['x = 5', '5', true],
  ['5', 'x=5', true],
  ['x=5', 'y = 5', true],
  ['2 + 2 = 4', '4', true],
  ['x = 2 + 2 = 4', '4', true],
  ['4', '2 + 2 = 4', false], // a reference relation is not read as its right side
  ['x=5', 'x=6', false],
  ['y = 2x + 1', 'y = 1 + 2x', true],
  ['2y = 4x + 2', 'y = 2x + 1', true],
  ['y - 2x = 1', 'y = 2x + 1', true],
  ['y = 2x + 1', 'y = 2x - 1', false],
  ['x \\neq 3', 'x \\ne 3', true],
  ['x \\approx 3.14', 'x \\approx 3.14', true],
  // inequalities and intervals
  ['x > 3', '(3, \\infty)', true],
  ['x \\geq 3', '[3, \\infty)', true],
  ['x \\ge 3', '(3, \\infty)', false],
  ['x < 3', '(-\\infty, 3)', true],
  ['3 < x', 'x > 3', true],
  ['1 \\le x < 2', '[1, 2)', true],
  ['1 < x < 2', '[1, 2]', false],
  ['x > 3', 'x < 3', false],
  ['2x > 6', 'x > 3', true],
  ['-2x > 6', '2x > -6', false],
  ['x \\in (1, 2)', '(1, 2)', true],
  ['[1, 2)', '[1, 2)', true],
  ['[1, 2)', '(1, 2)', false],
  ['[1, 2]', '[1, 2)', false],
  ['\\left[ 1, \\frac{3}{2} \\right)', '[1, 1.5)', true],
  ['(-\\infty, 3] \\cup (5, \\infty)', '(5,\\infty)\\cup(-\\infty,3]', true],
  ['(-\\infty, 3] \\cup (5, \\infty)', '(-\\infty, 3) \\cup (5, \\infty)', false],
  // tuples, sets, lists
  ['(1, 2)', '(1,2)', true],
  ['(1, 2)', '(2, 1)', false],
  ['(\\frac12, 3)', '(0.5, 3)', true],
  ['(1, 2, 3)', '(1, 2)', false],
  ['\\{1, 2\\}', '\\{2, 1\\}', true],
  ['\\{1, 2\\}', '\\{1, 3\\}', false],
  ['\\{1,2,3\\}', '\\{3,2,1\\}', true],
  ['1, 2', '\\{2, 1\\}', true],
  ['2, 1', '1, 2', true],
  ['x = 1, 2', '1, 2', true],
  ['x = 1 \\text{ or } x = 2', '2, 1', true],
  ['1 \\pm \\sqrt{2}', '1+\\sqrt2, 1-\\sqrt2', true],
  ['\\pm 2', '2, -2', true],
  ['\\emptyset', '\\varnothing', true],
  ['\\emptyset', '\\{1\\}', false],
  ['\\{5\\}', '5', true],
  // matrices
  ['\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}', '\\begin{bmatrix}1 & 2 \\\\ 3 & 4\\end{bmatrix}', true],
  ['\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}', '\\begin{pmatrix}1&2\\\\4&3\\end{pmatrix}', false],
  ['\\begin{pmatrix}\\frac12\\\\2\\end{pmatrix}', '\\begin{pmatrix}0.5\\\\2\\end{pmatrix}', true],
  ['\\begin{pmatrix}1&2\\end{pmatrix}', '\\begin{pmatrix}1\\\\2\\end{pmatrix}', false],
  // text, choices, delimiters
  ['B', '(B)', true],
  ['\\text{(B)}', 'B', true],
  ['A', 'B', false],
  ['yes', 'Yes', true],
  ['no', 'on', false],
  ['\\text{no solution}', 'No solution', true],
  ['$\\frac{1}{2}$', '\\frac{1}{2}', true],
  ['\\(\\frac{1}{2}\\)', '0.5', true],
  ['\\[ 7 \\]', '7', true],
  ['\\displaystyle \\frac{1}{2}', '1/2', true],
  ['7.', '7', true],
  // more forms: mixed numbers, complex numbers, function notation, scientific notation, quadratic formula
  ['\\frac{1}{2}x', 'x/2', true],
  ['x^{2}', 'x^2', true],
  ['\\left(\\frac{1}{2}\\right)^2', '1/4', true],
  ['2^{-1}', '0.5', true],
  ['\\sqrt{\\frac{1}{4}}', '0.5', true],
  ['1.5\\times10^{3}', '1500', true],
  ['\\dfrac{\\pi}{4}', '\\frac{\\pi}{4}', true],
  ['(0,\\infty)', 'x>0', true],
  ['x\\in[2,5]', '[2,5]', true],
  ['\\$1,000.50', '1000.5', true],
  ['100\\text{ m}^2', '100', true],
  ['\\text{A}', 'A', true],
  ['10\\%', '\\frac{1}{10}', true],
  ['k=-1', '-1', true],
  ['-\\dfrac{3}{2}', '-1.5', true],
  ['2+3i', '3i+2', true],
  ['2+3i', '2-3i', false],
  ['3\\sqrt{3}/2', '\\frac{3\\sqrt3}{2}', true],
  ['\\mathbf{(C)}', 'C', true],
  ['x^2 - 4 = 0', 'x^2 = 4', true],
  ['\\frac{1}{2}', '\\frac{2}{4}', true],
  ['0.5', '50\\%', true],
  ['\\{-2, 2\\}', '\\pm 2', true],
  ['(2, 3)', 'a=2, b=3', true],
  ['1/3', '0.3333', true],
  ['\\infty', '\\infty', true],
  ['2\\sqrt{2}', '\\sqrt{8}', true],
  ['\\frac{-b \\pm \\sqrt{b^2-4ac}}{2a}', '\\frac{-b + \\sqrt{b^2-4ac}}{2a}, \\frac{-b - \\sqrt{b^2-4ac}}{2a}', true],
  ['10', '10.0', true],
  ['0', '-0', true],
  ['1\\frac{1}{2}', '1.5', true],
  ['\\frac{7}{2}', '3\\frac{1}{2}', true],
  ['y=-x+2', 'x+y=2', true],
  ['f(x) = 2x', '2x', true],
  ['6', '\\text{6 ways}', true],
  ['6', '6 \\text{ways}', true],
  ['\\frac{1}{\\sqrt{3}}', '\\frac{\\sqrt{3}}{3}', true],
  ['\\sqrt{-1}', 'i', true],
  ['x+y', 'x+y+0', true],
];

describe('answersMatch', () => {
  it.each(EQUIVALENT)('%s vs %s -> %s', (pred, ref, want) => {
    expect(answersMatch(pred, ref)).toBe(want);
  });

  it('reads a worked reference solution', () => {
    expect(answersMatch('18', 'Janet sells 16 - 3 - 4 = 9 eggs at $2 each, so she makes 9 * 2 = 18.\n#### 18')).toBe(true);
    expect(answersMatch('\\frac{3}{4}', 'Divide both sides by 4, so $x = \\boxed{\\dfrac{3}{4}}$.')).toBe(true);
    expect(answersMatch('12', 'We count the cases: 4 times 3 gives the answer is 12.')).toBe(true);
    expect(answersMatch('13', 'We count the cases: 4 times 3 gives the answer is 12.')).toBe(false);
  });
});

// [completion, extracted answer]
const EXTRACTION: [string, string | null][] = [
  ['<think>2+2</think><answer>4</answer>', '4'],
  ['<think>x</think>\n<answer>\n  4  \n</answer>', '4'],
  ['<think>x</think><answer>The answer is \\boxed{42}.</answer>', '42'],
  ['<think>x</think><answer>The total is 42 apples in all</answer>', '42'],
  ['<answer>1</answer> then <answer>2</answer>', '2'],
  ['<think>x</think><answer>unclosed 7', 'unclosed 7'],
  ['so the result is \\boxed{\\frac{1}{2}} indeed', '\\frac{1}{2}'],
  ['first \\boxed{1} then \\boxed{2}', '2'],
  ['nested \\boxed{\\frac{\\sqrt{2}}{2}}', '\\frac{\\sqrt{2}}{2}'],
  ['\\boxed 5', '5'],
  ['\\fbox{9}', '9'],
  ['unclosed \\boxed{3', '3'], // not boxed: the last number
  ['Thus the final answer is $\\frac{3}{4}$.', '\\frac{3}{4}'],
  ['The answer is: 17.', '17'],
  ['**Answer:** 8', '8'],
  ['所以答案是 12。', '12'],
  ['I got 3 then 5 apples', '5'],
  ['We get $x = 4$', 'x = 4'],
  ['<think>I think 3</think> It is 17', '17'],
  ['<think>so 5</think>', '5'],
  ['no digits here', null],
  ['', null],
  ['<think></think><answer></answer>', null],
  ['1,000 apples and 2,500 pears total 3,500', '3,500'],
];

describe('extractAnswer', () => {
  it.each(EXTRACTION)('%j -> %j', (completion, want) => {
    expect(extractAnswer(completion)).toBe(want);
  });

  it('extracts references: numbers, lists, GSM8K solutions, boxed solutions, bare answers', () => {
    expect(extractReference(42)).toBe('42');
    expect(extractReference([1, 2])).toBe('1, 2');
    expect(extractReference('blah\n#### 1,200')).toBe('1,200');
    expect(extractReference('so $\\boxed{7}$')).toBe('7');
    expect(extractReference('\\frac{1}{2}')).toBe('\\frac{1}{2}');
    expect(extractReference('')).toBe(null);
    expect(extractReference(undefined)).toBe(null);
  });
});

describe('accuracy reward', () => {
  const fn = accuracy.make({ field: null });
  it('scores 1 for right, 0 for wrong or missing answers, null without a reference', async () => {
    const completions = [
      '<think>a</think><answer>4</answer>',
      '<think>a</think><answer>5</answer>',
      'I have no idea',
      '<answer>4</answer>',
      '<answer>x</answer>',
    ];
    const rows = [{ answer: '4' }, { answer: 4 }, { answer: '4' }, {}, { solution: 'so \\boxed{x}' }];
    expect(await fn({ prompts: completions.map(() => ''), completions, rows })).toEqual([1, 0, 0, null, 1]);
  });

  it('reads the answer field named in the options', async () => {
    const byField = accuracy.make({ field: 'target' });
    expect(await byField({ prompts: [''], completions: ['<answer>3</answer>'], rows: [{ answer: '4', target: '3' }] })).toEqual([1]);
  });

  it('returns promptly on huge and hostile completions', () => {
    const hostile = [
      'x'.repeat(2_000_000),
      '<answer>' + '{'.repeat(100_000) + '</answer>',
      '\\boxed{' + '\\frac{'.repeat(5000) + '1' + '}'.repeat(5000) + '}',
      '<answer>' + '('.repeat(900) + '1' + ')'.repeat(900) + '</answer>',
      '<answer>' + '9^'.repeat(400) + '9</answer>',
      '<answer>' + '1,'.repeat(400) + '1</answer>',
      '1'.repeat(100_000),
      '<think>' + '$'.repeat(100_000),
      '<answer>' + 'x'.repeat(999) + '</answer>',
      '\\boxed{' + 'a+'.repeat(100_000) + 'a}',
    ];
    for (const c of hostile) expect([0, 1]).toContain(accuracyScore(c, '1'));
  });
});

describe('properties', () => {
  it('an integer matches itself written with thousands separators', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1000, max: 1e9 }),
        (n) => answersMatch(n.toLocaleString('en-US'), String(n)) && answersMatch(String(n), n.toLocaleString('en-US')),
      ),
    );
  });

  it('a fraction matches its decimal value and not the next fraction', () => {
    fc.assert(
      fc.property(fc.integer({ min: -500, max: 500 }), fc.constantFrom(2, 4, 5, 8, 10, 20, 25), (p, q) => {
        const dec = String(p / q);
        return (
          answersMatch(`\\frac{${p}}{${q}}`, dec) && answersMatch(dec, `${p}/${q}`) && !answersMatch(`\\frac{${p + 1}}{${q}}`, `${p}/${q}`)
        );
      }),
    );
  });

  it('sums of terms match in any order and equality is symmetric', () => {
    const term = fc.tuple(fc.integer({ min: 1, max: 9 }), fc.constantFrom('x', 'y', 'z', 'x^2', '\\sqrt{x}', ''));
    fc.assert(
      fc.property(fc.array(term, { minLength: 1, maxLength: 5 }), (terms) => {
        const s = terms.map(([c, v]) => `${c}${v}`);
        const a = s.join(' + '),
          b = [...s].reverse().join('+');
        return answersMatch(a, b) && answersMatch(b, a) && !answersMatch(a, `${b} + 1`);
      }),
    );
  });

  it('the LaTeX converter never throws anything but an Error and never hangs', () => {
    fc.assert(
      fc.property(
        fc.string({
          unit: fc.constantFrom('\\frac', '\\sqrt', '{', '}', '(', ')', '[', ']', '^', '_', 'x', '1', '2', '+', '-', '|', '\\pi', ' ', ','),
          maxLength: 40,
        }),
        (s) => {
          try {
            latexToMathjs(s);
          } catch (err) {
            expect(err).toBeInstanceOf(Error);
          }
          return [true, false].includes(answersMatch(s, s));
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('accuracy with tagged_only', () => {
  it('counts only an <answer> block or \\boxed{} as the final answer', () => {
    const score = (completions: string[], tagged: boolean) =>
      accuracy.make({ ...accuracy.defaults, tagged_only: tagged })({
        prompts: completions.map(() => 'q'),
        completions,
        rows: completions.map(() => ({ answer: '17' })),
      });
    const cs = [
      ' <think> 9 + 8 = 17 </think> <answer> 17 </answer>',
      ' 9 + 8 = 17',
      ' so it is \\boxed{17}',
      ' <think> 17 </think>',
      ' <answer> 16 </answer>',
    ];
    expect(score(cs, false)).toEqual([1, 1, 1, 1, 0]);
    expect(score(cs, true)).toEqual([1, 0, 1, 0, 0]);
  });
});
