import { describe, expect, it } from 'vitest';

describe('package entry', () => {
  it('exposes the public API from src/index.ts', async () => {
    const api = await import('../src/index.ts');
    for (const name of [
      'initBackend',
      'Transformer',
      'Tokenizer',
      'generate',
      'groupAdvantages',
      'grpoLoss',
      'dpoLoss',
      'AdamW',
      'loadRecipe',
      'runRecipe',
      'loadRewards',
      'scoreBatch',
    ]) {
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

describe('the r1 command', () => {
  it('runs when npx starts it through a node_modules/.bin symlink', async () => {
    const { mkdtempSync, symlinkSync, rmSync } = await import('node:fs');
    const { join, resolve } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const { spawnSync } = await import('node:child_process');
    const dir = mkdtempSync(join(tmpdir(), 'r1-bin-'));
    try {
      symlinkSync(resolve('bin/r1.js'), join(dir, 'r1'));
      const r = spawnSync(process.execPath, [join(dir, 'r1'), 'recipe', '--explain', 'grpo'], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toContain('num_generations');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);
});
