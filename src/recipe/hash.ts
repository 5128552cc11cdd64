// Stable hashes of a recipe, so a rerun can tell which stages changed. A stage's hash covers its own
// resolved config and those of the stages before it, plus model, tokenizer and seed: change an early
// stage and every later stage runs again.
import { createHash } from 'node:crypto';
import type { Recipe, Stage } from './schema.ts';

/** Fields that do not change what a stage computes, left out of its hash. A new eval `label` must
 * not rerun a finished pipeline: the label only names a row of the results table; gradient
 * checkpointing changes memory and time, not the gradients. */
const NOT_HASHED = new Set(['logging_steps', 'save_steps', 'rollout_workers', 'train_workers', 'gradient_checkpointing', 'label']);

/** JSON with sorted keys, so key order in the YAML does not change the hash. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

const sha = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 16);

function stageConfig(stage: Stage): Record<string, unknown> {
  return Object.fromEntries(Object.entries(stage).filter(([k]) => !NOT_HASHED.has(k)));
}

/** Hash of stage i: its config, those of the stages before it, the model, tokenizer and seed. */
export function stageHash(recipe: Recipe, i: number): string {
  if (i < 0 || i >= recipe.stages.length) throw new RangeError(`no stage ${i} in recipe '${recipe.name}'`);
  const { model, tokenizer, seed } = recipe;
  return sha(canonicalJson({ model, tokenizer, seed, stages: recipe.stages.slice(0, i + 1).map(stageConfig) }));
}

/** Hash of the whole recipe (every stage; name and output folder excluded, as they do not change results). */
export function recipeHash(recipe: Recipe): string {
  return stageHash(recipe, recipe.stages.length - 1);
}
