// Several machines: the trainer's cluster pool and reward jobs (pool.ts, rewards.ts), the worker
// process (worker.ts), the wire protocol (protocol.ts) and a NATS server for tests (server.ts).
// openRollouts stands here, above the local engines (rollout/engines.ts), because the cluster is the
// one source that may replace them: with a server, its workers sample; else the stage's engine does.
import type { Recipe } from '../recipe/schema.ts';
import type { Tokenizer } from '../model/tokenizer.ts';
import { type EngineContext, type EngineStage, openLocalRollouts } from '../rollout/engines.ts';
import type { Rollouts } from '../rollout/rollouts.ts';
import { loadRewards, type LoadedReward, type RewardSpec } from '../../rewards/registry.ts';
import { resolveCluster } from './config.ts';
import { ClusterPool } from './pool.ts';
import { loadClusterRewards } from './rewards.ts';

export { ClusterPool } from './pool.ts';
export { loadClusterRewards } from './rewards.ts';
export { resolveCluster, redactUrl, type ClusterSettings } from './config.ts';
export type { Rollouts } from '../rollout/rollouts.ts';

/** The cluster pool of a stage when the recipe or R1_CLUSTER_URL names a server, else null. */
export async function openStageCluster(
  recipe: Pick<Recipe, 'cluster' | 'recipeDir'>,
  stageDir: string,
  tok: Tokenizer,
  log = (line: string) => process.stderr.write(line + '\n'),
): Promise<ClusterPool | null> {
  const settings = resolveCluster(recipe.cluster, recipe.recipeDir);
  return settings ? ClusterPool.open(settings, { tok, stageDir, log }) : null;
}

/** What opening a stage's rollouts needs. */
export type RolloutsContext = EngineContext & { recipe: Pick<Recipe, 'cluster' | 'recipeDir' | 'sandbox'>; stageDir: string };

/** A stage's rollout source and its loaded rewards: the cluster's workers (and its remote rewards)
 * when a server is named, else the local engine the stage's rollout.engine names. If the rewards
 * fail to load, the source is closed before the error goes on. */
export async function openRollouts(
  s: EngineStage & { rewards: RewardSpec[] },
  ctx: RolloutsContext,
): Promise<{ rollouts: Rollouts; rewards: LoadedReward[] }> {
  const cluster = await openStageCluster(ctx.recipe, ctx.stageDir, ctx.tokenizer);
  const rollouts = cluster ?? (await openLocalRollouts(s, ctx));
  const defaults = { sandbox: ctx.recipe.sandbox };
  try {
    const rewards = cluster
      ? await loadClusterRewards(s.rewards, ctx.recipe.recipeDir, defaults, cluster)
      : await loadRewards(s.rewards, ctx.recipe.recipeDir, defaults);
    return { rollouts, rewards };
  } catch (e) {
    await rollouts.close();
    throw e;
  }
}
