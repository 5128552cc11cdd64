// Tool calls in the sandbox: a trajectory's session keeps its own state across its calls and nothing
// of another's; a call that hangs, floods its output or crashes becomes an error message.
import { afterAll, describe, expect, it } from 'vitest';
import { SandboxPool } from '../sandbox/index.ts';
import { ToolRunner, ToolSession, cellOutput, sessionProgram } from '../src/rollout/tools.ts';

describe('session programs', () => {
  it('returns only what the new cell printed', () => {
    const m = '__m__';
    expect(cellOutput(`old\n${m}\nnew\n`, m)).toBe('new\n');
    const py = sessionProgram('python', ['x = 1'], 'print(x)', m);
    expect(py.indexOf('x = 1')).toBeLessThan(py.indexOf(m));
    expect(py.indexOf(m)).toBeLessThan(py.indexOf('print(x)'));
  });
});

describe('SandboxPool.execute', () => {
  const pool = new SandboxPool({ workers: 1, isolation: 'process', limits: { timeMs: 1000, outputBytes: 4096 } });
  afterAll(() => pool.destroy());

  it('returns the standard output of one run, several runs sharing a process', async () => {
    const [a, b] = await Promise.all([pool.execute('javascript', 'console.log(6 * 7)'), pool.execute('javascript', 'console.log(6 * 7)')]);
    expect(a).toEqual({ status: 'pass', out: '42\n' });
    expect(b).toEqual({ status: 'pass', out: '42\n' });
  });
});

describe('ToolRunner', () => {
  const runner = new ToolRunner({ timeoutS: 1, outputChars: 2000 }, { workers: 1, isolation: 'process' });
  afterAll(() => runner.close());

  it('keeps a JavaScript trajectory state across its own calls and not into another trajectory', async () => {
    const mine = new ToolSession(),
      other = new ToolSession();
    expect(await runner.call(mine, 'javascript', 'let x = 20; console.log("set")')).toMatchObject({ output: 'set\n', error: null });
    expect(await runner.call(mine, 'javascript', 'console.log(x + 22)')).toMatchObject({ output: '42\n', error: null });
    const leaked = await runner.call(other, 'javascript', 'console.log(typeof x)');
    expect(leaked).toMatchObject({ output: 'undefined\n', error: null });
  });

  it('keeps a Python trajectory state across its calls, leaves out failed cells, and counts errors', async () => {
    runner.takeMetrics();
    const s = new ToolSession();
    expect(await runner.call(s, 'python', 'x = 6\nprint("ok")')).toMatchObject({ output: 'ok\n', error: null });
    const bad = await runner.call(s, 'python', 'x = 100\nraise ValueError("boom")');
    expect(bad.error).toMatch(/ValueError: boom/);
    expect(await runner.call(s, 'python', 'print(x * 7)')).toMatchObject({ output: '42\n', error: null });
    expect(await runner.call(new ToolSession(), 'python', 'print(x)')).toMatchObject({ error: expect.stringMatching(/NameError/) });
    expect(runner.takeMetrics()).toEqual({ calls: 4, errors: 2, timeouts: 0 });
  }, 60_000);

  it('turns a hang, a flood and a crash into error messages', async () => {
    runner.takeMetrics();
    const [hang, flood, crash, fine] = await Promise.all([
      runner.call(new ToolSession(), 'javascript', 'while (true) {}'),
      runner.call(new ToolSession(), 'javascript', 'for (;;) console.log("y".repeat(100))'),
      runner.call(new ToolSession(), 'javascript', 'null.f()'),
      runner.call(new ToolSession(), 'javascript', 'console.log("fine")'),
    ]);
    expect(hang.error).toMatch(/timed out/);
    expect(flood.error).toMatch(/output limit/);
    expect(crash.error).toMatch(/TypeError/);
    expect(fine).toMatchObject({ output: 'fine\n', error: null });
    expect(await runner.call(new ToolSession(), 'ruby', 'puts 1')).toMatchObject({ error: expect.stringMatching(/unknown tool 'ruby'/) });
    expect(runner.takeMetrics()).toMatchObject({ calls: 5, errors: 4, timeouts: 1 });
  }, 60_000);
});
