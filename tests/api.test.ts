import { describe, expect, it } from 'vitest';

describe('package entry', () => {
  it('exposes the public API from src/index.ts', async () => {
    const api = await import('../src/index.ts');
    for (const name of ['initBackend', 'Transformer', 'Tokenizer', 'generate', 'groupAdvantages', 'grpoLoss', 'dpoLoss', 'AdamW', 'loadRecipe', 'runRecipe', 'loadRewards', 'scoreBatch']) {
      expect(typeof (api as Record<string, unknown>)[name], name).toBe('function');
    }
    expect(api.groupAdvantages([1, 0], 2, { scale: 'none' })).toEqual([0.5, -0.5]);
  });
});

describe('plain-JavaScript entry', () => {
  it('re-exports every value that src/index.ts exports', async () => {
    const { readFileSync } = await import('node:fs');
    const bin = readFileSync('bin/index.js', 'utf8');
    const src = await import('../src/index.ts');
    for (const name of Object.keys(src)) expect(bin, name).toContain(name);
  });
});
