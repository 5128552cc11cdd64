// What the recipe loader asks of the rewards room, in one small seam: whether a stage's reward
// spec names a reward that exists (a built-in with known options, or a module file that is there).
// recipe/ imports this file, never the registry.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { isModulePath, rewardSpecProblem, type RewardSpec } from './registry.ts';

/** Problems of one reward spec (fields under the spec), module paths resolved against `baseDir`. */
export function rewardProblems(spec: RewardSpec, baseDir: string): { field: 'name' | 'options'; message: string }[] {
  const out: { field: 'name' | 'options'; message: string }[] = [];
  const file = resolve(baseDir, spec.name.split('#')[0]);
  if (isModulePath(spec.name) && !existsSync(file)) out.push({ field: 'name', message: `reward module not found: ${file}` });
  const problem = rewardSpecProblem(spec);
  if (problem) out.push(problem);
  return out;
}
