// The cluster settings a process uses: the recipe's `cluster` section, or R1_CLUSTER_URL, resolved to
// one typed value. Secrets (the token, a password in the url) are read from the environment and
// never appear in what is logged: `redactUrl` is the only form of the url that is printed.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { UserError } from '../errors.ts';
import { ClusterConfig } from '../recipe/schema.ts';

export type TlsSettings = { ca?: string; cert?: string; key?: string } | null;

/** What a trainer or worker needs to reach the cluster. */
export type ClusterSettings = {
  url: string;
  token: string | null;
  tls: TlsSettings;
  maxStaleness: number;
  jobTimeoutS: number;
  maxDeliver: number;
  onNoWorkers: 'wait' | 'fail';
  remoteRewards: string[];
};

/** The recipe schema's defaults (the one place they are written), for settings that come without a
 * recipe section: R1_CLUSTER_URL alone, or a worker's command line. */
export const CLUSTER_DEFAULTS = ClusterConfig.parse({});

/** The url without user, password or token, for messages. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}

function readToken(ref: string | undefined, env: NodeJS.ProcessEnv): string | null {
  const name = ref ? ref.slice('env:'.length) : 'R1_CLUSTER_TOKEN';
  const value = env[name];
  if (ref && !value) throw new UserError(`cluster.token: environment variable ${name} is not set`);
  return value || null;
}

/** The settings from the recipe's cluster section and the environment, or null when neither names a
 * server (then everything runs in this process, as without a cluster). */
export function resolveCluster(
  cfg: Partial<ClusterConfig> | undefined,
  recipeDir: string,
  env: NodeJS.ProcessEnv = process.env,
): ClusterSettings | null {
  const url = cfg?.url ?? env.R1_CLUSTER_URL;
  if (!url) return null;
  if (!/^(nats|tls|wss?):\/\//.test(url)) throw new UserError(`cluster url '${redactUrl(url)}' is not a NATS url (nats://host:4222)`);
  const tlsCfg = cfg?.tls ?? false;
  const tls: TlsSettings =
    tlsCfg === false
      ? null
      : tlsCfg === true
        ? {}
        : {
            ...(tlsCfg.ca ? { ca: resolve(recipeDir, tlsCfg.ca) } : {}),
            ...(tlsCfg.cert ? { cert: resolve(recipeDir, tlsCfg.cert) } : {}),
            ...(tlsCfg.key ? { key: resolve(recipeDir, tlsCfg.key) } : {}),
          };
  const mode = cfg?.on_no_workers ?? env.R1_ON_NO_WORKERS ?? CLUSTER_DEFAULTS.on_no_workers;
  if (mode !== 'wait' && mode !== 'fail') throw new UserError(`on-no-workers must be wait or fail, got '${mode}'`);
  return {
    url,
    token: readToken(cfg?.token, env),
    tls,
    maxStaleness: cfg?.max_staleness ?? CLUSTER_DEFAULTS.max_staleness,
    jobTimeoutS: cfg?.job_timeout_s ?? CLUSTER_DEFAULTS.job_timeout_s,
    maxDeliver: cfg?.max_deliver ?? CLUSTER_DEFAULTS.max_deliver,
    onNoWorkers: mode,
    remoteRewards: cfg?.remote_rewards ?? [...CLUSTER_DEFAULTS.remote_rewards],
  };
}

/** Connection options for @nats-io/transport-node (files read here, so a missing one names itself). */
export function connectOptions(s: Pick<ClusterSettings, 'url' | 'token' | 'tls'>, name: string): Record<string, unknown> {
  const read = (what: string, path?: string) => {
    if (!path) return undefined;
    try {
      return readFileSync(path, 'utf8');
    } catch (err) {
      throw new UserError(`cluster.tls.${what}: cannot read ${path}: ${(err as Error).message}`);
    }
  };
  return {
    servers: s.url,
    name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    ...(s.token ? { token: s.token } : {}),
    ...(s.tls ? { tls: { ca: read('ca', s.tls.ca), cert: read('cert', s.tls.cert), key: read('key', s.tls.key) } } : {}),
  };
}
