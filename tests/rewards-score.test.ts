import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { UserError } from '../src/errors.ts';
import { register } from '../src/cli/commands/score.ts';
import { run as benchRewards } from '../src/cli/bench/rewards.ts';

const dir = mkdtempSync(join(tmpdir(), 'r1-score-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => {
  vi.restoreAllMocks();
  process.exitCode = undefined;
});

/** Runs `r1 score ...args` in-process; returns what it wrote to stdout and stderr. */
async function score(args: string[]): Promise<{ stdout: string; stderr: string; exitCode: number | undefined }> {
  const out: string[] = [],
    err: string[] = [];
  const capture =
    (sink: string[]) =>
    (s: string | Uint8Array, ...rest: unknown[]) => {
      sink.push(String(s));
      const cb = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
      cb?.();
      return true;
    };
  vi.spyOn(process.stdout, 'write').mockImplementation(capture(out) as typeof process.stdout.write);
  vi.spyOn(process.stderr, 'write').mockImplementation(capture(err) as typeof process.stderr.write);
  const program = new Command('r1').exitOverride();
  register(program);
  try {
    await program.parseAsync(['score', ...args], { from: 'user' });
  } finally {
    vi.restoreAllMocks();
  }
  const exitCode = typeof process.exitCode === 'number' ? process.exitCode : undefined;
  return { stdout: out.join(''), stderr: err.join(''), exitCode };
}

const ROWS = [
  JSON.stringify({ prompt: 'What is 2+2?', completion: '<think>add</think><answer>4</answer>', answer: '4' }),
  '{"completion": "broken',
  JSON.stringify({ completion: 'It is \\boxed{\\frac{1}{2}}', answer: '0.5', id: 7 }),
  '',
  JSON.stringify([1, 2]),
  JSON.stringify({ prompt: 'no completion' }),
  JSON.stringify({ completion: '<think>x</think><answer>5</answer>', answer: '4' }),
];

describe('r1 score', () => {
  it('scores good lines, reports malformed ones by line number and exits 1', async () => {
    const input = join(dir, 'rows.jsonl'),
      output = join(dir, 'out.jsonl');
    writeFileSync(input, ROWS.join('\n') + '\n');
    const { stderr, exitCode } = await score(['--input', input, '--rewards', 'accuracy,format=0.5', '--output', output]);
    const rows = readFileSync(output, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(rows).toEqual([
      {
        prompt: 'What is 2+2?',
        completion: '<think>add</think><answer>4</answer>',
        answer: '4',
        rewards: { accuracy: 1, format: 1 },
        reward: 1.5,
      },
      { completion: 'It is \\boxed{\\frac{1}{2}}', answer: '0.5', id: 7, rewards: { accuracy: 1, format: 0 }, reward: 1 },
      { completion: '<think>x</think><answer>5</answer>', answer: '4', rewards: { accuracy: 0, format: 1 }, reward: 0.5 },
    ]);
    expect(stderr).toMatch(/rows\.jsonl line 2: invalid JSON/);
    expect(stderr).toMatch(/rows\.jsonl line 5: not a JSON object/);
    expect(stderr).toMatch(/rows\.jsonl line 6: field "completion" must be a string, got nothing/);
    expect(stderr).not.toMatch(/line (1|3|4|7):/);
    expect(stderr).toMatch(/3 rows scored, 3 malformed lines skipped/);
    expect(exitCode).toBe(1);
  });

  it('writes to standard output, in order across batches, and exits 0 when every line is good', async () => {
    const input = join(dir, 'good.jsonl');
    const lines = Array.from({ length: 7 }, (_, i) => JSON.stringify({ completion: `<answer>${i}</answer>`, answer: String(i % 2) }));
    writeFileSync(input, lines.join('\n'));
    const { stdout, exitCode } = await score(['--input', input, '--rewards', 'accuracy', '--batch-size', '3']);
    const rows = stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(rows.map((r) => r.rewards.accuracy)).toEqual([1, 1, 0, 0, 0, 0, 0]);
    expect(exitCode).toBeUndefined();
  });

  it('loads user modules relative to the working folder and can score a broken reward as 0', async () => {
    const input = join(dir, 'user.jsonl');
    writeFileSync(input, [JSON.stringify({ completion: 'ok' }), JSON.stringify({ completion: 'bad' })].join('\n'));
    const fixture = join(import.meta.dirname, 'fixtures', 'rewards', 'my-rewards.ts');
    const { stdout, stderr } = await score(['--input', input, '--rewards', `${fixture}#throwsOnBad`, '--on-error', 'zero']);
    expect(
      stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).reward),
    ).toEqual([0, 0]);
    expect(stderr).toMatch(/warning: reward 'throwsOnBad', row 1: threw cannot score "bad"; scored 0/);
    await expect(score(['--input', input, '--rewards', `${fixture}#throwsOnBad`])).rejects.toThrow(/row 1: threw/);
  });

  it('rejects a missing input, an unknown reward and bad flags as user errors', async () => {
    const input = join(dir, 'rows.jsonl');
    await expect(score(['--input', join(dir, 'nope.jsonl')])).rejects.toThrow(UserError);
    await expect(score(['--input', input, '--rewards', 'nope'])).rejects.toThrow(/unknown reward 'nope'/);
    await expect(score(['--input', input, '--rewards', 'accuracy=x'])).rejects.toThrow(/weight of 'accuracy' is not a number/);
    await expect(score(['--input', input, '--on-error', 'maybe'])).rejects.toThrow(/--on-error must be fail or zero/);
  });
});

describe('r1 bench rewards', () => {
  it('scores generated rows with accuracy + format and reports the rate', async () => {
    const [line] = await benchRewards({ backend: 'auto', quick: true });
    expect(line).toMatchObject({ bench: 'rewards', rows: 2000 });
    expect(line.rows_per_s).toBeGreaterThan(0);
    // A third of the generated answers are wrong; one completion in ten breaks the template.
    expect(line.misjudged).toBe(0);
    expect(line.accuracy_mean).toBeGreaterThan(0.6);
    expect(line.accuracy_mean).toBeLessThan(0.72);
    expect(line.format_mean).toBeCloseTo(0.8, 5);
  });
});
