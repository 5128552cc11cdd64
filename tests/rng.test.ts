import { describe, expect, it } from 'vitest';
import { Rng } from '../src/engine/rng.ts';

describe('Rng', () => {
  it('repeats the same stream for the same seed and differs across seeds', () => {
    const a = new Rng(42),
      b = new Rng(42),
      c = new Rng(43);
    const xs = Array.from({ length: 5 }, () => a.next());
    expect(Array.from({ length: 5 }, () => b.next())).toEqual(xs);
    expect(Array.from({ length: 5 }, () => c.next())).not.toEqual(xs);
  });

  it('resumes exactly from a saved state', () => {
    const a = new Rng(7);
    a.next();
    const saved = a.state();
    const rest = [a.next(), a.next()];
    const b = Rng.fromState(saved);
    expect([b.next(), b.next()]).toEqual(rest);
  });

  it('draws uniform values in [0, 1) with a sane mean', () => {
    const r = new Rng(1);
    let sum = 0;
    for (let i = 0; i < 10000; i++) {
      const x = r.next();
      expect(x >= 0 && x < 1).toBe(true);
      sum += x;
    }
    expect(sum / 10000).toBeCloseTo(0.5, 1);
  });
});
