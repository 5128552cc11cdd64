// The optional-package rule (tests/optional.ts) that the bubblewrap, nats-server, chromium, WebGPU
// and PyTorch tests follow: present runs quietly; missing skips with exactly one line saying how to
// enable them; missing under CI=true fails.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { optionalPresent } from './optional.ts';

describe('optionalPresent', () => {
  const ci = process.env.CI;
  afterEach(() => {
    vi.restoreAllMocks();
    if (ci === undefined) delete process.env.CI;
    else process.env.CI = ci;
  });
  const written = () => {
    let out = '';
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => ((out += String(chunk)), true));
    return () => out;
  };

  it('is true and silent when nothing is missing', () => {
    delete process.env.CI;
    const out = written();
    expect(optionalPresent('x tests', null, '`apt-get install x`')).toBe(true);
    expect(out()).toBe('');
  });

  it('is false with one line naming the tests, what is missing and how to enable them', () => {
    delete process.env.CI;
    const out = written();
    expect(optionalPresent('x tests', 'x is not installed', '`apt-get install x`')).toBe(false);
    expect(out().trim().split('\n')).toEqual(['x tests skipped: x is not installed; enable with `apt-get install x`']);
  });

  it('throws under CI=true, where a skip would pass CI without testing', () => {
    process.env.CI = 'true';
    const out = written();
    expect(() => optionalPresent('x tests', 'x is not installed', '`apt-get install x`')).toThrow(
      /^CI=true and x tests skipped: x is not installed; enable with `apt-get install x`$/,
    );
    expect(out()).toBe('');
  });
});
