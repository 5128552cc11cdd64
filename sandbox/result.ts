// The notation in which a sandbox process reports a function's return value, and its parser. It is
// JSON with two differences that keep numbers exact: an integer literal (no '.', no exponent) is an
// exact integer of any size, parsed to a bigint, as is a hexadecimal one (`0x1f`, `-0x1f`: Python
// writes integers past 2,000 bits so, because its decimal conversion of such integers runs Python
// code); a literal with a fraction or an exponent is a double, and `NaN`, `Infinity`, `-Infinity`
// are doubles too. So `10**400` arrives as that integer, not as an `Infinity` a tolerance could match.
// The text comes from an untrusted process: anything else (trailing text, duplicate keys, nesting past
// MAX_DEPTH, raw control characters in strings) is refused with the reason and where.

/** A parsed result: null, booleans, strings, bigints (integers), numbers (floats), arrays, and
 * objects without a prototype. */
export type ResultValue = null | boolean | string | bigint | number | ResultValue[] | { [key: string]: ResultValue };

/** Deeper nesting is refused (the judge compares recursively, and no answer needs it). */
export const MAX_DEPTH = 1000;

const WHITE = /[ \t\n\r]*/y;
const STRING = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;
const NUMBER = /-?(?:0x[0-9a-f]+|(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?)/y;
const WORDS: [string, ResultValue][] = [
  ['null', null],
  ['true', true],
  ['false', false],
  ['NaN', NaN],
  ['Infinity', Infinity],
  ['-Infinity', -Infinity],
];

class Reader {
  pos = 0;
  constructor(readonly text: string) {}

  fail(what: string): never {
    throw new SyntaxError(`${what} at character ${this.pos}`);
  }

  /** Fails naming the character just read. */
  failBefore(what: string): never {
    this.pos--;
    this.fail(what);
  }

  skip(): void {
    WHITE.lastIndex = this.pos;
    WHITE.exec(this.text);
    this.pos = WHITE.lastIndex;
  }

  match(re: RegExp): RegExpExecArray | null {
    re.lastIndex = this.pos;
    const m = re.exec(this.text);
    if (m) this.pos = re.lastIndex;
    return m;
  }

  value(depth: number): ResultValue {
    if (depth > MAX_DEPTH) this.fail(`nesting deeper than ${MAX_DEPTH}`);
    this.skip();
    const c = this.text[this.pos];
    if (c === '[') return this.array(depth);
    if (c === '{') return this.object(depth);
    if (c === '"') return this.string();
    for (const [word, v] of WORDS) {
      if (this.text.startsWith(word, this.pos)) {
        this.pos += word.length;
        return v;
      }
    }
    const m = this.match(NUMBER);
    if (!m) this.fail(c === undefined ? 'unexpected end' : `unexpected ${JSON.stringify(c)}`);
    const literal = m[0];
    if (m[1] !== undefined || m[2] !== undefined) return Number(literal);
    // BigInt() reads 0x but not a sign in front of it.
    return literal.startsWith('-') ? -BigInt(literal.slice(1)) : BigInt(literal);
  }

  string(): string {
    const m = this.match(STRING);
    if (!m) this.fail('a malformed string');
    return JSON.parse(m[0]) as string;
  }

  array(depth: number): ResultValue[] {
    this.pos++;
    const out: ResultValue[] = [];
    this.skip();
    if (this.text[this.pos] === ']') return (this.pos++, out);
    for (;;) {
      out.push(this.value(depth + 1));
      this.skip();
      const c = this.text[this.pos++];
      if (c === ']') return out;
      if (c !== ',') this.failBefore("',' or ']' expected");
    }
  }

  object(depth: number): { [key: string]: ResultValue } {
    this.pos++;
    const out = Object.create(null) as { [key: string]: ResultValue };
    this.skip();
    if (this.text[this.pos] === '}') return (this.pos++, out);
    for (;;) {
      this.skip();
      if (this.text[this.pos] !== '"') this.fail('a string key expected');
      const key = this.string();
      if (Object.hasOwn(out, key)) this.fail(`duplicate key ${JSON.stringify(key).slice(0, 40)}`);
      this.skip();
      if (this.text[this.pos++] !== ':') this.failBefore("':' expected");
      out[key] = this.value(depth + 1);
      this.skip();
      const c = this.text[this.pos++];
      if (c === '}') return out;
      if (c !== ',') this.failBefore("',' or '}' expected");
    }
  }
}

/** The value the text holds; throws a SyntaxError saying what is wrong and where. */
export function parseResult(text: string): ResultValue {
  const r = new Reader(text);
  const v = r.value(0);
  r.skip();
  if (r.pos !== text.length) r.fail('text after the value');
  return v;
}
