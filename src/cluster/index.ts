// Several machines: the trainer's cluster pool and reward jobs (pool.ts, rewards.ts), the worker
// process (worker.ts), the wire protocol (protocol.ts) and a NATS server for tests (server.ts).
import type { Recipe } from '../recipe/schema.ts';
import type { Tokenizer } from '../model/tokenizer.ts';
import { resolveCluster } from './config.ts';
import { ClusterPool } from './pool.ts';

export { ClusterPool, type Rollouts } from './pool.ts';
export { loadClusterRewards } from './rewards.ts';
export { resolveCluster, redactUrl, type ClusterSettings } from './config.ts';

/** The cluster pool of a stage when the recipe or R1_CLUSTER_URL names a server, else null. */
export async function openStageCluster(recipe: Pick<Recipe, 'cluster' | 'recipeDir'>, stageDir: string, tok: Tokenizer, log = (line: string) => process.stderr.write(line + '\n')): Promise<ClusterPool | null> {
  const settings = resolveCluster(recipe.cluster, recipe.recipeDir);
  return settings ? ClusterPool.open(settings, { tok, stageDir, log }) : null;
}
