// The local rollout engines in one table, keyed by the recipe's rollout.engine: adding an engine is
// one entry here (and its name and checks in recipe-check.ts, which the recipe schema reads). The cluster, when there is one, stands in
// front of them (cluster/index.ts openRollouts).
import type { ModelConfig } from '../model/config.ts';
import type { Tokenizer } from '../model/tokenizer.ts';
import { LlamaCppRollouts } from './llama-cpp.ts';
import { RolloutPool, defaultWorkers } from './pool.ts';
import type { RolloutEngineName, RolloutFields } from './recipe-check.ts';
import { MainThreadRollouts, type Rollouts } from './rollouts.ts';
import { type TurnEngine, ToolRollouts, type ToolsConfig } from './multi-turn.ts';
import { ToolRunner } from './tools.ts';
import { EnvironmentRunner, loadEnvironment } from './environment.ts';

/** What opening a local engine needs: the policy's architecture, the tokenizer, the tfjs backend. */
export type EngineContext = {
  config: ModelConfig;
  tokenizer: Tokenizer;
  backend: string;
  recipe?: { sandbox: { isolation: 'strict' | 'standard' | 'process' }; recipeDir: string };
};

/** The stage fields the local engines read. */
export type EngineStage = { rollout: RolloutFields; rollout_workers: number | 'auto'; tools?: ToolsConfig | null };

/** Standard output read back from one tool call at most (characters; the earlier cells' output of
 * the session counts in it). What reaches the model is then cut to tools.max_output_tokens. */
export const TOOL_OUTPUT_CHARS = 1 << 16;

/** The local rollout engines, by recipe name (rollout.engine). */
export const ROLLOUT_ENGINES: Record<RolloutEngineName, (s: EngineStage, ctx: EngineContext) => Promise<Rollouts>> = {
  /** The policy itself: in rollout_workers threads, or on the main thread with 0. */
  tfjs: async (s, ctx) => {
    const workers = defaultWorkers(s.rollout_workers, ctx.backend);
    return workers > 0 ? new RolloutPool(workers, ctx.config, ctx.tokenizer, ctx.backend) : new MainThreadRollouts(ctx.tokenizer);
  },
  /** node-llama-cpp fed a GGUF export of the policy at each sync. */
  'llama.cpp': (s, ctx) => LlamaCppRollouts.open(ctx.config, ctx.tokenizer, { device: s.rollout.device }),
};

/** The stage's local rollout engine. */
export async function openLocalRollouts(s: EngineStage, ctx: EngineContext): Promise<Rollouts> {
  // Multi-turn rollouts with tools: the policy on the main thread, the calls in a sandbox pool of
  // their own (the recipe check refuses the engines and workers that cannot run them yet).
  if (s.tools) {
    const limits = { timeoutS: s.tools.timeout_s, outputChars: TOOL_OUTPUT_CHARS };
    const runner = s.tools.environment
      ? new EnvironmentRunner(await loadEnvironment(s.tools.environment, ctx.recipe?.recipeDir ?? process.cwd()), limits)
      : new ToolRunner(limits, { isolation: ctx.recipe?.sandbox.isolation });
    return new ToolRollouts(ctx.tokenizer, s.tools, runner, {
      engine: s.rollout.engine === 'llama.cpp' ? await llamaCppTurns(s, ctx) : undefined,
    });
  }
  return ROLLOUT_ENGINES[s.rollout.engine](s, ctx);
}

/** llama.cpp sampling a multi-turn rollout's turns: each turn's contexts decode as parallel
 * sequences, each trajectory drawing from its own stream, stopping at the call's closing tag. */
async function llamaCppTurns(s: EngineStage, ctx: EngineContext): Promise<TurnEngine> {
  const llama = await LlamaCppRollouts.open(ctx.config, ctx.tokenizer, { device: s.rollout.device });
  return {
    samplesElsewhere: llama.samplesElsewhere,
    sync: (model) => llama.sync(model),
    sample: (contexts, opts) => {
      if (!opts.rngs) throw new Error('llama.cpp turns: a multi-turn rollout gives each context its own random stream (rngs)');
      return llama.sampleRows(contexts, opts, opts.rngs);
    },
    close: () => llama.close(),
  };
}
