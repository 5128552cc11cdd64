// Shared by the distributed tests (tests/cluster-*.test.ts): a NATS server in a temporary folder,
// worker processes (`r1 worker`), and the micro RL recipe pointed at the cluster.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { natsServerBinary, startNatsServer, type NatsServer } from '../src/cluster/server.ts';
import { optionalPresent } from './optional.ts';

/** Whether the distributed tests run: nats-server is installed. Each test file that imports this says
 * so in one line when it is not; with CI=true its absence fails the file. */
export const HAVE_NATS = optionalPresent(
  'distributed tests (tests/cluster-*.test.ts)',
  natsServerBinary() === null ? 'nats-server is not installed' : null,
  '`apt-get install nats-server` (Debian 12: 2.9)',
);

export const quiet = { log: () => {}, progressStream: Object.assign(new Writable({ write: (_c, _e, cb) => cb() }), { isTTY: false }) };

export type Cluster = { server: NatsServer; dir: string; workers: WorkerProc[]; close(): Promise<void> };
export type WorkerProc = { name: string; child: ChildProcess; output: () => string; exited: Promise<number | null> };

export async function startCluster(): Promise<Cluster> {
  const dir = mkdtempSync(join(tmpdir(), 'r1-cluster-'));
  const server = await startNatsServer(dir);
  const c: Cluster = {
    server,
    dir,
    workers: [],
    async close() {
      for (const w of c.workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return c;
}

/** Starts `r1 worker` in its own process. */
export function startWorker(c: Cluster, name: string, roles = 'rollout,reward', env: Record<string, string> = {}): WorkerProc {
  const child = spawn(
    process.execPath,
    [resolve('bin/r1.js'), 'worker', '--connect', c.server.url, '--roles', roles, '--name', name, '--backend', 'wasm'],
    {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const w = { name, child, output: () => out, exited };
  c.workers.push(w);
  return w;
}

/** Waits until `pred` holds (polling), or throws after `ms`. */
export async function until(pred: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
