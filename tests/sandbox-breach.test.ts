// "Assume breach": arbitrary JavaScript runs inside a sandbox process, set up exactly as the pool sets
// it up (sandbox/child/breach.ts), as a program that escaped its interpreter would. Each wall is tried
// with the os layer (bubblewrap namespaces) on and off, and the table below says which layer holds it:
//
//   wall                              process layer (permission model)   os layer (namespaces)   realm (in-language)
//   write / append a host file        holds                              holds                   -
//   read a host file                  holds                              holds                   -
//   start a process                   holds                              holds                   -
//   start a worker thread             holds                              holds                   -
//   load an addon (Python process)    holds (addons off)                 holds                   holds (dlopen removed)
//   load an addon (JS process)        no: isolated-vm needs addons on    holds (file not there)  holds (dlopen removed)
//   TCP / UDP to the host's loopback  no                                 holds                   -
//   signal the host process           no                                 holds (pid namespace)   holds (kill removed)
//   start processes without bound     holds (no processes at all)        holds (NPROC, counted   -
//     (the process layer also off)                                       in its user namespace)
//
// `raw.kill` and `raw.dlopen` are the functions the realm hardening removes, captured before it: with
// them the attacker has also undone the in-language layer, so those rows show what the os layer holds
// on its own (and that without it, only the realm layer stands there).
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { copyFileSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { optionalPresent } from './optional.ts';
import { NPROC, command, layersFor, runtimeDir, type Layers } from '../sandbox/launch.ts';
import type { Language } from '../sandbox/languages.ts';

const dir = mkdtempSync(join(tmpdir(), 'r1-breach-host-'));
const canary = join(dir, 'canary.txt');
const CANARY = 'the host file, unchanged\n';
const addon = join(dir, 'copied.node');
let tcpPort = 0,
  udpPort = 0,
  tcpConnections = 0,
  udpMessages = 0,
  signals = 0;
const onSignal = () => void signals++;
const tcp = createServer((s) => {
  tcpConnections++;
  s.destroy();
});
const udp = createSocket('udp4', () => void udpMessages++);

beforeAll(async () => {
  writeFileSync(canary, CANARY);
  // Any native addon of the install but isolated-vm (a second copy of that one would clash with the
  // one the JavaScript process has loaded), copied outside every folder the process may read.
  const found = findAddon(join(process.cwd(), 'node_modules'), 3);
  if (!found) throw new Error('no native addon other than isolated-vm under node_modules to try loading');
  copyFileSync(found, addon);
  await new Promise<void>((ok) => tcp.listen(0, '127.0.0.1', ok));
  tcpPort = (tcp.address() as { port: number }).port;
  await new Promise<void>((ok) => udp.bind(0, '127.0.0.1', ok));
  udpPort = udp.address().port;
  process.on('SIGWINCH', onSignal);
});
afterAll(() => {
  tcp.close();
  udp.close();
  process.off('SIGWINCH', onSignal);
  rmSync(dir, { recursive: true, force: true });
});

function findAddon(root: string, depth: number): string | null {
  for (const e of readdirSync(root, { withFileTypes: true })) {
    const p = join(root, e.name);
    if (e.isFile() && e.name.endsWith('.node')) return p;
    if (e.isDirectory() && depth > 0 && e.name !== 'isolated-vm' && e.name !== '.bin') {
      const hit = findAddon(p, depth - 1);
      if (hit) return hit;
    }
  }
  return null;
}

/** A breach process: runs each code string and gives back what it returned, or `denied: ...`. */
class Breach {
  private readonly child;
  private buffered = '';
  private waiting: ((line: string) => void)[] = [];
  private id = 1;
  readonly ready: Promise<void>;

  /** `withoutPermission`: the process layer taken off too (Node's permission flags dropped), for the
   * walls the os layer must hold alone. Only ever with the os layer on. */
  constructor(language: Language, layers: Layers, withoutPermission = false) {
    const { file, args: all, uid, gid } = command(language, layers, 'breach');
    if (withoutPermission && !layers.os) throw new Error('internal: a breach process without the permission model needs the os layer');
    const args = withoutPermission ? all.filter((a) => !/^--(experimental-)?permission$|^--allow-/.test(a)) : all;
    this.child = spawn(file, args, { stdio: ['pipe', 'ignore', 'ignore', 'pipe'], env: {}, detached: true, uid, gid });
    (this.child.stdio[3] as Readable).setEncoding('utf8').on('data', (s: string) => {
      this.buffered += s;
      for (let nl = this.buffered.indexOf('\n'); nl !== -1; nl = this.buffered.indexOf('\n')) {
        const line = this.buffered.slice(0, nl);
        this.buffered = this.buffered.slice(nl + 1);
        this.waiting.shift()?.(line);
      }
    });
    this.ready = this.next().then((l) => expect(JSON.parse(l)).toEqual({ t: 'ready' }));
  }

  private next(): Promise<string> {
    return new Promise((ok) => this.waiting.push(ok));
  }

  async run(code: string): Promise<string> {
    const ran = this.next();
    (this.child.stdin as Writable).write(
      JSON.stringify({
        id: this.id++,
        code,
        tests: [{ input: '' }],
        limits: { timeMs: 5000, memoryMb: 64, outputBytes: 65536, wallMs: 10000 },
      }) + '\n',
    );
    return (JSON.parse(await ran) as { run: { out: string } }).run.out;
  }

  stop(): void {
    this.child.kill('SIGKILL');
  }
}

const tryIt = (body: string) => `try { ${body} } catch (e) { return 'denied: ' + (e && e.code || e && e.message || e); }`;
const ATTACKS = {
  appendHostFile: () => tryIt(`require('fs').appendFileSync(${JSON.stringify(canary)}, 'pwned'); return 'escaped';`),
  writeNewHostFile: () => tryIt(`require('fs').writeFileSync(${JSON.stringify(join(dir, 'new.txt'))}, 'x'); return 'escaped';`),
  readHostFile: () => tryIt(`return 'escaped: ' + require('fs').readFileSync(${JSON.stringify(canary)}, 'utf8');`),
  readSystemFile: () => tryIt(`return 'escaped: ' + require('fs').readFileSync('/etc/passwd', 'utf8').length;`),
  spawnProcess: () => tryIt(`return 'escaped: ' + require('child_process').execSync('id').toString();`),
  workerThread: () => tryIt(`const { Worker } = require('worker_threads'); new Worker('1', { eval: true }); return 'escaped';`),
  requireAddon: () => tryIt(`require(${JSON.stringify(addon)}); return 'escaped';`),
  rawDlopen: () => tryIt(`raw.dlopen({ exports: {} }, ${JSON.stringify(addon)}); return 'escaped';`),
  realmKill: () => tryIt(`process.kill(${process.pid}, 'SIGWINCH'); return 'escaped';`),
  rawKill: () => tryIt(`raw.kill(${process.pid}, 'SIGWINCH'); return 'escaped';`),
  tcp: () =>
    `return await new Promise((ok) => { const s = require('net').connect(${tcpPort}, '127.0.0.1'); s.on('connect', () => { s.destroy(); ok('escaped'); }); s.on('error', (e) => ok('denied: ' + e.code)); });`,
  udp: () =>
    `return await new Promise((ok) => { const s = require('dgram').createSocket('udp4'); s.send('x', ${udpPort}, '127.0.0.1', (e) => { s.close(); ok(e ? 'denied: ' + e.code : 'sent'); }); });`,
  readOwnRuntime: (language: Language) =>
    `return require('fs').readFileSync(${JSON.stringify(join(runtimeDir(language), 'package.json'))}, 'utf8').includes('"name"') ? 'readable' : 'no';`,
};

const settle = () => new Promise((ok) => setTimeout(ok, 150));
const hostUnchanged = () => {
  expect(readFileSync(canary, 'utf8')).toBe(CANARY);
  expect(readdirSync(dir).sort()).toEqual(['canary.txt', 'copied.node']);
};

const osAvailable = layersFor('standard');
const LAYERS: [string, Layers][] = [
  ['process layer only', layersFor('process')],
  // The os layer's walls need bubblewrap; without it they are skipped (saying so), and fail under CI.
  ...(optionalPresent(
    'sandbox-breach tests of the os layer',
    osAvailable.os ? null : (osAvailable.why ?? 'the os layer is not available'),
    '`apt-get install bubblewrap`',
  )
    ? [['process and os layers', { ...osAvailable, os: true, rlimits: osAvailable.rlimits }] as [string, Layers]]
    : []),
];

describe.each(['python', 'javascript'] as const)('assume breach: arbitrary JavaScript inside the %s sandbox process', (language) => {
  describe.each(LAYERS)('with the %s', (label, layers) => {
    let b: Breach;
    beforeAll(async () => {
      b = new Breach(language, layers);
      await b.ready;
    }, 60_000);
    afterAll(() => b?.stop());

    it('can still read its own runtime (the harness works)', async () => {
      expect(await b.run(ATTACKS.readOwnRuntime(language))).toBe('readable');
    });

    it('cannot write, append or read a host file, or read a system file', async () => {
      for (const attack of [ATTACKS.appendHostFile, ATTACKS.writeNewHostFile, ATTACKS.readHostFile, ATTACKS.readSystemFile])
        expect(await b.run(attack())).toMatch(/^denied/);
      hostUnchanged();
    });

    it('cannot start a process or a worker thread', async () => {
      expect(await b.run(ATTACKS.spawnProcess())).toMatch(/^denied/);
      expect(await b.run(ATTACKS.workerThread())).toMatch(/^denied/);
    });

    it('cannot load an addon through require (the realm has no dlopen)', async () => {
      expect(await b.run(ATTACKS.requireAddon())).toMatch(/^denied/);
    });

    it(`loading an addon with the raw dlopen: ${language === 'python' || layers.os ? 'denied' : 'needs the os layer (isolated-vm needs addons allowed)'}`, async () => {
      const out = await b.run(ATTACKS.rawDlopen());
      if (language === 'python' || layers.os) expect(out).toMatch(/^denied/);
      else expect(out).toBe('escaped');
    });

    it(`signalling the host: the realm refuses; with the raw kill ${layers.os ? 'the pid namespace hides it' : 'it arrives (the os layer is what holds this)'}`, async () => {
      const before = signals;
      expect(await b.run(ATTACKS.realmKill())).toMatch(/^denied/);
      await settle();
      expect(signals).toBe(before);
      const out = await b.run(ATTACKS.rawKill());
      await settle();
      if (layers.os) {
        expect(out).toMatch(/^denied/);
        expect(signals).toBe(before);
      } else {
        expect(out).toBe('escaped');
        expect(signals).toBe(before + 1);
      }
    });

    it(`TCP and UDP to the host's 127.0.0.1: ${layers.os ? 'nothing arrives' : 'they arrive (the os layer is what holds this)'}`, async () => {
      const [c0, u0] = [tcpConnections, udpMessages];
      const out = await b.run(ATTACKS.tcp());
      await b.run(ATTACKS.udp());
      await settle();
      if (layers.os) {
        expect(out).toMatch(/^denied/);
        expect([tcpConnections, udpMessages]).toEqual([c0, u0]);
      } else {
        expect(out).toBe('escaped');
        expect(tcpConnections).toBe(c0 + 1);
        expect(udpMessages).toBe(u0 + 1);
      }
    });
  });
});

describe('assume breach, the process layer off too: the os layer alone bounds the process count', () => {
  // Spawns up to 150 `sleep` processes and reports how many started. The wall: prlimit's NPROC, set
  // inside the sandbox's user namespace, where the kernel counts only that namespace's tasks.
  const SPAWN_MANY = `const { spawn } = require('child_process');
let started = 0;
for (let i = 0; i < 150; i++) {
  try {
    const ok = await new Promise((done) => { const c = spawn('/usr/bin/sleep', ['30'], { stdio: 'ignore' }); c.once('spawn', () => done(true)); c.once('error', () => done(false)); });
    if (!ok) break;
    started++;
  } catch { break; }
}
return String(started);`;
  const os = layersFor('standard');
  const cases: [string, Layers, (n: number) => void][] = [
    ['without the NPROC limit (no prlimit): every spawn succeeds', { ...os, os: true, rlimits: false }, (n) => expect(n).toBe(150)],
    [`with it: fewer than ${NPROC} processes and threads in all`, { ...os, os: true, rlimits: true }, (n) => expect(n).toBeLessThan(NPROC)],
  ];
  it.each(cases)(
    '%s',
    async (_, layers, check) => {
      if (!os.os) throw new Error(`the os layer is not available here (${os.why}); CI installs bubblewrap`);
      const b = new Breach('javascript', layers, true);
      try {
        await b.ready;
        // The harness really runs without the permission model: it can spawn at all.
        check(Number(await b.run(SPAWN_MANY)));
      } finally {
        b.stop();
      }
    },
    60_000,
  );
});
