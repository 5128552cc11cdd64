// Every test of a Python program starts from the same pristine state as a new program (issue 30), and
// nothing a program leaves reaches the next (issue 23): all run in one sandbox process, so any state
// that survived would show. Each attack first shows that its channel works within one execution
// (where no wall stands between writing and reading), then that it is gone at the next test and the
// next program. Also: everyday programs (sleep, datetime, seeded random, their own files, recursion).
import { afterAll, describe, expect, it } from 'vitest';
import { SandboxPool } from '../sandbox/index.ts';

const pool = new SandboxPool({ workers: 1, isolation: 'process', limits: { timeMs: 5000 }, notice: () => {} });
afterAll(() => pool.destroy());
const py = (code: string, tests: unknown) => pool.run({ language: 'python', code, tests });
const statuses = (r: { results: { status: string }[] }) => r.results.map((t) => t.status);
/** The one short line a program prints (read from the verdict against an impossible answer). */
async function outputOf(code: string): Promise<string> {
  const [r] = (await py(code, [{ input: '', output: '\u0001' }])).results;
  const got = r.detail?.match(/got "(.*)"$/)?.[1];
  if (r.status !== 'fail' || got === undefined) throw new Error(`the program did not print a line: ${JSON.stringify(r)}`);
  return got;
}
/** Python that prints a digest of what the program built in `seen` (short enough to read back). */
const DIGEST = 'import hashlib\nprint(hashlib.sha256(repr(seen).encode()).hexdigest()[:24])';

describe('each test is a fresh run', () => {
  it("a program that replays the previous test's input fails the test whose answer that input is", async () => {
    const replay = [
      'import sys',
      'data = sys.stdin.read().strip()',
      "previous = getattr(sys.stdout, 'saved', '')",
      'sys.stdout.saved = data',
      "print(previous if previous else 'first')",
      // Within one execution the stash holds: the channel itself works.
      "print(getattr(sys.stdout, 'saved', None))",
    ].join('\n');
    const r = await py(replay, [
      { input: 'alpha', output: 'first\nalpha' },
      { input: 'beta', output: 'alpha\nbeta' },
    ]);
    expect(statuses(r)).toEqual(['pass', 'fail']);
  });

  it('a program that counts the tests before it sees none, wherever it keeps the count', async () => {
    const counter = [
      'import builtins, math, os, sys, random',
      'counts = []',
      "counts.append(getattr(builtins, 'seen', 0)); builtins.seen = counts[-1] + 1",
      "counts.append(getattr(math, 'seen', 0)); math.seen = counts[-1] + 1",
      "counts.append(sys.modules.setdefault('seen_module', type(sys)('seen_module')).__dict__.setdefault('n', 0)); sys.modules['seen_module'].n += 1",
      "counts.append(len(os.listdir('/tmp'))); open(f'/tmp/seen{counts[-1]}', 'w').close()",
      "counts.append(len(os.listdir('/dev/shm'))); open(f'/dev/shm/seen{counts[-1]}', 'w').close()",
      'counts.append(sys.getrecursionlimit() - 1000); sys.setrecursionlimit(sys.getrecursionlimit() + 1)',
      'counts.append(os.umask(0) & 0o7); os.umask((counts[-1] + 1) & 0o7)',
      "counts.append(0 if os.getcwd() != '/tmp' else 1); os.chdir('/tmp')",
      "counts.append(os.stat(os.open('/tmp/ino', os.O_CREAT | os.O_WRONLY)).st_ino)",
      'counts.append(random.random())',
      'print(counts)',
    ].join('\n');
    const first = await py(counter, [{ input: '', output: 'x' }]);
    const seen = (first.results[0].detail ?? '').match(/got "(.*)"/)?.[1];
    expect(seen).toBeTruthy();
    // The same program, three tests: each prints what the first run printed.
    const expectedLine = JSON.parse(`"${seen!.replace(/\\"/g, '"')}"`) as string;
    expect(
      statuses(
        await py(
          counter,
          [0, 1, 2].map(() => ({ input: '', output: expectedLine })),
        ),
      ),
    ).toEqual(['pass', 'pass', 'pass']);
    const counting = 'import builtins\nbuiltins.n = getattr(builtins, "n", 0) + 1\nprint(builtins.n)';
    expect(
      statuses(
        await py(
          counting,
          ['1', '2', '3'].map((output) => ({ input: '', output })),
        ),
      ),
    ).toEqual(['pass', 'fail', 'fail']);
  });
});

// What a program sees of its world: file system listings and modes, umask, working directory,
// environment, the standard devices, process settings.
const SURVEY = [
  'import os, sys',
  'seen = []',
  "for p in ['/', '/tmp', '/dev', '/dev/shm', os.path.expanduser('~')]:",
  '    seen.append((p, oct(os.stat(p).st_mode), sorted(os.listdir(p))))',
  'mask = os.umask(0o22); os.umask(mask)',
  'seen.append((oct(mask), os.getcwd(), sorted(os.environ.items())))',
  "seen.append(([os.path.exists(d) for d in ('/dev/null', '/dev/stdout', '/dev/stdin', '/dev/tty')], sys.getrecursionlimit(), sys.get_int_max_str_digits()))",
  "seen.append((open('/dev/null').read() == '', [os.fstat(fd).st_mode for fd in (0, 1, 2)]))",
  DIGEST,
].join('\n');

describe('nothing a program leaves reaches the next test or program', () => {
  it('files, devices, modes, umask, directory and settings are back to the start-up state', async () => {
    const baseline = await outputOf(SURVEY);
    const vandal = [
      'import os, sys',
      "home = os.path.expanduser('~')",
      "for d in ('/tmp', '/dev/shm', '/dev', home):",
      "    open(os.path.join(d, 'left'), 'w').write('answer')",
      "os.mkdir('/tmp/dir'); os.symlink('/tmp/left', '/dev/shm/link')",
      "os.unlink('/dev/null'); open('/dev/null', 'w').write('not null')",
      "os.unlink('/dev/stdout')",
      "os.umask(0o777); os.chdir('/dev/shm')",
      "os.chmod('/tmp', 0); os.chmod('/dev/shm', 0); os.chmod(home, 0)",
      'sys.setrecursionlimit(50); sys.set_int_max_str_digits(700)',
      // The vandalism took effect (the attack works within the execution).
      "print(oct(os.stat(home).st_mode & 0o777), os.path.isfile('/dev/null'), os.path.exists('/dev/stdout'))",
    ].join('\n');
    const v = await py(vandal, [
      { input: '', output: '0o0 True False' },
      { input: '', output: '0o0 True False' },
    ]);
    // The second test ran in a restored world too: the first test's vandalism did not make it fail
    // differently (both pass: each did its own vandalism from the pristine state).
    expect(statuses(v)).toEqual(['pass', 'pass']);
    expect(await outputOf(SURVEY)).toBe(baseline);
    // And within one program: a test after the vandalism surveys the same world.
    expect(
      statuses(
        await py(
          `import sys\nif sys.stdin.read() == 'vandal':\n${vandal
            .split('\n')
            .map((l) => '    ' + l)
            .join('\n')}\n    sys.exit(0)\n${SURVEY}`,
          [
            { input: 'vandal', output: '0o0 True False' },
            { input: '', output: baseline },
          ],
        ),
      ),
    ).toEqual(['pass', 'pass']);
  });

  it('a finaliser that runs after the test, and a chmod of home, cost the next program nothing', async () => {
    const spoiler = [
      'import os, sys',
      'class Spoiler:',
      '    def __del__(self):',
      "        os.chmod(os.path.expanduser('~'), 0)",
      "        open('/dev/shm/late', 'w').write('late')",
      '        f = sys._getframe()',
      '        while f is not None:',
      "            f.f_globals['finish'] = None",
      '            f = f.f_back',
      'cycle = [Spoiler()]',
      'cycle.append(cycle)',
      'sys.stdout.spoiler = Spoiler()',
      'del cycle',
      'def f():',
      '    return Spoiler.__name__',
    ].join('\n');
    expect(
      statuses(
        await py(spoiler, [
          { fn: 'f', args: [], expected: 'Spoiler' },
          { fn: 'f', args: [], expected: 'Spoiler' },
        ]),
      ),
    ).toEqual(['pass', 'pass']);
    const next = await py("import os\nprint('late' in os.listdir('/dev/shm'), oct(os.stat(os.path.expanduser('~')).st_mode & 0o700))", [
      { input: '', output: 'False 0o700' },
    ]);
    expect(next.results[0]).toEqual({ status: 'pass' });
  });
});

describe('everyday programs work', () => {
  it.each([
    ['time.sleep within the limit', 'import time\nt = time.monotonic()\ntime.sleep(0.05)\nprint(0.04 <= time.monotonic() - t < 2)', 'True'],
    [
      'datetime',
      "import datetime\nprint((datetime.date(2024, 3, 1) - datetime.date(2024, 2, 1)).days, datetime.datetime(2024, 1, 31, 12).strftime('%A %d %B %Y'))",
      '29 Wednesday 31 January 2024',
    ],
    [
      'random with a seed',
      'import random\nrandom.seed(42)\nprint(random.randint(1, 100), random.random(), random.sample(range(10), 3))',
      '82 0.11133106816568039 [4, 3, 8]',
    ],
    [
      'reading the files it wrote',
      "import os\nopen('/tmp/a.txt', 'w').write('one\\ntwo\\n')\nopen('b.txt', 'w').write('three')\nprint(open('/tmp/a.txt').read().split(), open(os.path.join(os.getcwd(), 'b.txt')).read())",
      "['one', 'two'] three",
    ],
    [
      'recursion to a modest depth',
      'import sys\nsys.setrecursionlimit(10000)\ndef depth(n):\n    return 0 if n == 0 else 1 + depth(n - 1)\nprint(depth(5000), depth(900))',
      '5000 900',
    ],
  ])('%s', async (_name, code, output) => {
    expect(
      (
        await py(code, [
          { input: '', output },
          { input: '', output },
        ])
      ).results,
    ).toEqual([{ status: 'pass' }, { status: 'pass' }]);
  });

  it('a long sleep ends at the time limit, not at the wall clock', async () => {
    const short = new SandboxPool({ workers: 1, isolation: 'process', limits: { timeMs: 300 }, notice: () => {} });
    try {
      const r = await short.run({
        language: 'python',
        code: 'import time\ntime.sleep(30)\nprint("woke")',
        tests: [{ input: '', output: 'woke' }],
      });
      expect(r.results[0].status).toBe('timeout');
      expect(r.results[0].detail).toMatch(/time limit of 300 ms/);
    } finally {
      await short.destroy();
    }
  });
});
