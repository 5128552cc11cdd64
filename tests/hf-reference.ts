// ../shared/anchors/hf_reference.py (PyTorch on the CPU; .ci/run installs python3-torch), as the model
// tests call it: make random Hugging Face checkpoints, compute their logits, compare ours.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const REFERENCE = fileURLToPath(new URL('../../shared/anchors/hf_reference.py', import.meta.url));
const run = promisify(execFile);

/** hf_reference.py's one JSON line (the last line it prints). */
export async function reference(...args: string[]): Promise<Record<string, unknown>> {
  const { stdout } = await run('/usr/bin/python3', [REFERENCE, ...args], { maxBuffer: 1 << 28 });
  return JSON.parse(stdout.trim().split('\n').at(-1)!);
}
