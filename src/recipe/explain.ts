// `r1 recipe --explain`: every field with its type, default and one-line doc, read from the schema
// itself so the text never drifts from what is validated.
import { UserError } from '../errors.ts';
import type { z } from 'zod';
import { RecipeSchema, STAGE_SCHEMAS, STAGE_TYPES, type SchemaNode, type StageType, schemaNode } from './schema.ts';

type Field = { path: string; type: string; default: string; doc: string };

/** Text listing the top-level fields (no argument) or the fields of one stage type. */
export function explain(stageType?: string): string {
  if (stageType !== undefined) {
    if (!(STAGE_TYPES as readonly string[]).includes(stageType)) {
      throw new UserError(`unknown stage type '${stageType}'; valid: ${STAGE_TYPES.join(', ')}`);
    }
    const fields = describeFields(STAGE_SCHEMAS[stageType as StageType], '');
    return `stage type '${stageType}' (an entry of stages:)\n${table(fields)}`;
  }
  const fields = describeFields(RecipeSchema, '');
  return `recipe fields\n${table(fields)}\n\nstage types: ${STAGE_TYPES.join(', ')} (r1 recipe --explain <type> lists each one's fields)\ntop-level keys starting with x- are ignored: a place for YAML anchors, e.g. x-train: &train {...} then <<: *train`;
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

function table(fields: Field[]): string {
  const w1 = Math.max(...fields.map((f) => f.path.length));
  const w2 = Math.min(28, Math.max(...fields.map((f) => `${f.type} = ${f.default}`.length)));
  return fields
    .map((f) => {
      const head = f.default ? `${f.type} = ${f.default}` : f.type;
      return `  ${f.path.padEnd(w1)}  ${head.padEnd(w2)}  ${f.doc}`;
    })
    .join('\n');
}
