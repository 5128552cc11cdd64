// What a sandbox process says is untrusted: the pool judges every run from the raw output, and a
// process that lies about the protocol loses its program, never the pool. These tests drive a real
// process through the test-only breach entry (arbitrary JavaScript inside it, with fd 3, the message
// pipe, in reach) and the pure parts (parseMessage, judge) directly.
import { afterEach, describe, expect, it } from 'vitest';
import { layersFor } from '../sandbox/launch.ts';
import { SandboxProcess } from '../sandbox/process.ts';
import { parseMessage, type Job } from '../sandbox/protocol.ts';
import { testInput } from '../sandbox/tests.ts';
import { judge, type Test } from '../sandbox/tests.ts';

const limits = { timeMs: 1000, memoryMb: 64, outputBytes: 4096, wallMs: 2000 };
const job = (code: string, id = 1): Job => ({ id, code, tests: [], limits });
const SECRET: Test = { input: '', output: String(Math.random()) };
let procs: SandboxProcess[] = [];
afterEach(() => {
  for (const p of procs) p.kill('test over');
  procs = [];
});

async function breachProcess(): Promise<SandboxProcess> {
  const p = new SandboxProcess('javascript', layersFor('process'), limits, () => {}, 'breach');
  procs.push(p);
  await p.ready;
  return p;
}
const message = (m: unknown) => `require('fs').writeSync(3, ${JSON.stringify(JSON.stringify(m) + '\n')});`;

describe('parseMessage', () => {
  it('accepts the three message kinds and cuts details', () => {
    expect(parseMessage('{"t":"ready"}', 10)).toEqual({ t: 'ready' });
    expect(parseMessage('{"t":"retire","why":"x"}', 10)).toEqual({ t: 'retire', why: 'x' });
    const run = parseMessage(
      JSON.stringify({ t: 'run', id: 3, i: 0, run: { status: 'error', out: '', result: null, detail: 'x'.repeat(1000) } }),
      10,
    );
    expect(run).toMatchObject({ t: 'run', run: { status: 'error' } });
    expect((run as { run: { detail: string } }).run.detail).toHaveLength(300);
  });

  it.each([
    ['not JSON', '{"t":'],
    ['an array', '[1]'],
    ['an unknown type', '{"t":"pass"}'],
    ['a huge test index', '{"t":"run","id":1,"i":1e300,"run":{"status":"ok","out":"","result":null,"detail":""}}'],
    ['a negative index', '{"t":"run","id":1,"i":-1,"run":{"status":"ok","out":"","result":null,"detail":""}}'],
    ['a pass status', '{"t":"run","id":1,"i":0,"run":{"status":"pass","out":"","result":null,"detail":""}}'],
    [
      'output over the cap',
      JSON.stringify({ t: 'run', id: 1, i: 0, run: { status: 'ok', out: 'x'.repeat(11), result: null, detail: '' } }),
    ],
    ['a result that is not text', '{"t":"run","id":1,"i":0,"run":{"status":"ok","out":"","result":5,"detail":""}}'],
  ])('refuses %s', (_what, line) => {
    expect(typeof parseMessage(line, 10)).toBe('string');
  });
});

describe('judge', () => {
  it('passes only what matches the expected answer, which the process never saw', () => {
    expect(testInput({ input: 'a', output: 'b' })).toEqual({ input: 'a' });
    expect(testInput({ fn: 'f', args: [1], expected: 2 })).toEqual({ fn: 'f', args: [1] });
    expect(judge({ input: '', output: '42' }, { status: 'ok', out: '42\n', result: null, detail: '' }, 10).status).toBe('pass');
    expect(judge({ fn: 'f', args: [], expected: [1, 2] }, { status: 'ok', out: '', result: '[1,2]', detail: '' }, 10).status).toBe('pass');
    expect(judge({ fn: 'f', args: [], expected: 1 }, { status: 'ok', out: '', result: 'not json', detail: '' }, 10).status).toBe('error');
    expect(judge({ input: '', output: '' }, { status: 'output', out: '', result: null, detail: '' }, 10)).toEqual({
      status: 'fail',
      detail: 'output limit of 10 bytes exceeded',
    });
    expect(judge({ input: '', output: '' }, { status: 'timeout', out: '', result: null, detail: 'slow' }, 10)).toEqual({
      status: 'timeout',
      detail: 'slow',
    });
  });
});

describe('a process that lies', () => {
  it('cannot pass a test by reporting runs of its own: the pool judges the output against the secret answer', async () => {
    const p = await breachProcess();
    // Reports test 0 as run with a guessed output, before the real run message.
    const code = message({ t: 'run', id: 1, i: 0, run: { status: 'ok', out: 'pass', result: null, detail: '' } }) + " return 'pass';";
    const [r] = (await p.run(job(code), [SECRET]))!;
    expect(r.status).not.toBe('pass');
  });

  it.each([
    ['a run for a test that does not exist', message({ t: 'run', id: 1, i: 7, run: { status: 'ok', out: '', result: null, detail: '' } })],
    ['a run for an absurd test index', message({ t: 'run', id: 1, i: 1e20, run: { status: 'ok', out: '', result: null, detail: '' } })],
    ['a run of another job', message({ t: 'run', id: 99, i: 0, run: { status: 'ok', out: '', result: null, detail: '' } })],
    ['a line that is not JSON', "require('fs').writeSync(3, 'garbage\\n');"],
    ['a line over the size limit', "require('fs').writeSync(3, 'x'.repeat(200000));"],
  ])('sending %s costs its program an error and its process, nothing else', async (_what, code) => {
    const p = await breachProcess();
    const [r] = (await p.run(job(code + " return 'x';"), [SECRET]))!;
    expect(r.status).toBe('error');
    expect(r.detail).toMatch(/sandbox process/);
    expect(p.retired).not.toBeNull();
  });

  it('writing fake result lines to its standard output reaches nobody', async () => {
    const p = await breachProcess();
    const code = `process.stdout.write(JSON.stringify({ passed: 1, total: 1, results: [{ status: 'pass' }] }) + '\\n'); return 'no';`;
    const [r] = (await p.run(job(code), [SECRET]))!;
    expect(r.status).toBe('fail');
  });

  it('a process that dies mid-program gives its running test an error and the rest "not run"', async () => {
    const p = await breachProcess();
    const results = (await p.run(job('process.exit(3);'), [SECRET, SECRET]))!;
    expect(results.map((r) => r.status)).toEqual(['error', 'error']);
    expect(results[1].detail).toMatch(/not run/);
  });
});

describe('destroying the pool', () => {
  it('resolves every program: the running one, the one queued behind it in its process, and the waiting ones', async () => {
    const { SandboxPool } = await import('../sandbox/index.ts');
    const pool = new SandboxPool({ workers: 1, isolation: 'process', limits: { timeMs: 5000 } });
    const runs = [0, 1, 2].map(() => pool.run({ language: 'javascript', code: 'while (true) {}', tests: [{ input: '', output: '' }] }));
    await new Promise((ok) => setTimeout(ok, 500));
    await pool.destroy();
    const results = await Promise.all(runs);
    expect(results.map((r) => r.results[0].status)).toEqual(['error', 'error', 'error']);
  });
});
