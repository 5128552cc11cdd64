// The judge's side of function results: the result notation (sandbox/result.ts) keeps integers
// exact, and the comparison (tests.ts deepEqual / judge) never lets a number trick pass. The attack
// these walls stop: a Python function returning 10**400 (or its negative, or inside a list or dict of
// the right shape) used to cross as JSON, become Infinity, and pass any numeric test through the
// relative tolerance (|Inf - x| <= 1e-9 * Inf). Pure functions, no sandbox process.
import { describe, expect, it } from 'vitest';
import { MAX_DEPTH, parseResult } from '../sandbox/result.ts';
import { deepEqual, judge, normalizeTests, type Test } from '../sandbox/tests.ts';

const ok = (result: string) => ({ status: 'ok' as const, out: '', result, detail: '' });
const verdict = (expected: unknown, result: string) => judge({ fn: 'f', args: [], expected } as Test, ok(result), 1 << 20).status;
const HUGE = '1' + '0'.repeat(400);

describe('the attack without the wall', () => {
  it('JSON turns an integer past the double range into Infinity, and the old tolerance matched Infinity with any large number', () => {
    const parsed = JSON.parse(HUGE) as number;
    expect(parsed).toBe(Infinity);
    const oldTolerance = (a: number, b: number) => Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b));
    expect(oldTolerance(parsed, 1e300)).toBe(true);
  });
});

describe('the result notation', () => {
  it('reads integers exactly at any size, in decimal or hexadecimal, and floats as doubles', () => {
    expect(parseResult(HUGE)).toBe(10n ** 400n);
    expect(parseResult('-' + HUGE)).toBe(-(10n ** 400n));
    expect(parseResult('9007199254740993')).toBe(2n ** 53n + 1n);
    expect(parseResult('0x1f')).toBe(31n);
    expect(parseResult('-0xff')).toBe(-255n);
    expect(parseResult('1.5')).toBe(1.5);
    expect(parseResult('1e+16')).toBe(1e16);
    expect(Object.is(parseResult('-0.0'), -0)).toBe(true);
    expect(parseResult('NaN')).toBeNaN();
    expect(parseResult('[Infinity,-Infinity]')).toEqual([Infinity, -Infinity]);
    expect(parseResult(' {"a": [1, "2", null, true, false], "__proto__": {}} ')).toEqual(
      Object.assign(Object.create(null), { a: [1n, '2', null, true, false], ['__proto__']: Object.create(null) }),
    );
  });

  it.each([
    ['trailing text', '1 2'],
    ['a leading zero', '01'],
    ['a bare word', 'nan'],
    ['a duplicate key', '{"a":1,"a":2}'],
    ['a raw newline in a string', '"a\nb"'],
    ['an unclosed list', '[1,2'],
    ['a trailing comma', '[1,]'],
    ['a key that is not a string', '{1:2}'],
    ['nothing', ''],
    ['nesting past the limit', '['.repeat(MAX_DEPTH + 2) + ']'.repeat(MAX_DEPTH + 2)],
  ])('refuses %s', (_what, text) => {
    expect(() => parseResult(text)).toThrow(SyntaxError);
    expect(verdict(1, text)).toBe('error');
  });
});

describe('the comparison', () => {
  it('never equals a finite expected value with an integer past the double range, alone or nested', () => {
    for (const expected of [5, 1e300, Number.MAX_VALUE]) expect(verdict(expected, HUGE)).toBe('fail');
    expect(verdict(-1e300, '-' + HUGE)).toBe('fail');
    expect(verdict([1, 2], `[1, ${HUGE}]`)).toBe('fail');
    expect(verdict({ a: 1e308 }, `{"a": ${HUGE}}`)).toBe('fail');
    expect(verdict(10n ** 400n, HUGE)).toBe('pass');
  });

  it('compares integers exactly at and past 2^53 when the expected value is exact', () => {
    expect(verdict(2 ** 53 - 1, '9007199254740991')).toBe('pass');
    expect(verdict(2 ** 53 - 1, '9007199254740992')).toBe('fail');
    expect(verdict(2n ** 53n, '9007199254740993')).toBe('fail');
    expect(verdict(2n ** 53n + 1n, '9007199254740993')).toBe('pass');
    // An expected integer read as a double past 2^53 holds only the double: the result must round to it.
    expect(verdict(2 ** 60, String(2n ** 60n))).toBe('pass');
    expect(verdict(2 ** 60, String(2n ** 60n + 4096n))).toBe('fail');
  });

  it('applies the float tolerance to finite floats only; a non-finite value equals only itself', () => {
    expect(verdict(0.3, '0.30000000000000004')).toBe('pass');
    expect(verdict(3, '3.0000000001')).toBe('pass');
    expect(verdict(2.5, '3')).toBe('fail');
    expect(verdict(1e308, 'Infinity')).toBe('fail');
    expect(verdict(Infinity, 'Infinity')).toBe('pass');
    expect(verdict(-Infinity, 'Infinity')).toBe('fail');
    expect(verdict(Infinity, '1e308')).toBe('fail');
    expect(verdict(NaN, 'NaN')).toBe('pass');
    expect(verdict(0, 'NaN')).toBe('fail');
    expect(verdict(NaN, '0.0')).toBe('fail');
    expect(verdict(0, '-0.0')).toBe('pass');
    expect(verdict(Infinity, HUGE)).toBe('fail');
  });

  it('never equals a string that looks like a number with the number, either way', () => {
    expect(verdict(5, '"5"')).toBe('fail');
    expect(verdict('5', '5')).toBe('fail');
    expect(verdict('1e400', '"1e400"')).toBe('pass');
    expect(verdict(Infinity, '"Infinity"')).toBe('fail');
    expect(verdict(true, '1')).toBe('fail');
    expect(verdict(null, '0')).toBe('fail');
  });

  it('compares nested lists and dicts element by element and key by key', () => {
    expect(verdict({ a: [1, { b: 2.5 }], c: null }, '{"c": null, "a": [1, {"b": 2.5}]}')).toBe('pass');
    expect(verdict({ a: [1, { b: 2.5 }] }, '{"a": [1, {"b": 2.5, "x": 1}]}')).toBe('fail');
    expect(verdict([[1, 2], [3]], '[[1, 2], [3, 4]]')).toBe('fail');
    expect(verdict({ a: 1 }, '[1]')).toBe('fail');
    expect(deepEqual({ a: [1, 2, { b: null }] }, { a: [1, 2, { b: undefined }] })).toBe(true);
  });

  it('reads tests given as JSON text exactly, so an expected integer past 2^53 keeps its digits', () => {
    const [t] = normalizeTests('[{"fn": "f", "args": [9007199254740993], "expected": 9007199254740993}]');
    expect(t).toEqual({ fn: 'f', args: [9007199254740992], expected: 9007199254740993n });
    expect(verdict((t as { expected: unknown }).expected, '9007199254740992')).toBe('fail');
    expect(() => normalizeTests('[{"input": "1", "output": "1"},]')).toThrow(/a string must hold JSON tests/);
  });
});
