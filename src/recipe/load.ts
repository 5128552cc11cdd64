// Recipe loading: YAML text -> quick: overrides (with --quick) -> --set overrides -> schema ->
// cross-field checks -> a typed Recipe.
// Every error names file:line:column and the field path, so a bad recipe fails before any work.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, extname, isAbsolute, relative, resolve } from 'node:path';
import { closest, distance } from 'fastest-levenshtein';
import { Document, isMap, isNode, isPair, isScalar, isSeq, LineCounter, parse as parseYaml, parseDocument } from 'yaml';
import type { Node as YamlNode } from 'yaml';
import type { z } from 'zod';
import { UserError } from '../errors.ts';
// The owners' checks come through one small seam each (model/, rollout/, rewards/ recipe-check.ts;
// the loss types' table in rl/): this file knows what a recipe is, they know what their part needs.
import { type ModelConfig as ModelConfigOfModel, isHubName, locateHubModel, modelFieldProblems } from '../model/recipe-check.ts';
import { rolloutProblems, toolProblems } from '../rollout/recipe-check.ts';
import { LOSS_TYPES } from '../rl/loss-types.ts';
import { rewardProblems } from '../../rewards/recipe-check.ts';
import {
  CHECKPOINT_STAGES,
  DATASET_STAGES,
  RecipeSchema,
  type SchemaNode,
  STAGE_SCHEMAS,
  STAGE_TYPES,
  type Recipe,
  type Stage,
  type StageType,
  schemaNode,
} from './schema.ts';

export type FieldPath = (string | number)[];
export type RecipeIssue = { path: FieldPath; message: string };
export type LoadOptions = {
  /** `field.path=value` overrides, applied last (after the quick: ones). */
  set?: string[];
  /** Apply the recipe's quick: overrides and name the run <name>-quick. */
  quick?: boolean;
};

export const DATASET_EXTENSIONS = ['.jsonl', '.json', '.parquet'];

/** Read, override, validate and resolve a recipe file. Throws UserError (exit code 2) on any problem. */
export function loadRecipe(file: string, opts: LoadOptions = {}): Recipe {
  const abs = resolve(file);
  if (!existsSync(abs)) throw new UserError(`recipe file not found: ${file}`);
  return parseRecipe(readFileSync(abs, 'utf8'), abs, opts);
}

/** Like loadRecipe, from text; `file` names it in messages and its directory anchors relative paths. */
export function parseRecipe(text: string, file: string, opts: LoadOptions = {}): Recipe {
  const abs = resolve(file);
  const shown = displayPath(abs);
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, merge: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    const pos = lineCounter.linePos(e.pos[0]);
    throw new UserError(`${shown}:${pos.line}:${pos.col}: YAML syntax error: ${e.message.split('\n')[0]}`);
  }
  if (doc.contents !== null && !isMap(doc.contents)) {
    throw new UserError(`${shown}:1:1: a recipe is a mapping of fields (name, seed, model, stages, ...)`);
  }
  const quick = quickEntries(doc, (offset) => {
    const { line, col } = lineCounter.linePos(offset);
    return `${shown}:${line}:${col}`;
  });
  if (opts.quick && quick.length === 0) {
    throw new UserError(
      `${shown}: --quick: this recipe has no quick: section; add one mapping field paths to smaller values, e.g.\nquick:\n  stages.0.max_steps: 10`,
    );
  }

  /** Apply the quick entries (if asked), then the --set ones, to a copy of the document, and validate it. */
  const build = (withQuick: boolean, set: string[]): Recipe => {
    const d = doc.clone();
    // Field path -> where its value came from; a later override of the same path replaces an earlier one.
    const overrides = new Map<string, string>();
    if (withQuick) {
      for (const q of quick) {
        const label = `${q.at}: quick ${q.key}`;
        overrides.set(applyOverride(d, q.key, q.value.clone() as YamlNode, label).join('.'), label);
      }
    }
    for (const arg of set) overrides.set(applySetIn(d, arg, shown).join('.'), `${shown}: --set ${arg}`);
    dropNulledStages(d, overrides);
    const latestFirst = [...overrides].reverse();
    const where = (path: FieldPath): string => {
      // An error inside, or on a parent of, an overridden field is the override's doing.
      const key = path.join('.');
      for (const [p, label] of latestFirst) {
        if (key === p || key.startsWith(p + '.') || (key !== '' && p.startsWith(key + '.'))) return label;
      }
      const { line, col } = lineCounter.linePos(locate(d, path));
      return `${shown}:${line}:${col}`;
    };
    // Top-level keys starting with x- hold YAML anchors for reuse (`<<: *name`); they are not fields.
    const input = Object.fromEntries(Object.entries((d.toJS() ?? {}) as Record<string, unknown>).filter(([k]) => !k.startsWith('x-')));
    return validateRecipe(input, dirname(abs), { file: abs, where });
  };

  if (opts.quick) {
    const recipe = build(true, opts.set ?? []);
    // Its own run folder: a quick run must never resume from, or overwrite, the full run.
    return { ...recipe, name: `${recipe.name}${QUICK_SUFFIX}` };
  }
  const recipe = build(false, opts.set ?? []);
  if (quick.length > 0) {
    // Checked on every load, so a quick: section that rotted is found before someone needs it.
    try {
      build(true, []);
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      throw new UserError(`${shown}: the recipe with its quick: overrides applied (what --quick runs) is invalid:\n${err.message}`);
    }
  }
  return recipe;
}

/**
 * Leave out the stages an override set to null (`stages.pretrain: null`), e.g. a quick: profile that
 * starts from a shipped checkpoint instead of pretraining. Removed after every override is applied,
 * so each override's stage index or name means the full recipe's stage; the paths in `overrides` are
 * renumbered to the stages that remain, so an error still names the override that caused it. A null
 * written in the recipe's own stages list is left for the schema to reject.
 */
function dropNulledStages(doc: Document, overrides: Map<string, string>): void {
  const stages = doc.get('stages', true);
  if (!isSeq(stages)) return;
  const dropped = stages.items
    .map((item, i) => (overrides.has(`stages.${i}`) && isScalar(item) && item.value === null ? i : -1))
    .filter((i) => i >= 0);
  if (!dropped.length) return;
  for (const i of [...dropped].reverse()) stages.items.splice(i, 1);
  const renumbered = [...overrides].flatMap(([path, label]): [string, string][] => {
    const m = /^stages\.(\d+)(\..*)?$/.exec(path);
    if (!m) return [[path, label]];
    const i = Number(m[1]);
    if (dropped.includes(i)) return [];
    return [[`stages.${i - dropped.filter((k) => k < i).length}${m[2] ?? ''}`, label]];
  });
  overrides.clear();
  for (const [path, label] of renumbered) overrides.set(path, label);
}

/** Appended to the run name of a --quick run. */
export const QUICK_SUFFIX = '-quick';

type QuickEntry = { key: string; value: YamlNode; at: string };

/** The entries of the top-level quick: mapping, each with its location (`file:line:col`). */
function quickEntries(doc: Document, at: (offset: number) => string): QuickEntry[] {
  const node = doc.get('quick', true);
  if (node === undefined || (isScalar(node) && node.value === null)) return [];
  if (!isMap(node)) {
    throw new UserError(
      `${at((node as YamlNode).range?.[0] ?? 0)}: quick: expected a mapping of field paths to values, e.g. stages.0.max_steps: 10`,
    );
  }
  return node.items.map((pair) => {
    const where = at((pair.key as YamlNode | null)?.range?.[0] ?? node.range?.[0] ?? 0);
    if (!isScalar(pair.key) || pair.key.value === null || typeof pair.key.value === 'object') {
      throw new UserError(`${where}: quick: each key is a field path such as stages.0.max_steps`);
    }
    const key = String(pair.key.value);
    if (key === 'quick' || key.startsWith('quick.'))
      throw new UserError(`${where}: quick ${key}: the quick: section cannot override itself`);
    const value = isNode(pair.value) ? pair.value : doc.createNode(pair.value ?? null);
    return { key, value, at: where };
  });
}

/** Validate a plain object (as parsed from YAML) and resolve it. `where` maps a field path to a location. */
export function validateRecipe(
  input: unknown,
  recipeDir: string,
  ctx: { file?: string; where?: (path: FieldPath) => string } = {},
): Recipe {
  const where = ctx.where ?? (() => ctx.file ?? '<recipe>');
  const fail = (issues: RecipeIssue[]): never => {
    const lines = issues.map((i) => `${where(i.path)}: ${formatPath(i.path) || '(recipe)'}: ${i.message}`);
    throw new UserError(lines.join('\n'));
  };
  const parsed = RecipeSchema.safeParse(input);
  if (!parsed.success) fail(parsed.error.issues.flatMap((i) => describeIssue(i, input)));
  const recipe = resolveRecipe(parsed.data!, recipeDir, ctx.file ?? '');
  const issues = checkRecipe(recipe);
  if (issues.length > 0) fail(issues);
  return recipe;
}

/** Fill the defaults that depend on other fields: stage names and epsilon_high. */
function resolveRecipe(data: z.infer<typeof RecipeSchema>, recipeDir: string, file: string): Recipe {
  const stages = data.stages.map((s) => {
    const named = { ...s, name: s.name ?? s.type };
    if (named.type !== 'grpo') return named as Stage;
    return { ...named, epsilon_high: named.epsilon_high ?? LOSS_TYPES[named.loss_type].defaultEpsilonHigh(named.epsilon) } as Stage;
  });
  const fromFile = basename(file, extname(file)).replace(/[^A-Za-z0-9._-]+/g, '-');
  return { ...data, name: data.name ?? (fromFile || 'run'), stages, file, recipeDir: resolve(recipeDir) };
}

// ---- checks that span fields -------------------------------------------------------------------

/** Cross-field checks: stage references, files on disk, sizes that must agree. */
export function checkRecipe(recipe: Recipe): RecipeIssue[] {
  const issues: RecipeIssue[] = [];
  const add = (path: FieldPath, message: string) => issues.push({ path, message });
  const { model, tokenizer, stages } = recipe;
  const at = (p: string) => resolve(recipe.recipeDir, p);

  for (const p of modelFieldProblems(model as ModelConfigOfModel)) add(['model', p.field], p.message);
  if (tokenizer.train && model.vocab_size !== 0 && tokenizer.train.vocab_size !== model.vocab_size) {
    add(
      ['model', 'vocab_size'],
      `is ${model.vocab_size} but tokenizer.train.vocab_size is ${tokenizer.train.vocab_size}; make them equal or set 0 (= the tokenizer's)`,
    );
  }
  if (tokenizer.path !== null && !existsSync(at(tokenizer.path))) add(['tokenizer', 'path'], `not found: ${at(tokenizer.path)}`);
  if (tokenizer.path !== null && tokenizer.train) add(['tokenizer'], 'give either path or train, not both');
  tokenizer.train?.datasets.forEach((d, k) => {
    const problem = datasetFileProblem(at(d));
    if (problem) add(['tokenizer', 'train', 'datasets', k], problem);
  });

  const firstIndex = new Map<string, number>();
  stages.forEach((s, i) => {
    const prev = firstIndex.get(s.name);
    if (prev !== undefined)
      add(['stages', i, 'name'], `duplicate stage name '${s.name}' (also stages.${prev}); give each stage a unique name`);
    else firstIndex.set(s.name, i);
    if (s.name === 'init') add(['stages', i, 'name'], "'init' is reserved (it means a fresh model)");
  });
  const stageRef = (name: string, i: number, produces: readonly StageType[], what: string): string | null | undefined => {
    const j = firstIndex.get(name);
    if (j === undefined) return undefined; // not a stage name
    if (j >= i) return `names stage '${name}' (stages.${j}), which does not come before this stage`;
    if (!produces.includes(stages[j].type)) return `names stage '${name}', a ${stages[j].type} stage, which writes no ${what}`;
    return null;
  };

  stages.forEach((s, i) => {
    if (s.model !== null && s.model !== 'init') {
      const ref = stageRef(s.model, i, CHECKPOINT_STAGES, 'checkpoint');
      if (ref) add(['stages', i, 'model'], ref);
      else if (ref === undefined && isHubName(s.model)) {
        const found = locateHubModel(s.model);
        if ('problem' in found) add(['stages', i, 'model'], found.problem);
      } else if (ref === undefined && !isDir(at(s.model))) {
        add(
          ['stages', i, 'model'],
          `'${s.model}' is neither an earlier stage (${stageList(stages, i)}) nor a checkpoint directory (${at(s.model)})`,
        );
      }
    }
    const checkDatasets = (list: string[], path: FieldPath) =>
      list.forEach((d, k) => {
        const ref = stageRef(d, i, DATASET_STAGES, 'dataset');
        if (ref) add([...path, k], ref);
        else if (ref === undefined) {
          const problem = datasetFileProblem(at(d));
          if (problem) add([...path, k], `${problem}${isBareName(d) ? ` (and no earlier stage is named '${d}')` : ''}`);
        }
      });
    if (s.datasets.length === 0) add(['stages', i, 'datasets'], 'this stage needs at least one dataset');
    checkDatasets(s.datasets, ['stages', i, 'datasets']);
    if (s.type === 'pretrain') checkDatasets(s.eval_datasets, ['stages', i, 'eval_datasets']);
    if (s.type === 'rejection-sampling') {
      checkDatasets(s.mix.datasets, ['stages', i, 'mix', 'datasets']);
      if (s.mix.fraction > 0 && s.mix.datasets.length === 0) add(['stages', i, 'mix', 'fraction'], 'is above 0 but mix.datasets is empty');
      if (s.filters.max_length !== null && s.filters.max_length < s.filters.min_length)
        add(['stages', i, 'filters', 'max_length'], 'is below filters.min_length');
    }

    const context = contextLength(recipe, i);
    const tooLong = (field: string, n: number, what: string) => {
      if (context !== null && n > context)
        add(['stages', i, field], `${what} ${n} exceeds the model context (max_position_embeddings = ${context})`);
    };
    if (s.type === 'pretrain') tooLong('seq_length', s.seq_length, 'seq_length');
    if ((s.type === 'sft' || s.type === 'dpo') && s.max_length !== null) tooLong('max_length', s.max_length, 'max_length');
    if (s.type === 'dpo' && s.max_length !== null && s.max_length < 2)
      add(['stages', i, 'max_length'], `${s.max_length} leaves no room for a prompt token and a reply token (needs >= 2)`);
    if (s.type === 'grpo') {
      if (s.per_device_train_batch_size % s.num_generations !== 0) {
        add(
          ['stages', i, 'per_device_train_batch_size'],
          `${s.per_device_train_batch_size} completions per step is not divisible by num_generations (${s.num_generations})`,
        );
      }
      tooLong('max_completion_length', s.max_prompt_length + s.max_completion_length, 'max_prompt_length + max_completion_length =');
      if (s.gradient_accumulation_steps > s.per_device_train_batch_size) {
        add(
          ['stages', i, 'gradient_accumulation_steps'],
          `${s.gradient_accumulation_steps} micro-batches cannot split ${s.per_device_train_batch_size} completions (one completion at least in each)`,
        );
      }
      if (s.kl_in_reward && s.beta === 0)
        add(['stages', i, 'kl_in_reward'], 'needs beta > 0 (beta weighs the KL subtracted from the reward)');
      for (const p of LOSS_TYPES[s.loss_type].problems(s)) add(['stages', i, p.field], p.message);
      for (const p of rolloutProblems(s.rollout, () => bornConfig(recipe, i), s.lora)) add(['stages', i, 'rollout', p.field], p.message);
      for (const p of toolProblems(s)) add(['stages', i, ...p.field], p.message);
    }
    if (s.type === 'grpo' || s.type === 'eval' || s.type === 'rejection-sampling') {
      // Eval and rejection sampling run the calls here, on the main thread's tfjs generation.
      if (s.type !== 'grpo') for (const p of toolProblems({ ...s, rollout_workers: 0 })) add(['stages', i, ...p.field], p.message);
      const env = s.tools?.environment;
      if (env && !existsSync(resolve(recipe.recipeDir, env.replace(/#[^#]*$/, ''))))
        add(['stages', i, 'tools', 'environment'], `module not found: ${resolve(recipe.recipeDir, env.replace(/#[^#]*$/, ''))}`);
    }
    if ((s.type === 'sft' || s.type === 'dpo' || s.type === 'grpo') && s.lora) {
      if (modelSource(recipe, i).kind === 'init')
        add(
          ['stages', i, 'lora'],
          'needs a model to adapt: start the stage from a checkpoint or an earlier stage (model: ...), not a fresh init',
        );
      if (s.type === 'grpo' && s.sync_ref_model)
        add(
          ['stages', i, 'sync_ref_model'],
          'cannot be used with lora: the reference is the base model with the adapters off, as TRL takes it',
        );
    }
    if (s.type === 'rejection-sampling' || s.type === 'eval') tooLong('max_new_tokens', s.max_new_tokens, 'max_new_tokens');
    if ('template' in s && !(['r1-zero', 'chat', 'none'].includes(s.template) || s.template.includes('{prompt}'))) {
      add(['stages', i, 'template'], `'${s.template}' is not a named template (r1-zero, chat, none) and has no {prompt} placeholder`);
    }
    if ('rewards' in s) {
      s.rewards.forEach((r, k) => {
        for (const p of rewardProblems(r, recipe.recipeDir)) add(['stages', i, 'rewards', k, p.field], p.message);
      });
    }
  });

  const first = stages.length > 0 ? modelSource(recipe, 0) : { kind: 'init' as const };
  if (first.kind === 'init' && tokenizer.path === null && !tokenizer.train) {
    add(['tokenizer'], 'the first stage starts from a fresh model, so give tokenizer.path or tokenizer.train');
  }
  return issues;
}

// ---- where each stage's inputs come from --------------------------------------------------------

export type ModelSource = { kind: 'init' } | { kind: 'stage'; stage: string } | { kind: 'checkpoint'; path: string };
export type DatasetSource = { kind: 'file'; path: string } | { kind: 'stage'; stage: string };

/** Where stage i takes its weights from. null means "what the previous stage used or produced". */
export function modelSource(recipe: Recipe, i: number): ModelSource {
  const m = recipe.stages[i].model;
  if (m === 'init') return { kind: 'init' };
  if (m === null) {
    if (i === 0) return { kind: 'init' };
    const prev = recipe.stages[i - 1];
    return CHECKPOINT_STAGES.includes(prev.type) ? { kind: 'stage', stage: prev.name } : modelSource(recipe, i - 1);
  }
  if (recipe.stages.slice(0, i).some((s) => s.name === m)) return { kind: 'stage', stage: m };
  if (isHubName(m)) {
    const found = locateHubModel(m); // a missing model is reported by the recipe checks, before any stage runs
    return { kind: 'checkpoint', path: 'dir' in found ? found.dir : m };
  }
  return { kind: 'checkpoint', path: resolve(recipe.recipeDir, m) };
}

/** Where stage i reads its rows from (its `datasets`, or for rejection sampling also `mix.datasets`). */
/** The stage fields that name datasets: what it trains on, rejection sampling's mix, the held-out set. */
export type DatasetField = 'datasets' | 'mix' | 'eval_datasets';

export function datasetSources(recipe: Recipe, i: number, field: DatasetField = 'datasets'): DatasetSource[] {
  const s = recipe.stages[i];
  const list =
    field === 'mix'
      ? s.type === 'rejection-sampling'
        ? s.mix.datasets
        : []
      : field === 'eval_datasets'
        ? s.type === 'pretrain'
          ? s.eval_datasets
          : []
        : s.datasets;
  const earlier = new Set(recipe.stages.slice(0, i).map((x) => x.name));
  return list.map((d) => (earlier.has(d) ? { kind: 'stage', stage: d } : { kind: 'file', path: resolve(recipe.recipeDir, d) }));
}

/** The run folder: <recipeDir>/<output_dir>/<name>. */
export function runDir(recipe: Recipe): string {
  return resolve(recipe.recipeDir, recipe.output_dir, recipe.name);
}

/** Context length of the model stage i runs: the recipe's, or a checkpoint's config.json; null if unknown. */
function contextLength(recipe: Recipe, i: number): number | null {
  const src = modelSource(recipe, i);
  let j = i;
  let s: ModelSource = src;
  // Follow stage references back to where the weights were born.
  while (s.kind === 'stage') {
    const name = s.stage;
    j = recipe.stages.findIndex((x) => x.name === name);
    if (j < 0) return null;
    s = modelSource(recipe, j);
  }
  if (s.kind === 'init') return recipe.model.max_position_embeddings;
  try {
    const cfg = JSON.parse(readFileSync(resolve(s.path, 'config.json'), 'utf8')) as { max_position_embeddings?: unknown };
    return typeof cfg.max_position_embeddings === 'number' ? cfg.max_position_embeddings : null;
  } catch {
    return null;
  }
}

/** The config of the model stage i starts from (the recipe's model, or the checkpoint's config.json
 * where the weights were born), or null when unknown yet. */
/** Where stage i's weights are born: following `model: <earlier stage>` links back to the stage whose
 * source is a fresh init or a checkpoint folder, with that stage's index; null when a link names no stage. */
export function bornSource(recipe: Recipe, i: number): { index: number; source: Exclude<ModelSource, { kind: 'stage' }> } | null {
  let index = i;
  let source: ModelSource = modelSource(recipe, i);
  while (source.kind === 'stage') {
    const name = source.stage;
    index = recipe.stages.findIndex((x) => x.name === name);
    if (index < 0) return null;
    source = modelSource(recipe, index);
  }
  return { index, source };
}

function bornConfig(recipe: Recipe, i: number): object | null {
  const born = bornSource(recipe, i);
  if (!born) return null;
  if (born.source.kind === 'init') return recipe.model;
  try {
    return JSON.parse(readFileSync(resolve(born.source.path, 'config.json'), 'utf8')) as object;
  } catch {
    return null;
  }
}

// ---- --set overrides ----------------------------------------------------------------------------

/** Apply one `a.b.1.c=value` override to the document (value parsed as a YAML scalar); returns the path. */
export function applySet(doc: Document, arg: string): FieldPath {
  return applySetIn(doc, arg, null);
}

function applySetIn(doc: Document, arg: string, shown: string | null): FieldPath {
  const fail = (message: string): never => {
    throw new UserError(`${shown === null ? '' : `${shown}: `}--set ${arg}: ${message}`);
  };
  const eq = arg.indexOf('=');
  if (eq <= 0) fail('expected field.path=value, e.g. stages.1.learning_rate=1e-4');
  let value: unknown;
  try {
    value = parseYaml(arg.slice(eq + 1));
  } catch (err) {
    fail(`the value is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  return applyOverride(doc, arg.slice(0, eq), doc.createNode(value), shown === null ? `--set ${arg}` : `${shown}: --set ${arg}`);
}

/**
 * Set the field at a dotted path to a YAML node, creating missing mappings on the way; returns the
 * resolved path (indexes, not names). In a list, a segment is an index or the `name` of an entry
 * (a stage's name defaults to its type), so `stages.grpo.max_steps` survives inserting a stage.
 * Errors start with `label`, which says where the override came from.
 */
export function applyOverride(doc: Document, dotted: string, value: YamlNode, label: string): FieldPath {
  const fail = (message: string): never => {
    throw new UserError(`${label}: ${message}`);
  };
  const keys = dotted.split('.');
  if (keys.some((k) => k === '')) fail('empty segment in the field path');
  if (doc.contents === null) doc.contents = doc.createNode({}) as unknown as typeof doc.contents;
  let node: unknown = doc.contents;
  const path: FieldPath = [];
  for (let d = 0; d < keys.length; d++) {
    const last = d === keys.length - 1;
    const here = path.length ? path.join('.') : '(recipe)';
    if (isSeq(node)) {
      const idx = listIndex(doc, node.items, keys[d], path);
      if (typeof idx === 'string') fail(`${here} is a list of ${node.items.length} entries; ${idx}`);
      path.push(idx as number);
      if (last) node.set(idx, value);
      else node = node.get(idx, true);
    } else if (isMap(node)) {
      path.push(keys[d]);
      if (last) node.set(keys[d], value);
      else {
        if (!node.has(keys[d])) node.set(keys[d], doc.createNode({}));
        node = node.get(keys[d], true);
      }
    } else {
      fail(`${here} is a value, not a mapping or list, so it has no field '${keys[d]}'`);
    }
  }
  return path;
}

/** The value at a dotted path in a loaded recipe (list entries by index or name); undefined if none. */
export function fieldAt(recipe: unknown, dotted: string): unknown {
  let v = recipe;
  for (const seg of dotted.split('.')) {
    if (Array.isArray(v)) v = /^\d+$/.test(seg) ? v[Number(seg)] : v.find((x: unknown) => (x as { name?: unknown } | null)?.name === seg);
    else v = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[seg] : undefined;
  }
  return v;
}

/** The index a path segment names in a list: a number, or the one entry with that name; else why not. */
function listIndex(doc: Document, items: unknown[], seg: string, path: FieldPath): number | string {
  const range = items.length ? `0..${items.length - 1}` : 'none';
  if (/^\d+$/.test(seg)) return Number(seg) < items.length ? Number(seg) : `'${seg}' is not an index ${range}`;
  const isStages = path.length === 1 && path[0] === 'stages';
  const names = items.map((item) => {
    const v = isNode(item) ? (item.toJS(doc) as unknown) : item;
    if (v === null || typeof v !== 'object') return undefined;
    const { name, type } = v as { name?: unknown; type?: unknown };
    const n = name ?? (isStages ? type : undefined);
    return typeof n === 'string' ? n : undefined;
  });
  const hits = names.flatMap((n, i) => (n === seg ? [i] : []));
  if (hits.length === 1) return hits[0];
  if (hits.length > 1) return `'${seg}' names entries ${hits.join(' and ')}; give the index`;
  const known = names.filter((n): n is string => n !== undefined);
  return `'${seg}' is neither an index ${range} nor the name of an entry${known.length ? ` (names: ${known.join(', ')})` : ''}`;
}

// ---- error messages -----------------------------------------------------------------------------

/** Offset in the YAML text of the deepest node on `path` that exists (the key, for a map entry). */
function locate(doc: Document, path: FieldPath): number {
  let node: unknown = doc.contents;
  let offset = (doc.contents as YamlNode | null)?.range?.[0] ?? 0;
  for (const key of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(key));
      if (!pair) break;
      offset = (pair.key as YamlNode).range?.[0] ?? offset;
      node = pair.value;
    } else if (isSeq(node) && typeof key === 'number' && key < node.items.length) {
      node = node.items[key];
      offset = (node as YamlNode).range?.[0] ?? offset;
    } else break;
  }
  return offset;
}

function describeIssue(issue: z.core.$ZodIssue, input: unknown): RecipeIssue[] {
  const path = issue.path as FieldPath;
  const got = valueAt(input, path);
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((k) => ({ path: [...path, k], message: `unknown key '${k}'${suggest(k, validKeys(path, input))}` }));
    case 'invalid_union':
      if ('discriminator' in issue && issue.discriminator === 'type') {
        return [
          {
            path,
            message:
              got === undefined
                ? `missing stage type (${STAGE_TYPES.join(' | ')})`
                : `unknown stage type ${show(got)}${suggest(String(got), [...STAGE_TYPES])}; valid: ${STAGE_TYPES.join(', ')}`,
          },
        ];
      }
      return [{ path, message: `${issue.message}, got ${show(got)}` }];
    case 'invalid_type':
      return [
        {
          path,
          message: got === undefined ? `missing required field (${issue.expected})` : `expected ${issue.expected}, got ${show(got)}`,
        },
      ];
    case 'invalid_value': {
      const options = issue.values.map(String);
      return [{ path, message: `expected one of ${options.join(', ')}; got ${show(got)}${suggest(String(got), options)}` }];
    }
    case 'too_small':
    case 'too_big': {
      // zod's own wording ("Too small: expected number to be >=0") reads worse than a bound; keep custom messages.
      if (!/^Too (small|big)/.test(issue.message)) break;
      const op = issue.code === 'too_small' ? (issue.inclusive ? '>=' : '>') : issue.inclusive ? '<=' : '<';
      const bound = issue.code === 'too_small' ? issue.minimum : issue.maximum;
      const what =
        issue.origin === 'array'
          ? `needs ${op} ${bound} entries`
          : issue.origin === 'string'
            ? `needs ${op} ${bound} characters`
            : `must be ${op} ${bound}`;
      return [{ path, message: `${what}${typeof got === 'number' ? `, got ${got}` : ''}` }];
    }
  }
  return [{ path, message: `${issue.message}${got === undefined || typeof got === 'object' ? '' : `, got ${show(got)}`}` }];
}

/** The keys the schema allows at `path` (a mapping), to suggest the nearest one for a typo. */
function validKeys(path: FieldPath, input: unknown): string[] {
  let schema: SchemaNode | undefined = schemaNode(RecipeSchema);
  for (let d = 0; d <= path.length; d++) {
    for (;;) {
      const t = schema?.def.type;
      if (t === 'default' || t === 'prefault' || t === 'nullable' || t === 'optional') schema = schema?.def.innerType;
      else if (t === 'union' && schema?.def.discriminator === 'type') {
        const type = (valueAt(input, path.slice(0, d)) as { type?: string } | undefined)?.type;
        const stage = STAGE_SCHEMAS[type as StageType] as z.ZodType | undefined;
        schema = stage && schemaNode(stage);
      } else break;
    }
    if (d === path.length) break;
    const t = schema?.def.type;
    if (t === 'object') schema = schema?.shape?.[path[d]];
    else if (t === 'array') schema = schema?.def.element;
    else return [];
  }
  return schema?.def.type === 'object' ? Object.keys(schema.shape ?? {}) : [];
}

function suggest(word: string, options: string[]): string {
  if (options.length === 0) return '';
  const best = closest(word, options);
  return distance(word, best) <= Math.max(2, Math.floor(best.length / 3)) ? ` (did you mean '${best}'?)` : '';
}

function valueAt(input: unknown, path: FieldPath): unknown {
  let v = input;
  for (const k of path) v = v !== null && typeof v === 'object' ? (v as Record<string | number, unknown>)[k] : undefined;
  return v;
}

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return 'a list';
  if (v !== null && typeof v === 'object') return 'a mapping';
  return String(v);
}

export function formatPath(path: FieldPath): string {
  return path.join('.');
}

function displayPath(abs: string): string {
  const rel = relative(process.cwd(), abs);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : abs;
}

function datasetFileProblem(abs: string): string | null {
  if (!existsSync(abs)) return `dataset file not found: ${abs}`;
  if (isDir(abs)) return null; // a folder of shards
  if (!DATASET_EXTENSIONS.includes(extname(abs).toLowerCase()))
    return `unsupported dataset format '${extname(abs)}' (${DATASET_EXTENSIONS.join(', ')})`;
  return null;
}

function isDir(abs: string): boolean {
  return existsSync(abs) && statSync(abs).isDirectory();
}

const isBareName = (s: string) => !/[\\/]/.test(s) && extname(s) === '';
function stageList(stages: Stage[], i: number): string {
  const names = stages.slice(0, i).map((s) => s.name);
  return names.length ? `earlier stages: ${names.join(', ')}` : 'there are no earlier stages';
}
