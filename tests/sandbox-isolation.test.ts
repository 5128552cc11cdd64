// sandbox.isolation as a user meets it: on a machine without the os layer (simulated with R1_BWRAP=''
// naming no bubblewrap), `strict` stops before anything runs, with exit 2 and a line that says what is
// missing and how to get it; `standard` says so once and runs behind the process layer; a misspelt
// level is an error naming the field.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { SandboxPool } from '../sandbox/index.ts';
import { layersFor } from '../sandbox/launch.ts';

const cli = join(process.cwd(), 'bin', 'r1.js');
const dir = mkdtempSync(join(tmpdir(), 'r1-isolation-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
type Res = { stdout: string; stderr: string; code?: number };
const r1 = (args: string[], env: Record<string, string> = {}): Promise<Res> =>
  promisify(execFile)(process.execPath, [cli, ...args], { timeout: 120_000, env: { ...process.env, ...env } }).then(
    (r) => ({ ...r, code: 0 }),
    (e: Res) => e,
  );

/** A GRPO recipe whose reward runs code. */
function recipe(isolation: string): string {
  writeFileSync(join(dir, 'code.jsonl'), JSON.stringify({ prompt: 'print 1', tests: [{ input: '', output: '1' }] }) + '\n');
  const file = join(dir, `code-${isolation}.yaml`);
  writeFileSync(
    file,
    `name: code-${isolation}
output_dir: runs
tokenizer: { train: { datasets: [code.jsonl], vocab_size: 300, text_field: prompt } }
model: { vocab_size: 0 }
sandbox:
  isolation: ${isolation}
stages:
  - name: grpo
    type: grpo
    datasets: [code.jsonl]
    template: none
    num_generations: 2
    max_steps: 1
    rewards:
      - name: code
        options: { language: python }
`,
  );
  return file;
}

describe('sandbox.isolation without the os layer', () => {
  it('r1 sandbox --check --isolation strict: exit 2, naming bubblewrap and how to install it', async () => {
    const res = await r1(['sandbox', '--check', '--isolation', 'strict'], { R1_BWRAP: '' });
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(
      /strict but the os layer is missing: bubblewrap is not installed \(Debian\/Ubuntu: apt-get install bubblewrap\)/,
    );
  });

  it('a strict recipe with a code reward stops before any stage runs, and writes no run folder', async () => {
    const file = recipe('strict');
    const res = await r1(['run', file], { R1_BWRAP: '' });
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/sandbox.isolation is strict but the os layer is missing/);
    expect(existsSync(join(dir, 'runs', 'code-strict'))).toBe(false);
  });

  it('a misspelt level names the field', async () => {
    const res = await r1(['recipe', recipe('strik')]);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/sandbox\.isolation/);
    expect(res.stderr).toMatch(/strict|standard|process/);
  });

  it('standard says once which layer is missing, then runs behind the process layer', async () => {
    const file = join(dir, 'programs.jsonl');
    const line = JSON.stringify({ language: 'python', code: 'print(6 * 7)', tests: [{ input: '', output: '42' }] });
    writeFileSync(file, `${line}\n${line}\n`);
    const res = await r1(['sandbox', '--input', file, '--workers', '1'], { R1_BWRAP: '' });
    expect(res.code).toBe(0);
    expect(
      res.stderr.match(
        /os: off \(bubblewrap is not installed \(Debian\/Ubuntu: apt-get install bubblewrap\)\); programs run behind the process layer only/g,
      ),
    ).toHaveLength(1);
    expect(
      res.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).passed),
    ).toEqual([1, 1]);
    const check = await r1(['sandbox', '--check'], { R1_BWRAP: '' });
    expect(check.code).toBe(0);
    expect(check.stdout).toMatch(/os: off \(bubblewrap is not installed/);
    expect(check.stdout).toMatch(/javascript: ok[\s\S]*python: ok/);
  });

  it('process never uses the os layer and needs no notice; standard uses it here when bubblewrap works', () => {
    const lines: string[] = [];
    expect(new SandboxPool({ isolation: 'process', notice: (l) => lines.push(l) }).layers.os).toBe(false);
    expect(lines).toEqual([]);
    expect(layersFor('process')).toMatchObject({ process: true, os: false });
  });
});
