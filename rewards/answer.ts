// Final answers as values, and when two of them are the same: numbers (with a rounding tolerance and
// percentages), expressions (symbolic equivalence: equal at random points, evaluated by mathjs),
// tuples, intervals, sets, unions, relations and inequalities, matrices, and plain text.
import { all, create, type MathNode } from 'mathjs';
import { KNOWN_NAMES, latexToMathjs, normalizeLatex, stripUnits } from './latex.ts';

const math = create(all);

/** Longer answers are compared as text only: parsing stays cheap and bounded on hostile input. */
export const MAX_ANSWER_CHARS = 1000;

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
const CALLABLE = new Set(['sin', 'cos', 'tan', 'sec', 'csc', 'cot', 'asin', 'acos', 'atan', 'sinh', 'cosh', 'tanh', 'exp', 'log', 'sqrt', 'abs', 'nthRoot', 'combinations']);

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
  const node = math.parse(src);
  const seen = new Set<string>();
  checkNode(node, seen);
  const code = node.compile();
  const evalAt = (scope: Record<string, number>): Complex | null => {
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

const OPENERS = '([{', CLOSERS = ')]}';

/** Splits at separators outside brackets. A separator that is a LaTeX command must not run into a
 * letter (`\le` is not `\left`); a word separator needs spaces around it. */
function splitTop(s: string, seps: readonly string[]): { parts: string[]; found: string[] } {
  const parts: string[] = [], found: string[] = [];
  let depth = 0, start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (OPENERS.includes(c)) depth++;
    else if (CLOSERS.includes(c)) depth = Math.max(0, depth - 1);
    else if (depth === 0) {
      const sep = seps.find((p) => s.startsWith(p, i) && !(/[a-zA-Z]$/.test(p) && /[a-zA-Z]/.test(s[i + p.length] ?? '')));
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

const RELATIONS = ['\\le', '\\ge', '\\ne', '\\approx', '<', '>', '='];
const PLAIN_WORDS = /(?:^|[^\\a-zA-Z])([a-zA-Z]{3,})/g;
const ALLOWED_WORDS = new Set(['sin', 'cos', 'tan', 'sec', 'csc', 'cot', 'exp', 'log', 'sqrt', 'abs', 'asin', 'acos', 'atan', 'sinh', 'cosh', 'tanh', 'inf', 'infty', 'Infinity']);

function scalar(raw: string): Answer {
  const percent = /(?:%|\spercent)$/i.test(raw);
  const s = stripUnits(percent ? raw.replace(/\s*(?:%|percent)$/i, '') : raw);
  if (s === '') return { kind: 'text', raw };
  if (/^[+-]?(?:\d+\.?\d*|\.\d+)$/.test(s)) {
    const dot = s.indexOf('.');
    const e = constant(Number(s), raw);
    return { ...e, src: s, decimals: dot === -1 ? 0 : s.length - dot - 1, percent };
  }
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
  } catch {
    return { kind: 'text', raw };
  }
}

/** Parses a normalised answer into a value; anything unparseable becomes text. */
function parseNormalized(s: string, depth: number): Answer {
  const raw = s;
  if (depth > 8 || s.length > MAX_ANSWER_CHARS) return { kind: 'text', raw };
  s = s.replace(/^[a-zA-Z]\s*\\in(?![a-zA-Z])\s*/, '').trim();
  if (s === '\\emptyset' || s === '\\varnothing' || s === '\\{\\}' || s === '\\{ \\}') return { kind: 'set', raw, items: [], braces: true, decimalComma: null };
  const mat = /^\\begin\{([pbBvV]?matrix|array)\}(?:\{[lcr|]*\})?([\s\S]*)\\end\{\1\}$/.exec(s);
  if (mat) {
    const rows = mat[2].split('\\\\').map((r) => r.trim()).filter(Boolean).map((r) => r.split('&').map((c) => parseNormalized(c.trim(), depth + 1)));
    return { kind: 'matrix', raw, rows };
  }
  if (s.startsWith('\\{') && s.endsWith('\\}') && wrapped(s.slice(1))) {
    const inner = s.slice(2, -2).trim();
    const items = inner === '' ? [] : splitTop(inner, [',', ';']).parts.map((p) => parseNormalized(p, depth + 1));
    return { kind: 'set', raw, items, braces: true, decimalComma: null };
  }
  const union = splitTop(s, ['\\cup']);
  if (union.parts.length > 1) return { kind: 'union', raw, parts: union.parts.map((p) => parseNormalized(p, depth + 1)) };
  // Thousands separators (1,000,000) are read before commas split lists.
  if (!/[([{]/.test(s)) s = s.replace(/(^|[^\d.,])(\d{1,3}(?:,\d{3})+)(?![\d,])/g, (_m, pre: string, num: string) => pre + num.replace(/,/g, ''));
  const list = splitTop(s, [',', ';', ' or ', ' and ', '或']);
  if (list.parts.length > 1) {
    const [a, b] = list.parts;
    const decimalComma = list.parts.length === 2 && list.found[0] === ',' && /^-?\d+$/.test(a) && /^\d+$/.test(b) && b.length !== 3 ? Number(`${a}.${b}`) : null;
    return { kind: 'set', raw, items: list.parts.filter(Boolean).map((p) => parseNormalized(p, depth + 1)), braces: false, decimalComma };
  }
  const rel = splitTop(s, RELATIONS);
  if (rel.parts.length > 1) return { kind: 'rel', raw, ops: rel.found, sides: rel.parts.map((p) => parseNormalized(p, depth + 1)) };
  if (wrapped(s)) {
    const inner = s.slice(1, -1).trim();
    const items = splitTop(inner, [',']).parts;
    if (items.length > 1) return { kind: 'tuple', raw, open: s[0], close: s[s.length - 1], items: items.map((p) => parseNormalized(p, depth + 1)) };
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
 * against many completions. */
export function parseAnswer(text: string): Answer {
  const hit = cache.get(text);
  if (hit) return hit;
  const a = text.length > MAX_ANSWER_CHARS ? ({ kind: 'text', raw: text } as const) : parseNormalized(normalizeLatex(text), 0);
  if (cache.size >= 20000) cache.clear();
  cache.set(text, a);
  return a;
}

// ---- equivalence -----------------------------------------------------------------------------

/** Relative tolerance 1e-6 (with an absolute floor); infinities equal only themselves. */
export function closeTo(x: number, y: number): boolean {
  if (!Number.isFinite(x) || !Number.isFinite(y)) return x === y;
  return Math.abs(x - y) <= 1e-9 + 1e-6 * Math.max(Math.abs(x), Math.abs(y));
}

const complexClose = (a: Complex, b: Complex) => closeTo(a[0], b[0]) && closeTo(a[1], b[1]);

/** A predicted decimal with d digits matches a reference that rounds to it (0.33 for 1/3, 3.14 for
 * 3.14159); a reference decimal matches a predicted exact expression that rounds to it. A decimal
 * given more precisely than the reference is not rounded (3.48 is not 3.5). */
function roundsTo(lit: Expr, other: Expr, litValue: number, otherValue: number, otherIsPred: boolean): boolean {
  const d = lit.decimals;
  if (d === null || d < 1) return false;
  if (otherIsPred ? other.decimals !== null : other.decimals !== null && other.decimals <= d) return false;
  // Strictly inside half a unit of the last digit: a value exactly half-way rounds either way.
  return Math.abs(litValue - otherValue) < 0.5 * 10 ** -d * (1 - 1e-9);
}

// Fixed pseudo-random points in [0.35, 2.65]: positive (so sqrt and log stay real), away from 0, 1
// and small integers where distinct expressions often agree.
const POINTS = 5;
// Factorials and binomials are sampled at small integers instead.
function pointScope(vars: string[], p: number, integers = false): Record<string, number> {
  const scope: Record<string, number> = {};
  vars.forEach((v, k) => (scope[v] = integers ? 2 + ((3 * p + 2 * k) % 5) : 0.35 + (((p + 1) * 0.6180339887 + (k + 1) * 0.7548776662 + p * k * 0.2207) % 1) * 2.3));
  return scope;
}
const needsIntegers = (a: Expr, b: Expr) => /!|combinations/.test(a.src + b.src);

function constValues(e: Expr): number[] {
  if (!e.value || e.value[1] !== 0) return [];
  return e.percent ? [e.value[0], e.value[0] / 100] : [e.value[0]];
}

/** Symbolic equivalence: equal values at every sample point where both are defined. `a` is the
 * prediction, `b` the reference (they differ only in how rounding is allowed). */
export function exprEqual(a: Expr, b: Expr): boolean {
  if (a.value && b.value) {
    if (complexClose(a.value, b.value)) return true;
    for (const x of constValues(a)) for (const y of constValues(b)) if (closeTo(x, y) || roundsTo(a, b, x, y, false) || roundsTo(b, a, y, x, true)) return true;
    return false;
  }
  const vars = [...new Set([...a.vars, ...b.vars])];
  const integers = needsIntegers(a, b);
  let compared = 0;
  for (let p = 0; p < POINTS; p++) {
    const scope = pointScope(vars, p, integers);
    const x = a.eval(scope), y = b.eval(scope);
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
    const x = a.eval(scope), y = b.eval(scope);
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
    .replace(/^\((.)\)$/, '$1')
    .replace(/[.,;:!]+$/, '');
}

const FLIP: Record<string, string> = { '>': '<', '\\ge': '\\le', '<': '>', '\\le': '\\ge' };

/** Inequalities read left to right with < and \le (x > 3 is 3 < x). */
function orient(r: Extract<Answer, { kind: 'rel' }>): { ops: string[]; sides: Answer[] } {
  if (r.ops.every((o) => o === '>' || o === '\\ge')) return { ops: r.ops.map((o) => FLIP[o]).reverse(), sides: [...r.sides].reverse() };
  return { ops: r.ops, sides: r.sides };
}

const isVariable = (a: Answer) => a.kind === 'expr' && a.vars.length === 1 && a.value === null && /^[a-zA-Z](?:_\{?\w+\}?)?$|^\\[a-zA-Z]+$/.test(a.raw.trim());
const isConstant = (a: Answer): a is Expr => a.kind === 'expr' && a.value !== null;

/** A one-variable inequality as an interval: 3 < x -> (3, oo), 1 <= x < 2 -> [1, 2). */
function relToInterval(r: Extract<Answer, { kind: 'rel' }>): Answer | null {
  const { ops, sides } = orient(r);
  if (!ops.every((o) => o === '<' || o === '\\le')) return null;
  const bracket = (o: string, open: boolean) => (o === '<' ? (open ? '(' : ')') : open ? '[' : ']');
  const lo = constant(-Infinity, '-\\infty'), hi = constant(Infinity, '\\infty');
  if (sides.length === 2 && isVariable(sides[0]) && isConstant(sides[1])) return { kind: 'tuple', raw: r.raw, open: '(', close: bracket(ops[0], false), items: [lo, sides[1]] };
  if (sides.length === 2 && isConstant(sides[0]) && isVariable(sides[1])) return { kind: 'tuple', raw: r.raw, open: bracket(ops[0], true), close: ')', items: [sides[0], hi] };
  if (sides.length === 3 && isConstant(sides[0]) && isVariable(sides[1]) && isConstant(sides[2])) {
    return { kind: 'tuple', raw: r.raw, open: bracket(ops[0], true), close: bracket(ops[1], false), items: [sides[0], sides[2]] };
  }
  return null;
}

function difference(l: Answer, r: Answer): Expr | null {
  if (l.kind !== 'expr' || r.kind !== 'expr') return null;
  try {
    return compileExpr(`(${l.src}) - (${r.src})`, `${l.raw}-${r.raw}`);
  } catch {
    return null;
  }
}

function relEqual(a: Extract<Answer, { kind: 'rel' }>, b: Extract<Answer, { kind: 'rel' }>): boolean {
  const x = orient(a), y = orient(b);
  if (x.ops.length !== y.ops.length || x.ops.some((o, k) => o !== y.ops[k])) return false;
  if (x.sides.every((s, k) => answersEqual(s, y.sides[k]))) return true;
  if (x.ops.length !== 1) return false;
  const symmetric = x.ops[0] === '=' || x.ops[0] === '\\ne' || x.ops[0] === '\\approx';
  if (symmetric && answersEqual(x.sides[0], y.sides[1]) && answersEqual(x.sides[1], y.sides[0])) return true;
  const da = difference(x.sides[0], x.sides[1]), db = difference(y.sides[0], y.sides[1]);
  if (!da || !db) return false;
  // Equations may be scaled by any factor, inequalities only by a positive one.
  const r = ratio(da, db);
  return r !== null && (symmetric || r > 0);
}

/** Matches every item of `a` to a distinct equal item of `b` (order free). */
function sameMembers(a: Answer[], b: Answer[]): boolean {
  if (a.length !== b.length) return false;
  const used = new Array<boolean>(b.length).fill(false);
  return a.every((x) => {
    const k = b.findIndex((y, j) => !used[j] && answersEqual(x, y));
    if (k === -1) return false;
    used[k] = true;
    return true;
  });
}

const sameSequence = (a: Answer[], b: Answer[]) => a.length === b.length && a.every((x, k) => answersEqual(x, b[k]));

/** Whether two parsed answers denote the same value. */
export function answersEqual(a: Answer, b: Answer): boolean {
  if (a.raw === b.raw) return true;
  if (a.kind === 'text' || b.kind === 'text') return normalizeText(a.raw) === normalizeText(b.raw);
  if (a.kind === 'rel' || b.kind === 'rel') {
    if (a.kind === 'rel' && b.kind === 'rel') return relEqual(a, b) || (isAssignment(a) && isAssignment(b) && answersEqual(a.sides[1], b.sides[1]));
    if (a.kind === 'rel') {
      // A predicted chain of equalities (2 + 2 = 4, x = 2 + 2 = 4) ends with its answer.
      if (a.ops.every((o) => o === '=')) return answersEqual(a.sides[a.sides.length - 1], b);
      const interval = relToInterval(a);
      return interval !== null && answersEqual(interval, b);
    }
    const r = b as Extract<Answer, { kind: 'rel' }>;
    if (isAssignment(r)) return answersEqual(a, r.sides[1]);
    const interval = relToInterval(r);
    return interval !== null && answersEqual(a, interval);
  }
  if (a.kind === 'expr' && b.kind === 'expr') return exprEqual(a, b);
  if (a.kind === 'set' && b.kind === 'set') return sameMembers(a.items, b.items);
  if (a.kind === 'set') return setEqualsOther(a, b, false);
  if (b.kind === 'set') return setEqualsOther(b, a, true);
  if (a.kind === 'tuple' && b.kind === 'tuple') {
    const interval = (t: typeof a) => t.open === '[' || t.close === ']';
    if ((interval(a) || interval(b)) && (a.open !== b.open || a.close !== b.close)) return false;
    return sameSequence(a.items, b.items);
  }
  if (a.kind === 'union' && b.kind === 'union') return sameMembers(a.parts, b.parts);
  if (a.kind === 'matrix' && b.kind === 'matrix') return a.rows.length === b.rows.length && a.rows.every((r, k) => sameSequence(r, b.rows[k]));
  return false;
}

/** A set or bare list against a single value, keeping the prediction first in every comparison. */
function setEqualsOther(s: Extract<Answer, { kind: 'set' }>, o: Answer, setIsRef: boolean): boolean {
  const eq = (x: Answer, y: Answer) => (setIsRef ? answersEqual(y, x) : answersEqual(x, y));
  if (o.kind === 'tuple') return !s.braces && s.items.length === o.items.length && s.items.every((x, k) => eq(x, o.items[k]));
  if (o.kind !== 'expr') return false;
  if (s.decimalComma !== null && o.value && closeTo(s.decimalComma, o.value[0])) return true;
  return s.items.length === 1 && eq(s.items[0], o);
}

/** `x = ...`, `a_1 = ...` or `f(x) = ...`: the right side is the answer. */
function isAssignment(r: Extract<Answer, { kind: 'rel' }>): boolean {
  return r.ops.length === 1 && r.ops[0] === '=' && (isVariable(r.sides[0]) || /^[a-zA-Z]\s*\(\s*[a-zA-Z]\s*\)$/.test(r.sides[0].raw.trim()));
}
