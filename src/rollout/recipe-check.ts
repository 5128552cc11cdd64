// What the recipe loader asks of the rollout room, in one small seam: what keeps a stage's rollout
// engine from running here, before any stage starts. recipe/ imports this file, never the engines.
import { type ModelConfig, family } from '../model/config.ts';
import { LORA_DEFAULT_TARGETS } from '../model/lora.ts';
import { type LlamaCppDevice, llamaCppModelProblem, llamaCppProblems } from './llama-cpp.ts';

/** The rollout engines a recipe may name (rollout.engine); engines.ts opens each. */
export const ROLLOUT_ENGINE_NAMES = ['tfjs', 'llama.cpp'] as const;
export type RolloutEngineName = (typeof ROLLOUT_ENGINE_NAMES)[number];

/** The tools a stage may name (rollout/tools.ts runs them) and the forms of a call. */
export const TOOL_NAMES = ['python', 'javascript'] as const;
export type ToolName = (typeof TOOL_NAMES)[number];
export const TOOL_FORMATS = ['r1', 'chat'] as const;

/** What keeps a stage's tools from running: the field and why. Multi-turn rollouts sample on the main
 * thread (tfjs) or with llama.cpp (rollout/engines.ts), not in rollout worker threads; with a
 * cluster the trainer samples the turns and reward workers run the calls (cluster/index.ts). */
export function toolProblems(s: {
  tools: { format: string; environment: string | null } | null;
  template: string;
  rollout_workers: number | 'auto';
}): { field: string[]; message: string }[] {
  if (!s.tools) return [];
  const out: { field: string[]; message: string }[] = [];
  if (s.tools.format === 'chat' && s.template !== 'chat')
    out.push({
      field: ['tools', 'format'],
      message: `chat renders the prompt and the tool results with the model's chat template: set template: chat (got '${s.template}')`,
    });
  if (s.tools.format === 'chat' && s.tools.environment)
    out.push({
      field: ['tools', 'environment'],
      message: "works with format r1 only yet (the chat form would need the environment's tool schemas)",
    });
  if (typeof s.rollout_workers === 'number' && s.rollout_workers > 0) {
    out.push({
      field: ['rollout_workers'],
      message: `${s.rollout_workers}: rollout worker threads cannot run multi-turn rollouts with tools yet: use 0 (auto also runs them on the main thread)`,
    });
  }
  return out;
}

/** A stage's rollout settings, as the recipe gives them. */
export type RolloutFields = { engine: RolloutEngineName; device: LlamaCppDevice };

/** A stage's lora block as far as the engines care: which modules carry adapters. */
export type LoraFields = { target_modules?: string[] | null } | null | undefined;

/** Problems of each engine: its package, the device's driver, an architecture it has and, under
 * LoRA, adapters it can load (`born`: reads the config of the model the stage starts from, or null
 * when unknown yet). */
const ENGINE_CHECKS: Record<
  RolloutEngineName,
  (r: RolloutFields, born: () => object | null, lora: LoraFields) => { field: 'engine' | 'device'; message: string }[]
> = {
  tfjs: () => [],
  'llama.cpp': (r, born, lora) => {
    const out: { field: 'engine' | 'device'; message: string }[] = [];
    const missing = llamaCppProblems(r.device);
    if (missing.length) out.push({ field: /^rollout\.device/.test(missing[0]) ? 'device' : 'engine', message: missing[0] });
    const config = born();
    const targets = (c: ModelConfig) => (lora ? (lora.target_modules ?? LORA_DEFAULT_TARGETS[family(c)] ?? []) : null);
    const arch = config && llamaCppModelProblem(config as ModelConfig, targets(config as ModelConfig));
    if (arch) out.push({ field: 'engine', message: arch });
    return out;
  },
};

/** Problems of a stage's rollout fields (under rollout.). */
export function rolloutProblems(
  r: RolloutFields,
  born: () => object | null,
  lora: LoraFields = null,
): { field: 'engine' | 'device'; message: string }[] {
  return ENGINE_CHECKS[r.engine](r, born, lora);
}
