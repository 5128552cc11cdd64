// How the sampling stages that do not train (eval, rejection sampling) draw their completions: one
// generate() call, or with `tools:` the multi-turn loop GRPO's rollouts run, opened the same way
// (rollout/engines.ts openLocalRollouts -> multi-turn.ts ToolRollouts with a sandbox ToolRunner or
// the user's environment). One copy of the loop; one runner (one sandbox pool) per stage, closed
// when the stage has its completions.
import { Rng } from '../engine/rng.ts';
import { activeBackend } from '../engine/backend.ts';
import { type Completion, generate } from '../model/generate.ts';
import type { Tokenizer } from '../model/tokenizer.ts';
import type { Transformer } from '../model/transformer.ts';
import { toolSchemas, type ToolsConfig } from '../rollout/multi-turn.ts';
import { openLocalRollouts } from '../rollout/engines.ts';
import type { Sampling } from '../rollout/rollouts.ts';
import type { ToolSchema } from '../model/chat-template.ts';
import { modelTokenCount } from '../rl/index.ts';
import type { Turn } from '../../rewards/types.ts';

/** What a stage's tools need of the recipe: where the sandbox's walls are set and where a user
 * environment's path is relative to. */
export type ToolsRecipe = { sandbox: { isolation: 'strict' | 'standard' | 'process' }; recipeDir: string };

/** One completion per prompt: single-turn without tools, else multi-turn with the stage's tools. */
export async function sampleCompletions(
  model: Transformer,
  tok: Tokenizer,
  prompts: number[][],
  sampling: Sampling,
  seed: number,
  tools: ToolsConfig | null | undefined,
  recipe: ToolsRecipe,
): Promise<Completion[]> {
  const rng = new Rng(seed);
  if (!tools) return generate(model, tok, prompts, { ...sampling, rng });
  const rollouts = await openLocalRollouts(
    { rollout: { engine: 'tfjs', device: 'auto' }, rollout_workers: 0, tools },
    { config: model.config, tokenizer: tok, backend: activeBackend(), recipe },
  );
  try {
    rollouts.sync(model);
    return await rollouts.generate(prompts, sampling, rng);
  } finally {
    await rollouts.close();
  }
}

/** The tool schemas a chat template renders into the prompt (the chat form), else none. */
export function promptTools(tools: ToolsConfig | null | undefined): ToolSchema[] | undefined {
  return tools?.format === 'chat' ? toolSchemas(tools.names) : undefined;
}

/** The turns the rewards see (RewardBatch.turns) with tools, as GRPO gives them; none without. */
export function rewardTurns(completions: readonly Completion[], tools: ToolsConfig | null | undefined): { turns?: Turn[][] } {
  return tools ? { turns: completions.map((c) => c.trajectory?.turns ?? [{ text: c.text, call: null }]) } : {};
}

/** What a sample row records of a multi-turn completion (as GRPO's samples.jsonl): its turns (text,
 * call, output, error) and its model and tool tokens apart; nothing for a single-turn one. */
export function trajectoryFields(c: Completion): Record<string, unknown> {
  if (!c.trajectory) return {};
  const model = modelTokenCount(c.tokens.length, c.trajectory.modelTokens);
  return { turns: c.trajectory.turns, model_tokens: model, tool_tokens: c.tokens.length - model };
}
