import type { Command } from 'commander';
import { UserError } from '../../errors.ts';

export function register(program: Command): void {
  program
    .command('worker')
    .description('serve a trainer on other machines: take rollout and/or reward jobs from a NATS JetStream server (cluster.url)')
    .option('--connect <url>', 'the NATS server, e.g. nats://host:4222 (default: R1_CLUSTER_URL)')
    .option('--roles <roles>', 'rollout, reward or both (comma-separated)', 'rollout,reward')
    .option('--name <name>', 'worker name in the logs and metrics (default: host-pid)')
    .option('--engine <engine>', 'rollout engine: tfjs', 'tfjs')
    .option('--backend <name>', 'auto | tensorflow | wasm | cpu', 'auto')
    .option('--tls-ca <file>', 'TLS: CA certificate file')
    .option('--tls-cert <file>', 'TLS: client certificate file')
    .option('--tls-key <file>', 'TLS: client key file')
    .action(
      async (opts: {
        connect?: string;
        roles: string;
        name?: string;
        engine: string;
        backend: string;
        tlsCa?: string;
        tlsCert?: string;
        tlsKey?: string;
      }) => {
        const { ROLES } = await import('../../cluster/protocol.ts');
        const { resolveCluster } = await import('../../cluster/config.ts');
        const { runWorker } = await import('../../cluster/worker.ts');
        const { initBackend } = await import('../../engine/backend.ts');
        const roles = opts.roles
          .split(',')
          .map((r) => r.trim())
          .filter(Boolean);
        const bad = roles.filter((r) => !(ROLES as readonly string[]).includes(r));
        if (!roles.length || bad.length) throw new UserError(`--roles ${opts.roles}: valid roles are ${ROLES.join(', ')}`);
        if (opts.engine !== 'tfjs') throw new UserError(`--engine ${opts.engine}: only tfjs is available to workers so far`);
        const tls = opts.tlsCa || opts.tlsCert || opts.tlsKey ? { ca: opts.tlsCa, cert: opts.tlsCert, key: opts.tlsKey } : false;
        const settings = resolveCluster({ ...(opts.connect ? { url: opts.connect } : {}), tls }, process.cwd());
        if (!settings) throw new UserError('no cluster to connect to: give --connect nats://host:4222 or set R1_CLUSTER_URL');
        const backend = await initBackend(opts.backend);
        const stop = new AbortController();
        for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => stop.abort());
        // Test hooks (not for users): claim another protocol at hello; linger inside each job.
        const claim = process.env.R1_WORKER_CLAIM_PROTOCOL
          ? { protocol: Number(process.env.R1_WORKER_CLAIM_PROTOCOL), version: process.env.R1_WORKER_CLAIM_VERSION ?? '0.0.0' }
          : undefined;
        const jobDelayMs = Number(process.env.R1_WORKER_JOB_DELAY_MS ?? 0) || undefined;
        process.exitCode = await runWorker({
          settings,
          roles: roles as (typeof ROLES)[number][],
          name: opts.name,
          backend,
          signal: stop.signal,
          claim,
          jobDelayMs,
        });
      },
    );
}
