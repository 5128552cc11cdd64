// How a sandbox process is started, and which walls it gets. Each layer holds on its own:
//
//   process   a separate Node process per worker, under Node's permission model: it may read only
//             its own code and its runtime's files (pyodide's folder; isolated-vm's for JavaScript),
//             write no file, start no process or thread; the Python process loads no addon. Talks to
//             the pool over pipes only.
//   os        (Linux, where bubblewrap and user namespaces are available) new user, PID, network,
//             IPC, UTS and mount namespaces: no network interface but loopback of its own, no other
//             process visible, a file system of the system's read-only /usr and the same three
//             folders read-only, an empty /tmp; plus resource limits (no core files, no file growth,
//             few descriptors) through prlimit, and, set inside the new user namespace (where the
//             kernel counts only that namespace's tasks), at most NPROC processes and threads, so a
//             process that has also lost the permission model cannot fork without bound. When r1kit
//             runs as root, this layer starts as the unprivileged user `nobody` (65534): the
//             namespace's root is then no one on the host, and the kernel enforces NPROC (it exempts
//             the host's root).
//
// `isolation`: `strict` refuses to start without the os layer; `standard` (default) needs the process
// layer and adds the os layer where the machine allows, saying once which are on; `process` skips
// the os layer (tests compare both).
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '../src/errors.ts';
import { LANGUAGES, LANGUAGE_NAMES, type Language } from './languages.ts';

export const ISOLATIONS = ['strict', 'standard', 'process'] as const;
export type Isolation = (typeof ISOLATIONS)[number];
export type Entry = 'main' | 'breach';
export type Layers = { process: true; os: boolean; rlimits: boolean; why: string | null };

const require = createRequire(import.meta.url);
/** The runtime folder each language's process may read. */
export const runtimeDir = (language: Language) =>
  dirname(realpathSync(require.resolve(`${LANGUAGES[language].runtimePackage}/package.json`)));

let bundleDir: string | null = null;
/** The child code, bundled into plain JavaScript files (one per entry) in a private temporary
 * folder: the process reads nothing of the project but these. Built once per host process. */
export function bundle(entry: Entry): string {
  if (!bundleDir) {
    const dir = mkdtempSync(join(tmpdir(), 'r1kit-sandbox-'));
    const esbuild = require('esbuild') as typeof import('esbuild');
    const here = dirname(fileURLToPath(import.meta.url));
    const result = esbuild.buildSync({
      entryPoints: { main: join(here, 'child/main.ts'), breach: join(here, 'child/breach.ts') },
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      outdir: dir,
      outExtension: { '.js': '.mjs' },
      loader: { '.py': 'text' },
      write: false,
      logLevel: 'silent',
      // The runtimes are loaded from their own folders (the child imports them by path).
      external: LANGUAGE_NAMES.map((l) => LANGUAGES[l].runtimePackage),
    });
    for (const f of result.outputFiles) writeFileSync(f.path, f.contents, { mode: 0o644 });
    // Readable by the unprivileged user the os layer runs as under a root host (see `sandboxUser`).
    chmodSync(dir, 0o755);
    bundleDir = dir;
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  return join(bundleDir, `${entry}.mjs`);
}

/** Tasks (processes and threads) one sandbox may have: node uses about 12 threads, isolated-vm a few
 * per core; the rest is what a breached process could start. */
export const NPROC = 64;

/** The host user the os layer's processes run as: themselves, unless that is root, then `nobody`. */
export function sandboxUser(): { uid?: number; gid?: number } {
  return process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
}

let probed: { bwrap: string | null; prlimit: string | null; why: string | null } | null = null;
const which = (cmd: string) =>
  [...(process.env.PATH ?? '').split(':'), '/usr/bin', '/bin']
    .filter(Boolean)
    .map((d) => join(d, cmd))
    .find((p) => existsSync(p)) ?? null;

/** Whether the os layer can be set up here: bubblewrap present and able to make the namespaces. */
function probe(): NonNullable<typeof probed> {
  if (probed) return probed;
  // R1_BWRAP names bubblewrap's path (an empty value: none), where PATH does not find it.
  const given = process.env.R1_BWRAP;
  const bwrap = given === undefined ? which('bwrap') : given && existsSync(given) ? given : null,
    prlimit = which('prlimit');
  let why: string | null = null;
  if (process.platform !== 'linux') why = `the os layer needs Linux (this is ${process.platform})`;
  else if (!bwrap) why = `bubblewrap is not ${given ? `at R1_BWRAP=${given}` : 'installed'} (Debian/Ubuntu: apt-get install bubblewrap)`;
  else {
    const r = spawnSync(bwrap, [...bwrapArgs([]), '--', process.execPath, '-e', '0'], {
      encoding: 'utf8',
      timeout: 10_000,
      ...sandboxUser(),
    });
    if (r.status !== 0)
      why = `bubblewrap cannot make namespaces here (${(r.stderr || r.error?.message || `exit ${r.status}`).trim().split('\n')[0]}); user namespaces may be off (sysctl kernel.unprivileged_userns_clone=1)`;
  }
  return (probed = { bwrap, prlimit, why });
}

/** bubblewrap's arguments: every namespace, the system's /usr read-only, the given folders read-only
 * at their own paths, nothing else of the host. */
function bwrapArgs(readable: string[]): string[] {
  const args = [
    '--unshare-all',
    '--die-with-parent',
    '--new-session',
    '--cap-drop',
    'ALL',
    '--proc',
    '/proc',
    '--dev',
    '/dev',
    '--tmpfs',
    '/tmp',
    '--ro-bind',
    '/usr',
    '/usr',
  ];
  // Merged-/usr systems link /lib, /lib64 and /bin into /usr; others have them as folders.
  for (const d of ['/lib', '/lib64', '/bin']) {
    if (!existsSync(d)) continue;
    const real = realpathSync(d);
    args.push(...(real.startsWith('/usr/') ? ['--symlink', real.slice(1), d] : ['--ro-bind', d, d]));
  }
  const node = dirname(dirname(realpathSync(process.execPath)));
  if (!node.startsWith('/usr')) readable = [node, ...readable];
  for (const p of readable) args.push('--ro-bind', p, p);
  return args;
}

/** Which layers a process of this isolation gets here; throws a UserError for strict without the os layer. */
export function layersFor(isolation: Isolation): Layers {
  if (!ISOLATIONS.includes(isolation))
    throw new UserError(`sandbox isolation: one of ${ISOLATIONS.join(', ')}, got ${JSON.stringify(isolation)}`);
  if (isolation === 'process') return { process: true, os: false, rlimits: false, why: 'the os layer is off (isolation: process)' };
  const p = probe();
  if (isolation === 'strict' && p.why) throw new UserError(`sandbox.isolation is strict but the os layer is missing: ${p.why}`);
  return { process: true, os: p.why === null, rlimits: p.why === null && p.prlimit !== null, why: p.why };
}

/** The command that starts one sandbox process for the language, and the user it runs as. */
export function command(
  language: Language,
  layers: Layers,
  entry: Entry = 'main',
): { file: string; args: string[]; uid?: number; gid?: number } {
  const script = bundle(entry),
    runtime = runtimeDir(language);
  const readable = [dirname(script), runtime];
  const node = [
    // Node 20 calls the permission model experimental; 22 and later name it --permission.
    Number(process.versions.node.split('.')[0]) >= 22 ? '--permission' : '--experimental-permission',
    ...readable.map((p) => `--allow-fs-read=${p}/`),
    ...(LANGUAGES[language].addons ? ['--allow-addons'] : []),
    '--no-warnings',
    '--disable-proto=throw',
    // The heap of this process (isolates have their own caps); pyodide's memory is WebAssembly's.
    '--max-old-space-size=512',
    '--stack-size=4000',
    script,
    language,
    runtime,
  ];
  if (!layers.os) return { file: process.execPath, args: node };
  const p = probe();
  // The process count is limited from inside the namespace: set outside it, the kernel would count
  // every process of the host user against it.
  const prlimitInside = layers.rlimits && p.prlimit ? realpathSync(p.prlimit) : null;
  const nproc = prlimitInside?.startsWith('/usr/') ? [prlimitInside, `--nproc=${NPROC}`, '--'] : [];
  const inner = [p.bwrap!, ...bwrapArgs(readable), '--', ...nproc, process.execPath, ...node];
  const user = sandboxUser();
  return layers.rlimits
    ? { file: p.prlimit!, args: ['--core=0', '--fsize=0', '--nofile=256', '--', ...inner], ...user }
    : { file: inner[0], args: inner.slice(1), ...user };
}

let announced = false;
/** Writes the line about the layers to standard error once per host process: the pipeline says it at
 * start, and a pool started later does not say it again. */
export function announceOnce(line: string, write: (line: string) => void = (l) => process.stderr.write(l + '\n')): void {
  if (announced) return;
  announced = true;
  write(line);
}

/** One line per layer, for `r1 sandbox --check` and the start-up notice. */
export function describeLayers(layers: Layers): string[] {
  return [
    'process: on (Node permission model: reads only the runtime and its own code; no file writes, processes, threads; addons only for isolated-vm)',
    layers.os
      ? `os: on (bubblewrap: user, pid, network, ipc, uts and mount namespaces${layers.rlimits ? `; prlimit: no core files, no file growth, 256 descriptors, ${NPROC} processes and threads` : ''})`
      : `os: off (${layers.why})`,
  ];
}
