// Several machines: the trainer's cluster pool and reward jobs (pool.ts, rewards.ts), the worker
// process (worker.ts), the wire protocol (protocol.ts) and a NATS server for tests (server.ts).
// openRollouts stands here, above the local engines (rollout/engines.ts), because the cluster is the
// one source that may replace them: with a server, its workers sample; else the stage's engine does.
import type { Recipe } from '../recipe/schema.ts';
import type { Tokenizer } from '../model/tokenizer.ts';
import { type EngineContext, type EngineStage, TOOL_OUTPUT_CHARS, openLocalRollouts } from '../rollout/engines.ts';
import { EnvironmentRunner, loadEnvironment } from '../rollout/environment.ts';
import { ToolRollouts } from '../rollout/multi-turn.ts';
import type { Rollouts } from '../rollout/rollouts.ts';
import { loadRewards, type LoadedReward, type RewardSpec } from '../../rewards/registry.ts';
import { resolveCluster } from './config.ts';
import { ClusterPool } from './pool.ts';
import { loadClusterRewards } from './rewards.ts';
import { ClusterToolRunner } from './tools.ts';

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
  const rollouts = cluster ? await clusterRollouts(s, ctx, cluster) : await openLocalRollouts(s, ctx);
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

/** The rollouts of a stage on a cluster: its rollout workers sample; with tools, the trainer samples
 * the turns (multi-turn rollouts run on the main thread: rollout/multi-turn.ts) and the calls go to
 * the reward workers as tool jobs (cluster/tools.ts), unless a user environment answers them here. */
async function clusterRollouts(s: EngineStage, ctx: RolloutsContext, cluster: ClusterPool): Promise<Rollouts> {
  if (!s.tools) return cluster;
  const limits = { timeoutS: s.tools.timeout_s, outputChars: TOOL_OUTPUT_CHARS };
  try {
    const runner = s.tools.environment
      ? new EnvironmentRunner(await loadEnvironment(s.tools.environment, ctx.recipe.recipeDir), limits)
      : new ClusterToolRunner(cluster, limits, { isolation: ctx.recipe.sandbox.isolation });
    return new ToolRollouts(ctx.tokenizer, s.tools, runner, { alongside: cluster });
  } catch (e) {
    await cluster.close();
    throw e;
  }
}
