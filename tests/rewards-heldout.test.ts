// Issue 13's bar on our held-out set (tests/fixtures/accuracy-heldout: the shipped R1 test set's golds
// and seeded golds in every answer category, each with right spellings and near-miss wrong answers):
// at least 97% of right answers accepted and 97% of wrong answers rejected, overall and per category.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { judge } from '../rewards/accuracy.ts';

type Case = { category: string; gold: string; completion: string; right: boolean };
const cases = readFileSync(join(import.meta.dirname, 'fixtures/accuracy-heldout/heldout.jsonl'), 'utf8')
  .trim()
  .split('\n')
  .map((l) => JSON.parse(l) as Case);

describe('held-out accuracy', () => {
  it('accepts >= 97% of right answers and rejects >= 97% of wrong ones, in every category', () => {
    const by: Record<string, { right: number; accepted: number; wrong: number; rejected: number }> = {};
    for (const c of cases) {
      const s = judge(c.completion, c.gold).score;
      const b = (by[c.category] ??= { right: 0, accepted: 0, wrong: 0, rejected: 0 });
      if (c.right) [b.right, b.accepted] = [b.right + 1, b.accepted + (s === 1 ? 1 : 0)];
      else [b.wrong, b.rejected] = [b.wrong + 1, b.rejected + (s === 0 ? 1 : 0)];
    }
    const all = Object.values(by).reduce((a, b) => ({
      right: a.right + b.right,
      accepted: a.accepted + b.accepted,
      wrong: a.wrong + b.wrong,
      rejected: a.rejected + b.rejected,
    }));
    expect(cases.length).toBeGreaterThan(5000);
    expect(all.accepted / all.right).toBeGreaterThanOrEqual(0.97);
    expect(all.rejected / all.wrong).toBeGreaterThanOrEqual(0.97);
    for (const [k, b] of Object.entries(by)) {
      expect([k, b.accepted / b.right >= 0.97, b.rejected / b.wrong >= 0.97]).toEqual([k, true, true]);
    }
  });
});
