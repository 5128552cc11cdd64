// `r1 recipe --explain`: every field with its type, default and one-line doc, read from the schema
// itself so the text never drifts from what is validated. A stage type's own fields come first, in
// groups a reader looks for (sampling, rewards, loss, KL, data, schedule); the model fields every stage
// shares (init_config.*) come last, and only with --all. Lines are wrapped to the terminal.
import { UserError } from '../errors.ts';
import type { z } from 'zod';
import { RecipeSchema, STAGE_SCHEMAS, STAGE_TYPES, type SchemaNode, type StageType, schemaNode } from './schema.ts';

type Field = { path: string; type: string; default: string; doc: string };

export type ExplainOptions = {
  /** Also list the shared model fields (init_config.*) of a stage type. */
  all?: boolean;
  /** Wrap lines to this many columns (default: the terminal's width, else 100). */
  width?: number;
};

/** The groups of a stage type's fields, in the order they are printed. */
const GROUPS = ['stage', 'sampling', 'rewards', 'loss', 'KL', 'data', 'schedule', 'engine', 'other', 'model'] as const;
type Group = (typeof GROUPS)[number];

const GROUP_TITLES: Record<Group, string> = {
  stage: 'the stage',
  sampling: 'sampling (generating completions)',
  rewards: 'rewards',
  loss: 'loss and advantages',
  KL: 'KL to the reference model',
  data: 'data and prompts',
  schedule: 'schedule and optimiser',
  engine: 'threads and rollout engine (speed, not results)',
  other: 'other',
  model: 'model architecture (init_config, shared by every stage type; used only when the stage starts from a fresh model)',
};

/** Each field's group, by its first path segment ("rollout.engine" goes with "rollout"). A field not
 * listed lands in "other", so a new field is never left out. */
const FIELD_GROUPS: Record<string, Group> = {
  name: 'stage',
  type: 'stage',
  model: 'stage',
  label: 'stage',
  num_generations: 'sampling',
  max_completion_length: 'sampling',
  max_new_tokens: 'sampling',
  temperature: 'sampling',
  top_p: 'sampling',
  top_k: 'sampling',
  stop: 'sampling',
  pass_at_k: 'sampling',
  dynamic_sampling: 'sampling',
  rewards: 'rewards',
  reward_error: 'rewards',
  reward_threshold: 'rewards',
  loss_type: 'loss',
  advantage_estimator: 'loss',
  scale_rewards: 'loss',
  epsilon: 'loss',
  epsilon_high: 'loss',
  delta: 'loss',
  importance_sampling_level: 'loss',
  num_iterations: 'loss',
  top_entropy_quantile: 'loss',
  mask_truncated_completions: 'loss',
  drop_equal_reward_groups: 'loss',
  completion_only_loss: 'loss',
  beta: 'KL',
  kl_estimator: 'KL',
  kl_in_reward: 'KL',
  sync_ref_model: 'KL',
  ref_model_sync_steps: 'KL',
  ref_model_mixup_alpha: 'KL',
  datasets: 'data',
  max_samples: 'data',
  eval_datasets: 'data',
  eval_steps: 'data',
  text_field: 'data',
  seq_length: 'data',
  max_length: 'data',
  max_prompt_length: 'data',
  packing: 'data',
  template: 'data',
  prompt_field: 'data',
  mix: 'data',
  filters: 'data',
  dedupe: 'data',
  learning_rate: 'schedule',
  lr_scheduler_type: 'schedule',
  warmup_steps: 'schedule',
  warmup_ratio: 'schedule',
  max_steps: 'schedule',
  num_train_epochs: 'schedule',
  per_device_train_batch_size: 'schedule',
  gradient_accumulation_steps: 'schedule',
  max_grad_norm: 'schedule',
  weight_decay: 'schedule',
  adam_beta1: 'schedule',
  adam_beta2: 'schedule',
  adam_epsilon: 'schedule',
  logging_steps: 'schedule',
  save_steps: 'schedule',
  bias_update_speed: 'schedule',
  rollout: 'engine',
  rollout_workers: 'engine',
  train_workers: 'engine',
  gradient_checkpointing: 'engine',
  init_config: 'model',
};

/** Where a stage type gives a shared name another meaning: DPO's beta is the loss's temperature, not a KL weight. */
const TYPE_GROUPS: Partial<Record<StageType, Record<string, Group>>> = { dpo: { beta: 'loss' } };

export function fieldGroup(type: StageType, path: string): Group {
  const key = path.split('.')[0];
  return TYPE_GROUPS[type]?.[key] ?? FIELD_GROUPS[key] ?? 'other';
}

/** Text listing the top-level fields (no argument) or the fields of one stage type. */
export function explain(stageType?: string, opts: ExplainOptions = {}): string {
  const width = Math.max(40, opts.width ?? terminalWidth());
  if (stageType !== undefined) {
    if (!(STAGE_TYPES as readonly string[]).includes(stageType)) {
      throw new UserError(`unknown stage type '${stageType}'; valid: ${STAGE_TYPES.join(', ')}`);
    }
    const type = stageType as StageType;
    const fields = describeFields(STAGE_SCHEMAS[type], '');
    const out = [`stage type '${type}' (an entry of stages:)`];
    const shown = fields.filter((f) => opts.all || fieldGroup(type, f.path) !== 'model');
    const nameWidth = Math.max(...shown.map((f) => f.path.length));
    for (const group of GROUPS) {
      const members = fields.filter((f) => fieldGroup(type, f.path) === group);
      if (!members.length) continue;
      if (group === 'model' && !opts.all) {
        const n = members.filter((f) => f.path.includes('.')).length;
        out.push(
          '',
          ...wrap(
            `model architecture: init_config and its ${n} fields, shared by every stage type (r1 recipe --explain ${type} --all lists them)`,
            width,
            '',
            '',
          ),
        );
        continue;
      }
      out.push('', ...wrap(GROUP_TITLES[group], width, '', ''), ...table(members, width, nameWidth));
    }
    return out.join('\n');
  }
  const fields = describeFields(RecipeSchema, '');
  return [
    'recipe fields',
    ...table(fields, width),
    '',
    ...wrap(`stage types: ${STAGE_TYPES.join(', ')} (r1 recipe --explain <type> lists each one's fields)`, width, '', ''),
    ...wrap(
      'top-level keys starting with x- are ignored: a place for YAML anchors, e.g. x-train: &train {...} then <<: *train',
      width,
      '',
      '',
    ),
  ].join('\n');
}

/** Columns of the terminal the text goes to; 100 when it is not a terminal (a pipe, a file). */
function terminalWidth(): number {
  const cols = process.stdout.isTTY ? process.stdout.columns : Number(process.env.COLUMNS);
  return Number.isFinite(cols) && cols > 0 ? cols : 100;
}

/** Flatten an object schema into one row per leaf field (nested objects get dotted names). */
export function describeFields(schema: z.ZodType, prefix: string): Field[] {
  return describeNode(schemaNode(schema), prefix);
}

function describeNode(schema: SchemaNode, prefix: string): Field[] {
  const rows: Field[] = [];
  for (const [key, field] of Object.entries(schema.shape ?? {})) {
    const path = prefix + key;
    const { inner, def, doc } = unwrap(field);
    if (key === 'stages') {
      rows.push({ path, type: 'list of stages', default: '(required)', doc: doc || 'the stages, run in order' });
      continue;
    }
    if (inner.def.type === 'object') {
      rows.push({ path, type: def === 'null' ? 'mapping | null' : 'mapping', default: def === 'null' ? 'null' : '', doc });
      rows.push(...describeNode(inner, path + '.'));
      continue;
    }
    rows.push({ path, type: typeName(field), default: def, doc });
  }
  return rows;
}

/** Strip default/optional/nullable wrappers, remembering the default and the doc. */
function unwrap(field: SchemaNode): { inner: SchemaNode; def: string; doc: string } {
  let s = field;
  let def = '(required)';
  let doc = '';
  for (;;) {
    doc ||= s.description ?? '';
    const t = s.def.type;
    if (t === 'default' || t === 'prefault') {
      const v = typeof s.def.defaultValue === 'function' ? s.def.defaultValue() : s.def.defaultValue;
      def = formatDefault(v);
    } else if (t === 'optional' && def === '(required)') def = '(optional)';
    if (t !== 'default' && t !== 'prefault' && t !== 'optional' && t !== 'nullable') break;
    if (!s.def.innerType) break;
    s = s.def.innerType;
  }
  return { inner: s, def, doc };
}

function typeName(field: SchemaNode): string {
  const { type: t, innerType, element } = field.def;
  if ((t === 'default' || t === 'prefault' || t === 'optional') && innerType) return typeName(innerType);
  if (t === 'nullable' && innerType) return `${typeName(innerType)} | null`;
  if (t === 'number') return field.def.checks?.some((c) => c._zod?.def?.format === 'safeint') || field.isInt ? 'int' : 'number';
  if (t === 'enum') return Object.values(field.def.entries ?? {}).join(' | ');
  if (t === 'literal') return (field.def.values ?? []).map((v) => JSON.stringify(v)).join(' | ');
  if (t === 'array' && element) return `list of ${typeName(element)}`;
  if (t === 'union') return (field.def.options ?? []).map(typeName).join(' | ');
  if (t === 'record') return 'mapping';
  if (t === 'object') return 'mapping';
  return t;
}

function formatDefault(v: unknown): string {
  if (v === undefined) return '';
  if (Array.isArray(v) && v.every((x) => x && typeof x === 'object' && 'name' in x)) {
    return `[${v.map((x) => (x as { name: string }).name).join(', ')}]`;
  }
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) return Object.keys(v).length ? JSON.stringify(v) : '';
  if (typeof v === 'number' && v !== 0 && Math.abs(v) < 1e-3) return v.toExponential();
  return JSON.stringify(v);
}

/** Words of `text` in lines of at most `width` columns: the first line starts with `first`, the rest
 * with `rest`; a word longer than a line is cut. */
export function wrap(text: string, width: number, first: string, rest: string): string[] {
  const lines: string[] = [];
  let line = first;
  let fresh = true;
  for (let word of text.split(/\s+/).filter(Boolean)) {
    for (;;) {
      const room = width - line.length - (fresh ? 0 : 1);
      if (word.length <= room) {
        line += (fresh ? '' : ' ') + word;
        fresh = false;
        break;
      }
      if (!fresh) {
        lines.push(line);
        line = rest;
        fresh = true;
        continue;
      }
      // A word wider than a whole line: cut it.
      line += word.slice(0, Math.max(1, room));
      word = word.slice(Math.max(1, room));
      lines.push(line);
      line = rest;
    }
  }
  if (!fresh || !lines.length) lines.push(line);
  return lines;
}

/** One entry per field: "  name  type = default" (the type wrapped if long), then its doc indented below. */
function table(fields: Field[], width: number, nameWidth = Math.max(...fields.map((f) => f.path.length))): string[] {
  const w1 = Math.min(32, nameWidth);
  return fields.flatMap((f) => {
    const head = f.default ? `${f.type} = ${f.default}` : f.type;
    const name = `  ${f.path.padEnd(w1)}  `;
    const indent = ' '.repeat(Math.min(name.length, 24));
    return [...wrap(head, width, f.path.length > w1 ? `  ${f.path}  ` : name, indent), ...wrap(f.doc, width, '      ', '      ')];
  });
}
