// Number flags of the r1 command, checked: `-n abc` or `--max-new-tokens -5` is a UserError (exit 2)
// naming the flag, never a silent NaN or an empty result.
import { UserError } from '../errors.ts';

export type NumberRule = { integer?: boolean; min?: number; gt?: number; max?: number };

export function flagNumber(flag: string, value: string, rule: NumberRule = {}): number {
  const n = value.trim() === '' ? NaN : Number(value);
  const kind = rule.integer ? 'an integer' : 'a number';
  const bounds = [
    rule.gt !== undefined && `> ${rule.gt}`,
    rule.min !== undefined && `>= ${rule.min}`,
    rule.max !== undefined && `<= ${rule.max}`,
  ]
    .filter(Boolean)
    .join(' and ');
  const ok =
    Number.isFinite(n) &&
    (!rule.integer || Number.isInteger(n)) &&
    (rule.gt === undefined || n > rule.gt) &&
    (rule.min === undefined || n >= rule.min) &&
    (rule.max === undefined || n <= rule.max);
  if (!ok) throw new UserError(`${flag} must be ${kind}${bounds ? ` ${bounds}` : ''}, got '${value}'`);
  return n;
}
