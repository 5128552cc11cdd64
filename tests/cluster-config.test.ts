// Cluster settings: where they come from, what is refused, and that secrets stay out of messages.
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { connectOptions, redactUrl, resolveCluster } from '../src/cluster/config.ts';
import { helloProblem, PROTOCOL, R1KIT_VERSION } from '../src/cluster/protocol.ts';
import { loadRecipe } from '../src/recipe/index.ts';

const RECIPE = resolve('tests/fixtures/rl/rl.yaml');

describe('cluster settings', () => {
  it('nothing configured: no cluster (one process, as before)', () => {
    expect(resolveCluster(undefined, '.', {})).toBeNull();
    expect(loadRecipe(RECIPE).cluster).toBeUndefined();
  });

  it('R1_CLUSTER_URL alone turns it on, with the defaults', () => {
    const s = resolveCluster(undefined, '.', { R1_CLUSTER_URL: 'nats://h:4222' })!;
    expect(s).toMatchObject({
      url: 'nats://h:4222',
      token: null,
      tls: null,
      maxStaleness: 0,
      jobTimeoutS: 60,
      maxDeliver: 5,
      onNoWorkers: 'wait',
      remoteRewards: ['code'],
    });
  });

  it('the recipe section and r1 run --on-no-workers (a --set) are read', () => {
    const r = loadRecipe(RECIPE, { set: ['cluster.url=nats://h:4222', 'cluster.job_timeout_s=7', 'cluster.on_no_workers=fail'] });
    const s = resolveCluster(r.cluster, r.recipeDir, {})!;
    expect(s).toMatchObject({ url: 'nats://h:4222', jobTimeoutS: 7, onNoWorkers: 'fail' });
  });

  it('secrets: a literal token or a password in the url is refused in the recipe; the token comes from the environment and is never in the printed url', () => {
    expect(() => loadRecipe(RECIPE, { set: ['cluster.url=nats://h:4222', 'cluster.token=s3cret'] })).toThrow(/env:R1_CLUSTER_TOKEN/);
    expect(() => loadRecipe(RECIPE, { set: ['cluster.url=nats://me:pw@h:4222'] })).toThrow(/no user or password/);
    const r = loadRecipe(RECIPE, { set: ['cluster.url=nats://h:4222', 'cluster.token=env:MY_TOKEN'] });
    expect(() => resolveCluster(r.cluster, r.recipeDir, {})).toThrow(/MY_TOKEN is not set/);
    const s = resolveCluster(r.cluster, r.recipeDir, { MY_TOKEN: 's3cret' })!;
    expect(connectOptions(s, 'x')).toMatchObject({ token: 's3cret' });
    expect(redactUrl('nats://me:pw@h:4222')).toBe('nats://***@h:4222');
    expect(resolveCluster(undefined, '.', { R1_CLUSTER_URL: 'nats://h:4222', R1_CLUSTER_TOKEN: 'abc' })!.token).toBe('abc');
  });

  it('hello: another protocol or major.minor version is refused, a patch release is not', () => {
    const hello = {
      kind: 'hello' as const,
      worker: 'w',
      host: 'h',
      pid: 1,
      roles: ['rollout' as const],
      protocol: PROTOCOL,
      version: R1KIT_VERSION,
    };
    expect(helloProblem(hello)).toBeNull();
    expect(helloProblem({ ...hello, protocol: PROTOCOL + 1 })).toMatch(/protocol/);
    expect(helloProblem({ ...hello, version: '99.0.0' })).toMatch(/major.minor/);
    const [maj, min] = R1KIT_VERSION.split('.');
    expect(helloProblem({ ...hello, version: `${maj}.${min}.99` })).toBeNull();
  });
});
