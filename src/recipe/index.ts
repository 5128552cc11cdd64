// Recipes: YAML -> a typed, validated Recipe, with defaults and a doc next to every field.
export * from './schema.ts';
export {
  loadRecipe,
  parseRecipe,
  validateRecipe,
  checkRecipe,
  applySet,
  applyOverride,
  fieldAt,
  QUICK_SUFFIX,
  modelSource,
  bornSource,
  datasetSources,
  runDir,
  formatPath,
  DATASET_EXTENSIONS,
  type DatasetField,
} from './load.ts';
export type { FieldPath, RecipeIssue, LoadOptions, ModelSource, DatasetSource } from './load.ts';
export { recipeHash, stageHash, canonicalJson } from './hash.ts';
export { explain } from './explain.ts';
