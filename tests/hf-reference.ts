// The model tests' reference: the project's own PyTorch implementation, tests/reference/hf_reference.py,
// run live where Python has torch (Debian's python3-torch; .ci/run installs it), and otherwise its
// checked-in fixtures (tests/reference/fixtures/), so a fresh clone tests the same numbers without Python.
// Without torch the live half is skipped with one line; with CI=true a missing torch is a failure.
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { optionalPresent } from './optional.ts';

const REFERENCE = fileURLToPath(new URL('./reference/hf_reference.py', import.meta.url));
/** The Python that runs the reference: R1_PYTHON, or Debian's (the one python3-torch installs into). */
const PYTHON = process.env.R1_PYTHON || '/usr/bin/python3';
const run = promisify(execFile);

/** Whether the live PyTorch comparison runs here. R1_NO_TORCH=1 turns it off (to test the fixture path). */
export const TORCH = process.env.R1_NO_TORCH !== '1' && spawnSync(PYTHON, ['-c', 'import torch, numpy'], { stdio: 'ignore' }).status === 0;

/** Says, once per test file, that the live comparison is skipped and how to enable it; with CI=true
 * (where .ci/run installs python3-torch) a missing torch fails the file instead. */
export function announceTorch(file: string): void {
  const why = TORCH
    ? null
    : process.env.R1_NO_TORCH === '1'
      ? 'R1_NO_TORCH=1 (checked against tests/reference/fixtures instead)'
      : `${PYTHON} cannot import torch (checked against tests/reference/fixtures instead)`;
  optionalPresent(`${file}: live PyTorch comparison`, why, '`apt-get install python3-torch` (or R1_PYTHON=<a python with torch>)');
}

/** hf_reference.py's one JSON line (the last line it prints). */
export async function reference(...args: string[]): Promise<Record<string, unknown>> {
  if (!TORCH) throw new Error('reference(): PyTorch is not available here; guard the call with TORCH');
  const { stdout } = await run(PYTHON, [REFERENCE, ...args], { maxBuffer: 1 << 28 });
  return JSON.parse(stdout.trim().split('\n').at(-1)!);
}

/** Several hf_reference.py commands in one Python process (PyTorch loads once: seconds each on a busy
 * machine): each one's JSON report, in order. */
export async function referenceBatch(jobs: string[][]): Promise<Record<string, unknown>[]> {
  const dir = mkdtempSync(join(tmpdir(), 'r1-reference-'));
  try {
    writeFileSync(join(dir, 'jobs.json'), JSON.stringify(jobs));
    return (await reference('batch', '--jobs', join(dir, 'jobs.json'))).reports as Record<string, unknown>[];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
