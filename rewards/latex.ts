// LaTeX answers -> plain text the answer parser understands, and scalar LaTeX -> mathjs syntax.
// Everything here is a linear scan or a regex without nested quantifiers: inputs are bounded by the
// caller, and nothing may backtrack catastrophically on hostile text.

const UNICODE: [string, string][] = [
  ['−', '-'],
  ['–', '-'],
  ['×', '\\times '],
  ['÷', '\\div '],
  ['·', '\\cdot '],
  ['⋅', '\\cdot '],
  ['≤', '\\le '],
  ['≥', '\\ge '],
  ['≠', '\\ne '],
  ['∞', '\\infty '],
  ['π', '\\pi '],
  ['√', '\\sqrt '],
  ['∪', '\\cup '],
  ['∈', '\\in '],
  ['，', ','],
  ['：', ':'],
  ['（', '('],
  ['）', ')'],
  ['。', '.'],
];

const COMMAND_ALIASES: [RegExp, string][] = [
  [/\\(?:dfrac|tfrac|cfrac)(?![a-zA-Z])/g, '\\frac'],
  [/\\(?:dbinom|tbinom)(?![a-zA-Z])/g, '\\binom'],
  [/\\(?:leq|leqslant|leqq)(?![a-zA-Z])/g, '\\le'],
  [/\\(?:geq|geqslant|geqq)(?![a-zA-Z])/g, '\\ge'],
  [/\\neq(?![a-zA-Z])/g, '\\ne'],
  [/\\lt(?![a-zA-Z])/g, '<'],
  [/\\gt(?![a-zA-Z])/g, '>'],
  [/<=/g, '\\le '],
  [/>=/g, '\\ge '],
  [/!=/g, '\\ne '],
  [/\\(?:left|right|bigl|bigr|Bigl|Bigr|biggl|biggr|Biggl|Biggr|big|Big|bigg|Bigg)(?![a-zA-Z])\.?/g, ''],
  [/\\(?:displaystyle|textstyle|scriptstyle|limits|nolimits)(?![a-zA-Z])/g, ''],
  [/\\(?:quad|qquad)(?![a-zA-Z])/g, ' '],
  [/(?<!\\)\\[,;:! ]/g, ' '],
  [/~/g, ' '],
];

/** Unwraps `\cmd{...}` to its content for text-like commands, keeping nested braces intact. */
function unwrapCommands(s: string, names: readonly string[]): string {
  for (const name of names) {
    const head = `\\${name}{`;
    for (let i = s.indexOf(head); i !== -1; i = s.indexOf(head, i)) {
      const close = matchBrace(s, i + head.length - 1);
      if (close === -1) break;
      s = s.slice(0, i) + s.slice(i + head.length, close) + s.slice(close + 1);
    }
  }
  return s;
}

/** Index of the `}` closing the `{` at `open`, or -1. */
export function matchBrace(s: string, open: number): number {
  let depth = 0;
  for (let i = open; i < s.length; i++) {
    const c = s[i];
    if (c === '\\') i++;
    else if (c === '{') depth++;
    else if (c === '}' && --depth === 0) return i;
  }
  return -1;
}

const TEXT_COMMANDS = [
  'text',
  'textbf',
  'textit',
  'textrm',
  'mathrm',
  'mathbf',
  'mathit',
  'mbox',
  'operatorname',
  'boldsymbol',
  'mathsf',
  'textnormal',
];

/** Surface clean-up of an extracted answer: math delimiters, sizing and spacing commands, text
 * wrappers, degree signs, unicode symbols, trailing punctuation. The result is still LaTeX. */
export function normalizeLatex(input: string): string {
  let s = input;
  for (const [from, to] of UNICODE) if (s.includes(from)) s = s.split(from).join(to);
  s = s.replace(/\\\$/g, '$').replace(/\\[()[\]]/g, ' ');
  // Thousands separators LaTeX-style: 1\,000, 11,\!111 and 14{,}916 (before \! and \, become spaces).
  s = s.replace(/(\d)(?:,|\{,\})?\\[,!;: ]\s*(?=\d{3}(?!\d))/g, '$1').replace(/\{,\}/g, ',');
  for (const [re, to] of COMMAND_ALIASES) s = s.replace(re, to);
  s = unwrapCommands(s, TEXT_COMMANDS);
  // The real line: \mathbb{R}, \mathbb R, ℝ are the interval (-\infty, \infty).
  s = s.replace(/\\mathbb\s*\{?\s*R\s*\}?(?![a-zA-Z])|ℝ/g, '(-\\infty, \\infty)');
  s = s.replace(/\^\s*\{?\s*\\circ\s*\}?|\\circ(?![a-zA-Z])|°|\\degree(?![a-zA-Z])/g, '');
  s = s.replace(/\\%/g, '%').replace(/\$/g, ' ');
  s = s.replace(/\s+/g, ' ').trim();
  s = s.replace(/[.,;:]+$/, '').trim();
  return s;
}

// Units and currency words stripped from a number ("12 cm", "$5", "3 apples", "40 km/h").
const UNIT_WORDS =
  'cm|mm|km|m|kg|mg|g|lb|lbs|oz|s|sec|secs|seconds?|minutes?|mins?|hours?|hrs?|h|days?|weeks?|months?|years?|ml|l|liters?|litres?|' +
  'meters?|metres?|feet|foot|ft|inch|inches|in|miles?|mph|km/h|m/s|units?|square units|sq units|cubic units|dollars?|cents?|euros?|' +
  'pounds?|yuan|usd|eur|degrees?|points?|people|persons?|students?|items?|times|ways|元|个|人|米|厘米|千米|公里|天|小时|分钟|秒|岁|度|种';
const UNIT_TAIL = new RegExp(`^(.*?[\\d}.])\\s*(?:square |cubic |sq )?(?:${UNIT_WORDS})(?:\\^?\\s*\\{?[23]\\}?|²|³)?$`, 'i');

/** Strips currency signs, a trailing unit and a trailing word like "apples" after a number. */
export function stripUnits(s: string): string {
  let t = s.replace(/^(?:\$|€|£|¥|₹|USD|US\$|RMB)\s*/i, '').replace(/\s*(?:€|£|¥|₹)$/, '');
  const m = UNIT_TAIL.exec(t);
  if (m && /\d/.test(m[1])) t = m[1];
  // "3 apples", "12 square feet": a number followed by plain words only.
  const w = /^(-?[\d.,]+(?:\s*\/\s*\d+)?%?)\s+[a-zA-Z]{2,}(?:\s+[a-zA-Z]{2,}){0,3}$/.exec(t);
  if (w) t = w[1];
  return t.trim();
}

// Names mathjs evaluates that an answer may use; any other run of letters is a product of variables.
export const FUNCTIONS: ReadonlySet<string> = new Set([
  'sin',
  'cos',
  'tan',
  'sec',
  'csc',
  'cot',
  'asin',
  'acos',
  'atan',
  'sinh',
  'cosh',
  'tanh',
  'exp',
  'log',
  'sqrt',
  'abs',
  'nthRoot',
  'combinations',
]);
const LATEX_FUNCTIONS: Record<string, string> = {
  sin: 'sin',
  cos: 'cos',
  tan: 'tan',
  sec: 'sec',
  csc: 'csc',
  cot: 'cot',
  arcsin: 'asin',
  arccos: 'acos',
  arctan: 'atan',
  sinh: 'sinh',
  cosh: 'cosh',
  tanh: 'tanh',
  exp: 'exp',
  ln: 'log',
  log: 'log',
};
const PLAIN_FUNCTIONS: Record<string, string> = { ...LATEX_FUNCTIONS, sqrt: 'sqrt', abs: 'abs', asin: 'asin', acos: 'acos', atan: 'atan' };
const GREEK = new Set([
  'alpha',
  'beta',
  'gamma',
  'delta',
  'epsilon',
  'varepsilon',
  'zeta',
  'eta',
  'theta',
  'vartheta',
  'iota',
  'kappa',
  'lambda',
  'mu',
  'nu',
  'xi',
  'rho',
  'sigma',
  'tau',
  'upsilon',
  'phi',
  'varphi',
  'chi',
  'psi',
  'omega',
  'Gamma',
  'Delta',
  'Theta',
  'Lambda',
  'Xi',
  'Sigma',
  'Phi',
  'Psi',
  'Omega',
]);

type Tok = { t: 'cmd' | 'num' | 'word' | 'op'; v: string };

function tokenize(s: string): Tok[] {
  const out: Tok[] = [];
  for (let i = 0; i < s.length; ) {
    const c = s[i];
    if (c === ' ' || c === '\t' || c === '\n') {
      i++;
    } else if (c === '\\') {
      let j = i + 1;
      while (j < s.length && /[a-zA-Z]/.test(s[j])) j++;
      if (j === i + 1) j++;
      out.push({ t: 'cmd', v: s.slice(i + 1, j) });
      i = j;
    } else if (/[0-9.]/.test(c)) {
      let j = i;
      while (j < s.length && /[0-9.]/.test(s[j])) j++;
      out.push({ t: 'num', v: s.slice(i, j) });
      i = j;
    } else if (/[a-zA-Z]/.test(c)) {
      let j = i;
      while (j < s.length && /[a-zA-Z]/.test(s[j])) j++;
      out.push({ t: 'word', v: s.slice(i, j) });
      i = j;
    } else {
      out.push({ t: 'op', v: c });
      i++;
    }
  }
  return out;
}

class Converter {
  private i = 0;
  constructor(private readonly toks: Tok[]) {}

  run(): string {
    const out = this.seq(null);
    if (this.i < this.toks.length) throw new Error('unbalanced brackets');
    return out;
  }

  private peek(): Tok | undefined {
    return this.toks[this.i];
  }

  private isOp(v: string): boolean {
    const t = this.peek();
    return t !== undefined && t.t === 'op' && t.v === v;
  }

  /** Tokens up to the closing bracket `stop` (not consumed), converted. */
  private seq(stop: string | null): string {
    const parts: string[] = [];
    let absOpen = false;
    while (this.i < this.toks.length) {
      const t = this.peek()!;
      if (t.t === 'op' && (t.v === stop || ((t.v === ')' || t.v === '}' || t.v === ']') && stop !== null))) break;
      if (t.t === 'op' && (t.v === ')' || t.v === '}' || t.v === ']')) throw new Error('unbalanced brackets');
      if (t.t === 'op' && t.v === '|') {
        this.i++;
        parts.push(absOpen ? ')' : ' abs(');
        absOpen = !absOpen;
        continue;
      }
      const item = this.item();
      const prev = parts[parts.length - 1];
      // A subscript belongs to the name before it: x_1, a_{n}.
      if (item.startsWith('_') && prev !== undefined) parts[parts.length - 1] += item;
      // n(n+1) is a product: mathjs would read a name before '(' as a function call.
      else if (item.startsWith('(') && prev !== undefined && /[A-Za-z0-9_)]$/.test(prev)) parts.push('*', item);
      else parts.push(item);
    }
    if (absOpen) throw new Error('unbalanced |');
    return parts.join(' ');
  }

  /** A required argument: `{...}`, `(...)`, or a single token (`\frac12`, `x^2`). */
  private arg(): string {
    const t = this.peek();
    if (!t) throw new Error('missing argument');
    if (t.t === 'op' && (t.v === '{' || t.v === '(')) return `(${this.group()})`;
    if (t.t === 'num') {
      // \frac12: a bare digit argument is one digit.
      this.i++;
      if (t.v.length > 1 && !t.v.includes('.')) {
        this.toks.splice(this.i, 0, { t: 'num', v: t.v.slice(1) });
        return t.v[0];
      }
      return t.v;
    }
    if (t.t === 'word') {
      this.i++;
      if (t.v.length > 1) {
        this.toks.splice(this.i, 0, { t: 'word', v: t.v.slice(1) });
        return t.v[0];
      }
      return t.v;
    }
    if (t.t === 'op' && t.v === '-') {
      this.i++;
      return `(-${this.arg()})`;
    }
    return `(${this.item()})`;
  }

  /** `{...}`, `(...)` or `[...]` with its brackets consumed; the content converted. */
  private group(): string {
    const open = this.peek()!.v;
    const close = open === '{' ? '}' : open === '(' ? ')' : ']';
    this.i++;
    const inner = this.seq(close);
    if (!this.isOp(close)) throw new Error(`expected ${close}`);
    this.i++;
    return inner;
  }

  private item(): string {
    const t = this.toks[this.i++];
    if (t.t === 'num') {
      if (!/^\d*\.?\d+$|^\d+\.$/.test(t.v)) throw new Error(`bad number ${t.v}`);
      return t.v.endsWith('.') ? t.v.slice(0, -1) : t.v;
    }
    if (t.t === 'word') return this.word(t.v);
    if (t.t === 'cmd') return this.command(t.v);
    switch (t.v) {
      case '{':
      case '(':
      case '[':
        this.i--;
        return `(${this.group()})`;
      case '^':
        return `^${this.arg()}`;
      case '_':
        // Subscripts become part of the name: a_1, x_{n}.
        return `_${this.arg().replace(/[^a-zA-Z0-9]/g, '')}`;
      case '+':
      case '-':
      case '*':
      case '/':
      case '!':
        return t.v;
      case "'":
        throw new Error('primes are not evaluated');
      default:
        throw new Error(`unexpected '${t.v}'`);
    }
  }

  private word(w: string): string {
    if (PLAIN_FUNCTIONS[w] !== undefined) return this.func(PLAIN_FUNCTIONS[w]);
    if (w === 'pi') return 'pi';
    if (w === 'inf' || w === 'infty' || w === 'Infinity') return 'Infinity';
    // A run of letters is a product of one-letter variables ("2ab" = 2*a*b).
    return w.split('').join(' ');
  }

  private func(name: string): string {
    let power: string | null = null,
      base: string | null = null;
    for (let k = 0; k < 2; k++) {
      if (this.isOp('^')) {
        this.i++;
        power = this.arg();
      } else if (this.isOp('_')) {
        this.i++;
        base = this.arg();
      }
    }
    const a = this.arg();
    const call = base !== null ? `${name}(${a}, ${base})` : `${name}(${a})`;
    return power !== null ? `(${call})^${power}` : call;
  }

  private command(c: string): string {
    if (LATEX_FUNCTIONS[c] !== undefined) return this.func(LATEX_FUNCTIONS[c]);
    if (GREEK.has(c)) return c === 'pi' ? 'pi' : `${c.replace(/^var/, '')}_`;
    switch (c) {
      case 'pi':
        return 'pi';
      case 'infty':
      case 'infin':
        return 'Infinity';
      case 'frac': {
        const a = this.arg(),
          b = this.arg();
        return `((${a})/(${b}))`;
      }
      case 'binom': {
        const a = this.arg(),
          b = this.arg();
        return `combinations(${a}, ${b})`;
      }
      case 'sqrt': {
        if (this.isOp('[')) {
          const n = this.group();
          return `nthRoot(${this.arg()}, ${n})`;
        }
        // \sqrt 10 is written meaning the root of 10 (TeX would take one digit, as \frac12 does).
        const t = this.peek();
        if (t?.t === 'num' && /^\d+$/.test(t.v)) {
          this.i++;
          return `sqrt(${t.v})`;
        }
        return `sqrt(${this.arg()})`;
      }
      case 'cdot':
      case 'times':
      case 'ast':
        return '*';
      case 'div':
        return '/';
      case 'lvert':
      case 'rvert':
      case 'vert':
      case 'mid':
        throw new Error('\\vert is only read as |');
      case 'e':
        return 'e';
      default:
        throw new Error(`unknown command \\${c}`);
    }
  }
}

/** A scalar LaTeX expression in mathjs syntax; throws when it is not a plain expression. */
export function latexToMathjs(latex: string): string {
  const s = latex.replace(/\\[lr]vert(?![a-zA-Z])|\\vert(?![a-zA-Z])|\\mid(?![a-zA-Z])/g, '|');
  return new Converter(tokenize(s)).run();
}

export const KNOWN_NAMES: ReadonlySet<string> = new Set([...FUNCTIONS, 'pi', 'e', 'i', 'Infinity']);
