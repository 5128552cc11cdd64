// What the recipe loader asks of the rollout room, in one small seam: what keeps a stage's rollout
// engine from running here, before any stage starts. recipe/ imports this file, never the engines.
import type { ModelConfig } from '../model/config.ts';
import { type LlamaCppDevice, llamaCppModelProblem, llamaCppProblems } from './llama-cpp.ts';

/** The rollout engines a recipe may name (rollout.engine); engines.ts opens each. */
export const ROLLOUT_ENGINE_NAMES = ['tfjs', 'llama.cpp'] as const;
export type RolloutEngineName = (typeof ROLLOUT_ENGINE_NAMES)[number];

/** A stage's rollout settings, as the recipe gives them. */
export type RolloutFields = { engine: RolloutEngineName; device: LlamaCppDevice };

/** Problems of each engine: its package, the device's driver, an architecture it has (`born`: reads
 * the config of the model the stage starts from, or null when unknown yet). */
const ENGINE_CHECKS: Record<RolloutEngineName, (r: RolloutFields, born: () => object | null) => { field: 'engine' | 'device'; message: string }[]> = {
  tfjs: () => [],
  'llama.cpp': (r, born) => {
    const out: { field: 'engine' | 'device'; message: string }[] = [];
    const missing = llamaCppProblems(r.device);
    if (missing.length) out.push({ field: /^rollout\.device/.test(missing[0]) ? 'device' : 'engine', message: missing[0] });
    const config = born();
    const arch = config && llamaCppModelProblem(config as ModelConfig);
    if (arch) out.push({ field: 'engine', message: arch });
    return out;
  },
};

/** Problems of a stage's rollout fields (under rollout.). */
export function rolloutProblems(r: RolloutFields, born: () => object | null): { field: 'engine' | 'device'; message: string }[] {
  return ENGINE_CHECKS[r.engine](r, born);
}
