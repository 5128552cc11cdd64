// The stage's rewards with a cluster: those named in cluster.remote_rewards (by default the code
// reward, which runs model-written programs) become reward jobs for reward workers; the rest load
// here as without a cluster. Order, names and weights stay those of the recipe, so scoreBatch sums
// the same terms in the same order.
import { basename, extname } from 'node:path';
import { isModulePath, loadRewards, type LoadedReward, type RewardDefaults, type RewardSpec } from '../../rewards/registry.ts';
import type { ClusterPool } from './pool.ts';

/** The name a reward gets in the logs (as the registry names it, before making names unique). */
export function rewardName(spec: RewardSpec): string {
  if (!isModulePath(spec.name)) return spec.name;
  const hash = spec.name.lastIndexOf('#');
  const [file, exportName] = hash === -1 ? [spec.name, 'default'] : [spec.name.slice(0, hash), spec.name.slice(hash + 1) || 'default'];
  return exportName === 'default' ? basename(file, extname(file)) : exportName;
}

export async function loadClusterRewards(
  specs: RewardSpec[],
  baseDir: string,
  defaults: RewardDefaults,
  pool: ClusterPool,
): Promise<LoadedReward[]> {
  const remote = new Set(pool.settings.remoteRewards);
  const out: LoadedReward[] = [];
  for (const spec of specs) {
    const name = rewardName(spec);
    let unique = name;
    for (let k = 2; out.some((r) => r.name === unique); k++) unique = `${name}_${k}`;
    if (remote.has(spec.name) || remote.has(name)) {
      out.push(
        pool.remoteReward({ name: spec.name, weight: spec.weight ?? 1, options: spec.options ?? {} }, unique, baseDir, defaults.sandbox),
      );
    } else {
      const [loaded] = await loadRewards([spec], baseDir, defaults);
      out.push({ ...loaded, name: unique });
    }
  }
  return out;
}
