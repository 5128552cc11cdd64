// `r1 ... | head`: when the reader of r1's output goes away early, r1 ends quietly with its own exit
// code instead of an EPIPE stack trace.
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';

describe('r1 piped into a reader that stops early', () => {
  it('exits 0 without a stack trace', async () => {
    const child = spawn(process.execPath, ['bin/r1.js', 'recipe', '--explain'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c) => (stderr += c));
    child.stdout.destroy(); // the reader is gone before r1 writes, as after `head -1`'s line
    const code = await new Promise<number | null>((done) => child.on('exit', done));
    expect(stderr).not.toMatch(/EPIPE|Error/);
    expect(code).toBe(0);
  }, 60_000);
});
