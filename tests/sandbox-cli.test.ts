// The sandbox as the rest of r1kit uses it: the code reward run through a real pool, the
// `r1 sandbox` command and the benchmark's programs. (tests/sandbox.test.ts covers the layouts and
// the ways programs read input; tests/sandbox-hostile.test.ts the attacks.)
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCodeReward } from '../rewards/code.ts';
import { benchPrograms } from '../src/cli/bench/sandbox.ts';
import { parseProgramLine } from '../src/cli/commands/sandbox.ts';
import { SandboxPool } from '../sandbox/index.ts';

let pool: SandboxPool;
beforeAll(() => {
  pool = new SandboxPool({ workers: 2, limits: { timeMs: 500 } });
});
afterAll(async () => {
  await pool?.destroy();
});

describe('the code reward through a real pool', () => {
  it('scores the share of tests passed by the last fenced block', async () => {
    // The reward's own code, with this file's pool as its runner (one pyodide load less).
    let closed = 0;
    const reward = makeCodeReward({ language: null }, async () => ({ run: (job) => pool.run(job), destroy: async () => void closed++ }));
    const tests = [
      { input: '2 3\n', output: '5' },
      { input: '10 5\n', output: '15' },
      { input: '1 1\n', output: '2' },
      { input: '0 7\n', output: '7' },
    ];
    const completions = [
      'Reasoning...\n```python\na, b = map(int, input().split())\nprint(a + b)\n```',
      '```js\nconsole.log(1)\n```\nFinal:\n```javascript\nconst [a, b] = require("fs").readFileSync(0, "utf8").split(" ").map(Number);\nconsole.log(a === 1 ? 2 : a + b);\n```',
      '```python\na, b = map(int, input().split())\nprint(a * b)\n```',
      '```python\nwhile True: pass\n```',
      'no code at all',
    ];
    try {
      const out = await reward({ prompts: completions.map(() => ''), completions, rows: completions.map(() => ({ tests })) });
      // Sum in Python; the JS block is the last one (the earlier one prints 1); a*b never equals a+b here.
      expect(out).toEqual([1, 1, 0, 0, 0]);
    } finally {
      await reward.close();
    }
    expect(closed).toBe(1);
  });
});

describe('r1 sandbox and the benchmark programs', () => {
  it('parses program lines and names what is wrong', () => {
    expect(parseProgramLine('{"language":"python","code":"x","tests":[]}')).toEqual({ language: 'python', code: 'x', tests: [] });
    expect(parseProgramLine('nope')).toMatch(/invalid JSON/);
    expect(parseProgramLine('{"language":"ruby","code":"x","tests":[]}')).toMatch(/"language" must be/);
    expect(parseProgramLine('{"language":"python","code":1,"tests":[]}')).toMatch(/"code" must be a string/);
    expect(parseProgramLine('{"language":"python","code":"x"}')).toMatch(/"tests" is missing/);
  });

  it('writes one result per line in order; a hostile or broken line does not stop the rest', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'r1-sandbox-cli-'));
    try {
      const file = join(dir, 'programs.jsonl');
      const lines = [
        { language: 'javascript', code: 'while (true) {}', tests: [{ input: '', output: '' }] },
        {
          language: 'javascript',
          code: 'console.log(require("fs").readFileSync(0, "utf8").trim().toUpperCase())',
          tests: [
            { input: 'ab', output: 'AB' },
            { input: 'c', output: 'D' },
          ],
        },
      ].map((l) => JSON.stringify(l));
      writeFileSync(
        file,
        [lines[0], 'not json', '', lines[1], JSON.stringify({ language: 'javascript', code: '1', tests: { x: 1 } })].join('\n') + '\n',
      );
      const cli = join(process.cwd(), 'bin', 'r1.js');
      const res = await promisify(execFile)(process.execPath, [cli, 'sandbox', '--input', file, '--workers', '1', '--time-ms', '200'], {
        timeout: 60_000,
      }).catch((e: { stdout: string; stderr: string; code: number }) => e);
      const out = res.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(out).toHaveLength(4);
      expect(out[0].results[0].status).toBe('timeout');
      expect(out[1].error).toMatch(/line 2: invalid JSON/);
      expect(out[2]).toMatchObject({ passed: 1, total: 2 });
      expect(out[3].error).toMatch(/line 5: tests/);
      expect(res.stderr).toMatch(/4 programs run, 2 malformed lines/);
      expect((res as { code?: number }).code).toBe(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('benchmark programs pass their own tests', async () => {
    for (const language of ['javascript', 'python'] as const) {
      const results = await Promise.all(benchPrograms(language, 8).map((p) => pool.run(p)));
      expect(results.map((r) => `${r.passed}/${r.total}`)).toEqual(Array(8).fill('3/3'));
    }
  });
});
