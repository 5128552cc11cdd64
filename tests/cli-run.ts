// `r1 <args>` in the test's own process, for tests of what the command prints and returns.
import { vi } from 'vitest';
import { main } from '../src/cli/main.ts';

/** Runs `r1 <args>` in this process: its exit code, and what it wrote to stdout and stderr. */
export async function runR1(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '',
    stderr = '';
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((c) => ((stderr += String(c)), true));
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((c) => ((stdout += String(c)), true));
  try {
    return { code: await main(args), stdout, stderr };
  } finally {
    err.mockRestore();
    out.mockRestore();
  }
}
