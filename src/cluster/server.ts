// A NATS server with JetStream for tests and benchmarks: Debian's `nats-server` (2.9+) started
// without root on a free port, its file storage in a folder of ours, so it can be stopped and started
// again on the same port with the same streams (a server restart mid-run).
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

export type NatsServer = {
  url: string;
  port: number;
  dir: string;
  /** Stops the server (SIGTERM, then SIGKILL after 5 s). */
  stop(): Promise<void>;
  /** Stops it and starts it again on the same port with the same storage. */
  restart(): Promise<void>;
};

/** The nats-server binary on PATH (or /usr/sbin, where Debian puts it), or null. */
export function natsServerBinary(): string | null {
  for (const candidate of ['nats-server', '/usr/sbin/nats-server', '/usr/bin/nats-server']) {
    try {
      execFileSync(candidate, ['--version'], { stdio: 'ignore' });
      return candidate;
    } catch {
      // try the next
    }
  }
  return null;
}

function waitForPort(dir: string, child: ChildProcess, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const tick = () => {
      const file = existsSync(dir) ? readdirSync(dir).find((f) => f.endsWith('.ports')) : undefined;
      if (file) {
        try {
          const ports = JSON.parse(readFileSync(join(dir, file), 'utf8')) as { nats?: string[] };
          const url = ports.nats?.[0];
          if (url) return resolve(Number(new URL(url).port));
        } catch {
          // written but not complete yet
        }
      }
      if (child.exitCode !== null) return reject(new Error(`nats-server exited with code ${child.exitCode} before listening`));
      if (Date.now() > deadline) return reject(new Error(`nats-server did not listen within ${timeoutMs} ms`));
      setTimeout(tick, 50);
    };
    tick();
  });
}

function launch(bin: string, dir: string, port: number): ChildProcess {
  const args = ['-js', '-sd', join(dir, 'store'), '-a', '127.0.0.1', '-p', String(port), '--ports_file_dir', join(dir, 'ports')];
  return spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Starts nats-server -js in `dir` on a free port (or `port`). Throws when the binary is missing. */
export async function startNatsServer(dir: string, port = -1): Promise<NatsServer> {
  const bin = natsServerBinary();
  if (!bin) throw new Error('nats-server is not installed (Debian: apt-get install nats-server)');
  mkdirSync(join(dir, 'ports'), { recursive: true });
  let child = launch(bin, dir, port);
  let stderr = '';
  const collect = (c: ChildProcess) => c.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  collect(child);
  let actual: number;
  try {
    actual = await waitForPort(join(dir, 'ports'), child, 10_000);
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`${(err as Error).message}\n${stderr}`);
  }
  const stopChild = (c: ChildProcess) =>
    new Promise<void>((resolve) => {
      if (c.exitCode !== null || c.signalCode !== null) return resolve();
      const timer = setTimeout(() => c.kill('SIGKILL'), 5000);
      c.once('exit', () => (clearTimeout(timer), resolve()));
      c.kill('SIGTERM');
    });
  const server: NatsServer = {
    url: `nats://127.0.0.1:${actual}`,
    port: actual,
    dir,
    stop: () => stopChild(child),
    async restart() {
      await stopChild(child);
      for (const f of readdirSync(join(dir, 'ports'))) if (f.endsWith('.ports')) rmSync(join(dir, 'ports', f), { force: true });
      child = launch(bin, dir, actual);
      collect(child);
      await waitForPort(join(dir, 'ports'), child, 10_000);
    },
  };
  return server;
}
