// Number flags are checked: a bad one is exit 2 naming the flag, before any model loads.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { flagNumber } from '../src/cli/numbers.ts';

describe('flagNumber', () => {
  it('accepts numbers within the rule and names the flag otherwise', () => {
    expect(flagNumber('--n', '3', { integer: true, min: 1 })).toBe(3);
    expect(flagNumber('--p', '0.5', { gt: 0, max: 1 })).toBe(0.5);
    expect(() => flagNumber('--n', 'abc', { integer: true, min: 1 })).toThrow("--n must be an integer >= 1, got 'abc'");
    expect(() => flagNumber('--n', '', { integer: true })).toThrow(/--n must be an integer/);
    expect(() => flagNumber('--n', '2.5', { integer: true })).toThrow(/--n must be an integer/);
    expect(() => flagNumber('--max-new-tokens', '-5', { integer: true, min: 1 })).toThrow(
      "--max-new-tokens must be an integer >= 1, got '-5'",
    );
    expect(() => flagNumber('--top-p', '0', { gt: 0, max: 1 })).toThrow("--top-p must be a number > 0 and <= 1, got '0'");
    expect(() => flagNumber('--t', 'Infinity')).toThrow(/--t must be a number/);
  });
});

describe('r1 generate with bad numbers', () => {
  const cli = join(process.cwd(), 'bin', 'r1.js');
  it.each([
    [['-n', 'abc'], /--num must be an integer >= 1, got 'abc'/],
    [['--max-new-tokens', '-5'], /--max-new-tokens must be an integer >= 1, got '-5'/],
    [['--temperature', 'hot'], /--temperature must be a number >= 0/],
  ])('%j: exit 2 naming the flag', async (args, message) => {
    const res = await promisify(execFile)(process.execPath, [cli, 'generate', '--model', 'nowhere', '--prompt', 'x', ...args], {
      timeout: 60_000,
    }).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => e,
    );
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(message);
  });
});
