// Final answers as values, and when two of them are the same: numbers (with a rounding tolerance and
// percentages), expressions (symbolic equivalence: equal at random points, evaluated by mathjs),
// tuples, intervals, sets, unions, relations and inequalities, matrices, and plain text.
import { all, create, type MathNode } from 'mathjs';
import { BudgetExceeded, spend } from './budget.ts';
import { FUNCTIONS, KNOWN_NAMES, latexToMathjs, normalizeLatex, stripUnits } from './latex.ts';

const math = create(all);
// mathjs's factorial and binomial loop over their argument (binom(10^9, 5 * 10^8) ran 30 s): past
// where a double overflows, the answer is Infinity or a log-gamma value, in constant time.
const lgamma = math.lgamma as (x: number) => number;
const mathFactorial = math.factorial as (n: number) => number;
const mathCombinations = math.combinations as (n: number, k: number) => number;
math.import(
  {
    factorial: (n: number) => (typeof n !== 'number' ? NaN : n > 170 ? Infinity : mathFactorial(n)),
    combinations: (n: number, k: number) => {
      if (typeof n !== 'number' || typeof k !== 'number' || !Number.isInteger(n) || !Number.isInteger(k) || k < 0 || k > n) return NaN;
      return n <= 1000 ? mathCombinations(n, k) : Math.round(Math.exp(lgamma(n + 1) - lgamma(k + 1) - lgamma(n - k + 1)));
    },
  },
  { override: true },
);

/** Longer answers are compared as text only: parsing stays cheap and bounded on hostile input. */
export const MAX_ANSWER_CHARS = 1000;
/** Deeper bracket nesting is given up before parsing (mathjs and our converter recurse per level). */
const MAX_DEPTH = 40;

type Complex = [re: number, im: number];
export type Expr = {
  kind: 'expr';
  raw: string;
  src: string; // mathjs syntax
  vars: string[];
  eval: (scope: Record<string, number>) => Complex | null;
  value: Complex | null; // when there are no variables
  decimals: number | null; // digits after the point when written as a plain decimal number
  percent: boolean;
};
export type Answer =
  | Expr
  | { kind: 'tuple'; raw: string; open: string; close: string; items: Answer[] }
  | { kind: 'set'; raw: string; items: Answer[]; braces: boolean; decimalComma: number | null }
  | { kind: 'union'; raw: string; parts: Answer[] }
  | { kind: 'rel'; raw: string; ops: string[]; sides: Answer[] }
  | { kind: 'matrix'; raw: string; rows: Answer[][] }
  | { kind: 'text'; raw: string };

// ---- safe expressions ------------------------------------------------------------------------

const OPERATORS = new Set(['add', 'subtract', 'multiply', 'divide', 'pow', 'unaryMinus', 'unaryPlus', 'factorial']);
/** The functions an answer may call: the ones latex.ts turns names into. */
const CALLABLE = FUNCTIONS;

/** Only arithmetic, a fixed list of functions, numbers and symbols: no assignment, no imports, no units. */
function checkNode(node: MathNode, vars: Set<string>): void {
  const n = node as MathNode & { fn?: unknown; args?: MathNode[]; name?: string; value?: unknown; content?: MathNode };
  switch (node.type) {
    case 'ConstantNode':
      if (typeof n.value !== 'number') throw new Error('not a number');
      return;
    case 'SymbolNode':
      if (CALLABLE.has(n.name!)) throw new Error(`${n.name} without arguments`);
      if (!KNOWN_NAMES.has(n.name!)) vars.add(n.name!);
      return;
    case 'ParenthesisNode':
      return checkNode(n.content!, vars);
    case 'OperatorNode':
      if (!OPERATORS.has(n.fn as string)) throw new Error(`operator ${String(n.fn)}`);
      break;
    case 'FunctionNode': {
      const fn = n.fn as MathNode & { name?: string };
      if (fn.type !== 'SymbolNode' || !CALLABLE.has(fn.name!)) throw new Error('function');
      break;
    }
    default:
      throw new Error(node.type);
  }
  for (const a of n.args ?? []) checkNode(a, vars);
}

function toComplex(v: unknown): Complex | null {
  if (typeof v === 'number') return Number.isNaN(v) ? null : [v, 0];
  if (v && typeof v === 'object' && 're' in v && 'im' in v) {
    const c = v as { re: number; im: number };
    return Number.isNaN(c.re) || Number.isNaN(c.im) ? null : [c.re, Math.abs(c.im) < 1e-12 * Math.max(1, Math.abs(c.re)) ? 0 : c.im];
  }
  return null;
}

/** A checked, compiled expression from mathjs source; throws when it is not one. */
export function compileExpr(src: string, raw: string, decimals: number | null = null, percent = false): Expr {
  spend();
  const node = math.parse(src);
  const seen = new Set<string>();
  checkNode(node, seen);
  const code = node.compile();
  const evalAt = (scope: Record<string, number>): Complex | null => {
    spend();
    try {
      return toComplex(code.evaluate({ ...scope }));
    } catch {
      return null;
    }
  };
  const vars = [...seen].sort();
  return { kind: 'expr', raw, src, vars, eval: evalAt, value: vars.length ? null : evalAt({}), decimals, percent };
}

function constant(value: number, raw: string): Expr {
  return { kind: 'expr', raw, src: String(value), vars: [], eval: () => [value, 0], value: [value, 0], decimals: null, percent: false };
}

// ---- parsing ---------------------------------------------------------------------------------

const OPENERS = '([{',
  CLOSERS = ')]}';

/** A word separator ("or", "and") between two answers: not inside a word (`for`, `random`), and not
 * run into a following lower-case word; `1orW(x)` still splits. */
function wordSepAt(s: string, i: number, w: string): boolean {
  return s.startsWith(w, i) && !/[a-zA-Z\\]/.test(s[i - 1] ?? ' ') && !/[a-z]/.test(s[i + w.length] ?? ' ');
}

/** Splits at separators outside brackets. A separator that is a LaTeX command must not run into a
 * letter (`\le` is not `\left`); `words` are separators only where wordSepAt says so. */
function splitTop(s: string, seps: readonly string[], words: readonly string[] = []): { parts: string[]; found: string[] } {
  const parts: string[] = [],
    found: string[] = [];
  let depth = 0,
    start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (OPENERS.includes(c)) depth++;
    else if (CLOSERS.includes(c)) depth = Math.max(0, depth - 1);
    else if (depth === 0) {
      const sep =
        seps.find((p) => s.startsWith(p, i) && !(/[a-zA-Z]$/.test(p) && /[a-zA-Z]/.test(s[i + p.length] ?? ''))) ??
        words.find((w) => wordSepAt(s, i, w));
      if (sep === undefined) continue;
      parts.push(s.slice(start, i));
      found.push(sep.trim());
      start = i + sep.length;
      i = start - 1;
    }
  }
  parts.push(s.slice(start));
  return { parts: parts.map((p) => p.trim()), found };
}

/** True when the bracket at 0 closes exactly at the end of `s`. */
function wrapped(s: string): boolean {
  if (!OPENERS.includes(s[0]) || !CLOSERS.includes(s[s.length - 1])) return false;
  let depth = 0;
  for (let i = 0; i < s.length; i++) {
    if (OPENERS.includes(s[i])) depth++;
    else if (CLOSERS.includes(s[i]) && --depth === 0) return i === s.length - 1;
  }
  return false;
}

/** The deepest bracket nesting in `s` (any of ( [ {). */
function nesting(s: string): number {
  let depth = 0,
    most = 0;
  for (let i = 0; i < s.length; i++) {
    if (OPENERS.includes(s[i])) most = Math.max(most, ++depth);
    else if (CLOSERS.includes(s[i])) depth--;
  }
  return most;
}

/** Whether every bracket closes, in order. */
export function balanced(s: string): boolean {
  const stack: string[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '\\' && (s[i + 1] === '{' || s[i + 1] === '}')) i++;
    else if (OPENERS.includes(c)) stack.push(c);
    else if (CLOSERS.includes(c)) {
      const open = stack.pop();
      // An interval closes with either bracket: [1, 2) and (1, 2] are fine, only braces must pair.
      if (open === undefined || (c === '}') !== (open === '{')) return false;
    }
  }
  return stack.length === 0;
}

const RELATIONS = ['\\le', '\\ge', '\\ne', '\\approx', '<', '>', '='];
const PLAIN_WORDS = /(?:^|[^\\a-zA-Z])([a-zA-Z]{3,})/g;
const ALLOWED_WORDS = new Set([
  'sin',
  'cos',
  'tan',
  'sec',
  'csc',
  'cot',
  'exp',
  'log',
  'sqrt',
  'abs',
  'asin',
  'acos',
  'atan',
  'sinh',
  'cosh',
  'tanh',
  'inf',
  'infty',
  'Infinity',
]);
const PERCENT = /\s*(?:%|percent(?:age)?|pct)$/i;
const SCIENTIFIC = /^[+-]?(?:\d+\.?\d*|\.\d+)[eE][+-]?\d{1,4}$/;

const rethrowBudget = (err: unknown) => {
  if (err instanceof BudgetExceeded) throw err;
};

function scalar(raw: string): Answer {
  const percent = PERCENT.test(raw) && /\d/.test(raw);
  const s = stripUnits(percent ? raw.replace(PERCENT, '') : raw);
  if (s === '') return { kind: 'text', raw };
  if (/^[+-]?(?:\d+\.?\d*|\.\d+)$/.test(s)) {
    const dot = s.indexOf('.');
    const e = constant(Number(s), raw);
    return { ...e, src: s, decimals: dot === -1 || dot === s.length - 1 ? 0 : s.length - dot - 1, percent };
  }
  // 1.5e3 is scientific notation (an exact value), not 1.5 * e * 3.
  if (SCIENTIFIC.test(s)) return { ...constant(Number(s), raw), percent };
  // A mixed number: 3\frac{1}{2} is 3.5, not 3 * 1/2.
  const mixed = /^(-?)(\d+)\s*\\frac\s*\{(\d+)\}\s*\{(\d+)\}$/.exec(s);
  if (mixed && Number(mixed[4]) !== 0) {
    const v = (mixed[1] ? -1 : 1) * (Number(mixed[2]) + Number(mixed[3]) / Number(mixed[4]));
    return { ...constant(v, raw), percent };
  }
  if (/^[a-zA-Z]{2,}$/.test(s) && !ALLOWED_WORDS.has(s)) return { kind: 'text', raw };
  for (const m of s.matchAll(PLAIN_WORDS)) if (!ALLOWED_WORDS.has(m[1])) return { kind: 'text', raw };
  try {
    return compileExpr(latexToMathjs(s), raw, null, percent);
  } catch (err) {
    rethrowBudget(err);
    return { kind: 'text', raw };
  }
}

/** Thousands separators: 1,000,000 and 1 000 000 (a first group of 1-3 digits not starting with 0, so
 * 0,111 stays a decimal comma) are one number, read before commas split lists. */
function joinThousands(s: string): string {
  if (/^-?[1-9]\d{0,2}(?: \d{3})+(?:\.\d+)?$/.test(s)) return s.replace(/ /g, '');
  if (/[([{]/.test(s)) return s;
  return s.replace(/(^|[^\d.,])([1-9]\d{0,2}(?:,\d{3})+)(?![\d,])/g, (_m, pre: string, num: string) => pre + num.replace(/,/g, ''));
}

/** Items of a tuple's inside: split at commas, or at semicolons when there is no comma ((0;-2;6)). */
function tupleItems(inner: string): string[] {
  const byComma = splitTop(inner, [',']).parts;
  return byComma.length > 1 ? byComma : splitTop(inner, [';']).parts;
}

/** Parses a normalised answer into a value; anything unparseable becomes text. */
function parseNormalized(s: string, depth: number): Answer {
  spend();
  const raw = s;
  if (depth > 8 || s.length > MAX_ANSWER_CHARS) return { kind: 'text', raw };
  s = s.replace(/^[a-zA-Z](?:_\{?\w+\}?)?\s*\\in(?![a-zA-Z])\s*/, '').trim();
  if (s === '\\emptyset' || s === '\\varnothing' || s === '\\{\\}' || s === '\\{ \\}')
    return { kind: 'set', raw, items: [], braces: true, decimalComma: null };
  // A matrix, bare or inside brackets: \left[ \begin{array}{cc} ... \end{array} \right].
  const mat = /^[[(]?\s*\\begin\{([pbBvV]?matrix|array)\}(?:\{[lcr| ]*\})?([\s\S]*)\\end\{\1\}\s*[\])]?$/.exec(s);
  if (mat && /^[[(]/.test(s) === /[\])]$/.test(s)) {
    const rows = mat[2]
      .split('\\\\')
      .map((r) => r.trim())
      .filter(Boolean)
      .map((r) => r.split('&').map((c) => parseNormalized(c.trim(), depth + 1)));
    return { kind: 'matrix', raw, rows };
  }
  if (s.startsWith('\\{') && s.endsWith('\\}') && wrapped(s.slice(1))) {
    const inner = s.slice(2, -2).trim();
    const items = inner === '' ? [] : splitTop(inner, [',', ';']).parts.map((p) => parseNormalized(p, depth + 1));
    return { kind: 'set', raw, items, braces: true, decimalComma: null };
  }
  const union = splitTop(s, ['\\cup']);
  if (union.parts.length > 1) return { kind: 'union', raw, parts: union.parts.map((p) => parseNormalized(p, depth + 1)) };
  s = joinThousands(s);
  // Solutions separated by ';', each a list of values (p=5, q=2; p=7, q=2): a set of tuples.
  const groups = splitTop(s, [';']);
  if (groups.parts.length > 1 && groups.parts.some((g) => splitTop(g, [',']).parts.length > 1)) {
    const items = groups.parts.filter(Boolean).map((g): Answer => {
      const vals = splitTop(g, [',']).parts;
      return vals.length > 1
        ? { kind: 'tuple', raw: g, open: '(', close: ')', items: vals.map((v) => parseNormalized(v, depth + 1)) }
        : parseNormalized(g, depth + 1);
    });
    return { kind: 'set', raw, items, braces: false, decimalComma: null };
  }
  const list = splitTop(s, [',', ';', '或'], ['or', 'and']);
  if (list.parts.length > 1) {
    const [a, b] = list.parts;
    // 1000,99 or 0,111 is a decimal comma; 1,234 was read above as a thousands separator.
    const decimalComma =
      list.parts.length === 2 && list.found[0] === ',' && /^-?\d+$/.test(a) && /^\d+$/.test(b) && (b.length !== 3 || /^-?0$/.test(a))
        ? Number(`${a}.${b}`)
        : null;
    return { kind: 'set', raw, items: list.parts.filter(Boolean).map((p) => parseNormalized(p, depth + 1)), braces: false, decimalComma };
  }
  const rel = splitTop(s, RELATIONS);
  if (rel.parts.length > 1) return { kind: 'rel', raw, ops: rel.found, sides: rel.parts.map((p) => parseNormalized(p, depth + 1)) };
  // A ratio a:b is the number a/b (7:32 = 14:64); three or more terms stay an ordered tuple.
  const ratio = splitTop(s, [':']);
  if (ratio.parts.length > 1 && ratio.parts.every((p) => p !== '')) {
    const terms = ratio.parts.map((p) => parseNormalized(p, depth + 1));
    if (terms.every((t): t is Expr => t.kind === 'expr')) {
      if (terms.length > 2) return { kind: 'tuple', raw, open: '(', close: ')', items: terms };
      try {
        return compileExpr(`(${terms[0].src}) / (${terms[1].src})`, raw);
      } catch (err) {
        rethrowBudget(err);
      }
    }
  }
  if (wrapped(s)) {
    const inner = s.slice(1, -1).trim();
    const items = tupleItems(inner);
    if (items.length > 1)
      return { kind: 'tuple', raw, open: s[0], close: s[s.length - 1], items: items.map((p) => parseNormalized(p, depth + 1)) };
    if (s[0] === '{' && s.endsWith('}')) return parseNormalized(inner, depth + 1);
  }
  const pm = s.indexOf('\\pm') !== -1 ? '\\pm' : s.indexOf('\\mp') !== -1 ? '\\mp' : null;
  if (pm && s.indexOf(pm) === s.lastIndexOf(pm)) {
    const items = [s.replace(pm, '+'), s.replace(pm, '-')].map((p) => parseNormalized(p, depth + 1));
    return { kind: 'set', raw, items, braces: false, decimalComma: null };
  }
  return scalar(s);
}

const cache = new Map<string, Answer>();

/** The value of an extracted answer (LaTeX or plain text). Parses are cached: a reference is scored
 * against many completions. Throws BudgetExceeded past the nesting limit or the time budget. */
export function parseAnswer(text: string): Answer {
  const hit = cache.get(text);
  if (hit) return hit;
  let a: Answer;
  if (text.length > MAX_ANSWER_CHARS) a = { kind: 'text', raw: text };
  else {
    const s = normalizeLatex(text);
    if (nesting(s) > MAX_DEPTH) throw new BudgetExceeded('too_complex', `brackets nested deeper than ${MAX_DEPTH}`);
    a = parseNormalized(s, 0);
  }
  if (cache.size >= 20000) cache.clear();
  cache.set(text, a);
  return a;
}

/** Whether a parsed reference is broken rather than a text answer: unbalanced brackets, or a part
 * that is neither a value nor plain words (a LaTeX command left unread). */
export function unparsable(a: Answer): boolean {
  switch (a.kind) {
    case 'text':
      return choiceOf(a.raw, false) === null && (!balanced(a.raw) || /\\[a-zA-Z]/.test(a.raw));
    case 'expr':
      return false;
    case 'tuple':
    case 'set':
      return a.items.some(unparsable);
    case 'union':
      return a.parts.some(unparsable);
    case 'rel':
      // The left side may be a label we do not evaluate (\angle ABC = 90): the stated value must parse.
      return unparsable(a.sides[a.sides.length - 1]);
    case 'matrix':
      return a.rows.some((r) => r.some(unparsable));
  }
}

// ---- equivalence -----------------------------------------------------------------------------

/** Equal up to floating-point error (relative 1e-9, absolute 1e-12): exact values must be equal, so
 * 1000000 is not 1000001; infinities equal only themselves. */
export function closeTo(x: number, y: number): boolean {
  if (!Number.isFinite(x) || !Number.isFinite(y)) return x === y;
  return Math.abs(x - y) <= 1e-12 + 1e-9 * Math.max(Math.abs(x), Math.abs(y));
}

const complexClose = (a: Complex, b: Complex) => closeTo(a[0], b[0]) && closeTo(a[1], b[1]);

/** Digits after the point of a prediction that stands for an exact value (Math-Verify rounds both
 * sides to 6 places by default: 0.333333 is 1/3, 0.33 is not). */
const PRED_PLACES = 6;
/** Fewest places of a decimal standing for an exact value inside an interval, a tuple or a matrix. */
const PART_PLACES = 2;

/** Rounding: a decimal reference with d places accepts any prediction that rounds to it at d places
 * (gold 3.14: pi, 3.14159 and 157/50 are right; 3.1 is not, it says less). A predicted decimal is an
 * exact value unless it has at least 6 places, then it matches an exact reference at 6 places; inside
 * an interval, a tuple or a matrix (`inPart`) a predicted decimal of 2 or more places also stands for
 * the exact value it rounds to ((0.25, 1.3333] is (1/4, 4/3]; 1.33 is 4/3 there, 1.3 and 1.34 are not). */
function roundsTo(pred: Expr, gold: Expr, x: number, y: number, inPart: boolean): boolean {
  const d = gold.decimals;
  if (d !== null && d >= 1 && (pred.decimals === null || pred.decimals > d)) {
    // Half a unit of the last place, inclusive (3.45 rounds up to 3.5), plus floating-point slack.
    return Math.abs(x - y) <= 0.5 * 10 ** -d * (1 + 1e-9) + 1e-12;
  }
  if (!gold.decimals && pred.decimals !== null && pred.decimals >= PRED_PLACES) {
    return Math.abs(x - y) < 10 ** -PRED_PLACES * Math.max(1, Math.abs(y) * 1e-3);
  }
  if (inPart && !gold.decimals && pred.decimals !== null && pred.decimals >= PART_PLACES) {
    return Math.abs(x - y) <= 0.5 * 10 ** -pred.decimals * (1 + 1e-9) + 1e-12;
  }
  return false;
}

// Fixed pseudo-random points in [0.35, 2.65]: positive (so sqrt and log stay real), away from 0, 1
// and small integers where distinct expressions often agree.
const POINTS = 5;
// Factorials and binomials are sampled at small integers instead.
function pointScope(vars: string[], p: number, integers = false): Record<string, number> {
  const scope: Record<string, number> = {};
  vars.forEach(
    (v, k) =>
      (scope[v] = integers
        ? 2 + ((3 * p + 2 * k) % 5)
        : 0.35 + (((p + 1) * 0.6180339887 + (k + 1) * 0.7548776662 + p * k * 0.2207) % 1) * 2.3),
  );
  return scope;
}
const needsIntegers = (a: Expr, b: Expr) => /!|combinations/.test(a.src + b.src);

function constValues(e: Expr): number[] {
  if (!e.value || e.value[1] !== 0) return [];
  return e.percent ? [e.value[0], e.value[0] / 100] : [e.value[0]];
}

/** Symbolic equivalence: equal values at every sample point where both are defined. `a` is the
 * prediction, `b` the reference (they differ only in how rounding is allowed; `inPart`: see roundsTo). */
export function exprEqual(a: Expr, b: Expr, inPart = false): boolean {
  if (a.value && b.value) {
    if (complexClose(a.value, b.value)) return true;
    for (const x of constValues(a)) for (const y of constValues(b)) if (closeTo(x, y) || roundsTo(a, b, x, y, inPart)) return true;
    return false;
  }
  const vars = [...new Set([...a.vars, ...b.vars])];
  const integers = needsIntegers(a, b);
  let compared = 0;
  for (let p = 0; p < POINTS; p++) {
    const scope = pointScope(vars, p, integers);
    const x = a.eval(scope),
      y = b.eval(scope);
    if (x === null && y === null) continue;
    if (x === null || y === null || !complexClose(x, y)) return false;
    compared++;
  }
  return compared > 0;
}

/** The constant factor between a and b at every sample point (2y - 4x - 2 is 2 (y - 2x - 1)), or null. */
function ratio(a: Expr, b: Expr): number | null {
  const vars = [...new Set([...a.vars, ...b.vars])];
  const integers = needsIntegers(a, b);
  let r: number | null = null;
  for (let p = 0; p < POINTS; p++) {
    const scope = pointScope(vars, p, integers);
    const x = a.eval(scope),
      y = b.eval(scope);
    if (!x || !y || x[1] !== 0 || y[1] !== 0 || y[0] === 0) return null;
    if (r === null) r = x[0] / y[0];
    else if (!closeTo(x[0] / y[0], r)) return null;
  }
  return r !== null && r !== 0 && Number.isFinite(r) ? r : null;
}

export function normalizeText(s: string): string {
  return s
    .toLowerCase()
    .replace(/\\text\{|\\mathrm\{|[{}$\s]/g, '')
    .replace(/[.,;:!]+$/, '')
    .replace(/^\((.)\)$|^(.)\)$/, '$1$2');
}

const FLIP: Record<string, string> = { '>': '<', '\\ge': '\\le', '<': '>', '\\le': '\\ge' };

/** Inequalities read left to right with < and \le (x > 3 is 3 < x). */
function orient(r: Extract<Answer, { kind: 'rel' }>): { ops: string[]; sides: Answer[] } {
  if (r.ops.every((o) => o === '>' || o === '\\ge')) return { ops: r.ops.map((o) => FLIP[o]).reverse(), sides: [...r.sides].reverse() };
  return { ops: r.ops, sides: r.sides };
}

const isVariable = (a: Answer) =>
  a.kind === 'expr' &&
  a.value === null &&
  (/^[a-zA-Z](?:_\{?\w+\}?)?$|^\\[a-zA-Z]+$/.test(a.raw.trim()) || /^[a-zA-Z]\s*\(\s*[a-zA-Z]\s*\)$/.test(a.raw.trim()));
const isConstant = (a: Answer): a is Expr => a.kind === 'expr' && a.value !== null;

/** A one-variable inequality as an interval: 3 < x -> (3, oo), 1 <= x < 2 -> [1, 2). */
function relToInterval(r: Extract<Answer, { kind: 'rel' }>): Answer | null {
  const { ops, sides } = orient(r);
  if (!ops.every((o) => o === '<' || o === '\\le')) return null;
  const bracket = (o: string, open: boolean) => (o === '<' ? (open ? '(' : ')') : open ? '[' : ']');
  const lo = constant(-Infinity, '-\\infty'),
    hi = constant(Infinity, '\\infty');
  if (sides.length === 2 && isVariable(sides[0]) && isConstant(sides[1]))
    return { kind: 'tuple', raw: r.raw, open: '(', close: bracket(ops[0], false), items: [lo, sides[1]] };
  if (sides.length === 2 && isConstant(sides[0]) && isVariable(sides[1]))
    return { kind: 'tuple', raw: r.raw, open: bracket(ops[0], true), close: ')', items: [sides[0], hi] };
  if (sides.length === 3 && isConstant(sides[0]) && isVariable(sides[1]) && isConstant(sides[2])) {
    return { kind: 'tuple', raw: r.raw, open: bracket(ops[0], true), close: bracket(ops[1], false), items: [sides[0], sides[2]] };
  }
  return null;
}

/** The intervals an answer stands for: a union's parts, one interval, an inequality (x \ne 2 is two),
 * or inequalities joined by "or" (x < -2 or x > 3); null when it is none of these. */
function asIntervals(a: Answer): Answer[] | null {
  switch (a.kind) {
    case 'union':
      return a.parts;
    case 'tuple':
      return a.items.length === 2 ? [a] : null;
    case 'rel': {
      if (a.ops.length === 1 && a.ops[0] === '\\ne') {
        const [l, r] = a.sides;
        const c = isVariable(l) && isConstant(r) ? r : isConstant(l) && isVariable(r) ? l : null;
        if (c === null) return null;
        const lo = constant(-Infinity, '-\\infty'),
          hi = constant(Infinity, '\\infty');
        return [
          { kind: 'tuple', raw: `(-\\infty, ${c.raw})`, open: '(', close: ')', items: [lo, c] },
          { kind: 'tuple', raw: `(${c.raw}, \\infty)`, open: '(', close: ')', items: [c, hi] },
        ];
      }
      const interval = relToInterval(a);
      return interval === null ? null : [interval];
    }
    case 'set': {
      if (a.braces || a.items.length < 2) return null;
      const parts = a.items.map((x) => (x.kind === 'rel' ? relToInterval(x) : null));
      return parts.every((p): p is Answer => p !== null) ? parts : null;
    }
    default:
      return null;
  }
}

function difference(l: Answer, r: Answer): Expr | null {
  if (l.kind !== 'expr' || r.kind !== 'expr') return null;
  try {
    return compileExpr(`(${l.src}) - (${r.src})`, `${l.raw}-${r.raw}`);
  } catch (err) {
    rethrowBudget(err);
    return null;
  }
}

function relEqual(a: Extract<Answer, { kind: 'rel' }>, b: Extract<Answer, { kind: 'rel' }>): boolean {
  const x = orient(a),
    y = orient(b);
  if (x.ops.length !== y.ops.length || x.ops.some((o, k) => o !== y.ops[k])) return false;
  if (x.sides.every((s, k) => answersEqual(s, y.sides[k]))) return true;
  if (x.ops.length !== 1) return false;
  const symmetric = x.ops[0] === '=' || x.ops[0] === '\\ne' || x.ops[0] === '\\approx';
  if (symmetric && answersEqual(x.sides[0], y.sides[1]) && answersEqual(x.sides[1], y.sides[0])) return true;
  const da = difference(x.sides[0], x.sides[1]),
    db = difference(y.sides[0], y.sides[1]);
  if (!da || !db) return false;
  // Equations may be scaled by any factor, inequalities only by a positive one.
  const r = ratio(da, db);
  return r !== null && (symmetric || r > 0);
}

/** Sets: every item of each has an equal item in the other (order and repeats free). */
function sameMembers(a: Answer[], b: Answer[]): boolean {
  if ((a.length === 0) !== (b.length === 0)) return false;
  return a.every((x) => b.some((y) => answersEqual(x, y))) && b.every((y) => a.some((x) => answersEqual(x, y)));
}

const sameSequence = (a: Answer[], b: Answer[], inPart = false) =>
  a.length === b.length && a.every((x, k) => answersEqual(x, b[k], inPart));

// A label names what an answer is (x, a_1, f(2), (p, q), |AB|, \angle ABC, NO/BO, S_{ABC}:S): letters
// and grouping only, no digits or sums, so `2x + z = 1` or `7 = 11a + c` is an equation, not a label.
const LABEL_NOISE =
  /_\{[^{}]*\}|_[A-Za-z0-9]|\\(?:frac|angle|measuredangle|overline|triangle|vec|mathbf|operatorname|bar|hat)(?![a-zA-Z])|[{}\s]/g;
function isLabel(a: Answer): boolean {
  const raw = a.raw.trim();
  if (/^[a-zA-Z]\w*\s*\([^()]*\)$/.test(raw)) return true; // f(x), f(2), P(A)
  const t = raw.replace(LABEL_NOISE, '').replace(/\\[a-zA-Z]+/g, 'g');
  return /[a-zA-Z]/.test(t) && /^[A-Za-z|/:(),]+$/.test(t);
}

/** The answer a relation states: the side after the last `=` before any `\approx` in a chain
 * (x = 5 + 5 + 1 = 11 -> 11; x = 1/3 \approx 0.33 -> 1/3), the value after `\approx` when there is
 * no `=` (x \approx 11), or for two sides the right one when the left is a label (k = 1, (p, q) =
 * (3, 2), |AB| = 1). A prediction's last side counts even without a label (2 + 2 = 4 -> 4), a
 * reference's does not (7 = 11a + c is an equation to match). */
function stated(r: Extract<Answer, { kind: 'rel' }>, isPred: boolean): Answer | null {
  if (!r.ops.every((o) => o === '=' || o === '\\approx')) return null;
  const firstApprox = r.ops.indexOf('\\approx');
  const eqs = firstApprox === -1 ? r.ops.length : firstApprox;
  const lastEq = r.ops.lastIndexOf('=', eqs - 1);
  const k = lastEq === -1 ? r.ops.length - 1 : lastEq;
  if (r.sides.length > 2 || isPred || isLabel(r.sides[0])) return r.sides[k + 1];
  return null;
}

/** Multiple-choice letters: (B), B), B., \text{(B)} and a bare capital B are choice B. A reference
 * must be only the letter; a prediction may go on with the option's text ((B) 12). */
function choiceOf(raw: string, isPred: boolean): string | null {
  const t = raw.trim();
  const m = /^\(?([A-J])\)?\.?$/.exec(t) ?? (isPred ? /^\(?([A-J])[).:](?:\s|$)/.exec(t) : null);
  return m ? m[1] : null;
}

/** Whether two parsed answers denote the same value: `a` is the prediction, `b` the reference.
 * `inPart`: they are entries of an interval, a tuple or a matrix (see roundsTo). */
export function answersEqual(a: Answer, b: Answer, inPart = false): boolean {
  spend();
  if (a.raw === b.raw) return true;
  const goldChoice = choiceOf(b.raw, false);
  if (goldChoice !== null) {
    const predChoice = choiceOf(a.raw, true);
    if (predChoice !== null) return predChoice === goldChoice;
  }
  if (a.kind === 'text' || b.kind === 'text') return normalizeText(a.raw) === normalizeText(b.raw);
  if (a.kind === 'union' || b.kind === 'union') {
    // A union of intervals and the inequalities joined by "or" that describe it, either way round.
    const x = asIntervals(a),
      y = asIntervals(b);
    return x !== null && y !== null && sameMembers(x, y);
  }
  if (a.kind === 'rel' || b.kind === 'rel') {
    if (a.kind === 'rel' && b.kind === 'rel') {
      if (relEqual(a, b)) return true;
      const x = stated(a, true),
        y = stated(b, false);
      return x !== null && y !== null && answersEqual(x, y);
    }
    if (a.kind === 'rel') {
      const x = stated(a, true);
      if (x !== null) return answersEqual(x, b);
      const interval = relToInterval(a);
      return interval !== null && answersEqual(interval, b);
    }
    const r = b as Extract<Answer, { kind: 'rel' }>;
    const y = stated(r, false);
    if (y !== null) return answersEqual(a, y);
    const interval = relToInterval(r);
    return interval !== null && answersEqual(a, interval);
  }
  if (a.kind === 'expr' && b.kind === 'expr') return exprEqual(a, b, inPart);
  if (a.kind === 'set' && b.kind === 'set')
    return sameMembers(a.items, b.items) || (a.decimalComma !== null && b.decimalComma !== null && closeTo(a.decimalComma, b.decimalComma));
  if (a.kind === 'set') return setEqualsOther(a, b, false);
  if (b.kind === 'set') return setEqualsOther(b, a, true);
  if (a.kind === 'tuple' && b.kind === 'tuple') {
    const interval = (t: typeof a) => t.open === '[' || t.close === ']';
    if ((interval(a) || interval(b)) && (a.open !== b.open || a.close !== b.close)) return false;
    return sameSequence(a.items, b.items, true);
  }
  if (a.kind === 'matrix' && b.kind === 'matrix')
    return a.rows.length === b.rows.length && a.rows.every((r, k) => sameSequence(r, b.rows[k], true));
  return false;
}

/** A set or bare list against a single value, keeping the prediction first in every comparison. */
function setEqualsOther(s: Extract<Answer, { kind: 'set' }>, o: Answer, setIsRef: boolean): boolean {
  const eq = (x: Answer, y: Answer) => (setIsRef ? answersEqual(y, x) : answersEqual(x, y));
  if (o.kind === 'tuple') {
    // A bare list is the tuple's items in order (1, 3 is (1, 3)), or a one-item list holds the tuple.
    if (!s.braces && s.items.length === o.items.length && s.items.every((x, k) => eq(x, o.items[k]))) return true;
  }
  if (s.decimalComma !== null && o.kind === 'expr' && o.value && closeTo(s.decimalComma, o.value[0])) return true;
  return s.items.length > 0 && s.items.every((x) => eq(x, o));
}
