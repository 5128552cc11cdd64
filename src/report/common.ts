// What every report page needs: reading a run folder (manifest, recipe, stage folders, metrics,
// samples, results) and formatting for HTML. Imports only the metrics logger, so the pages here can be
// used by plot.ts, results.ts, the pipeline and the CLI without import cycles.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { writeFileAtomic } from '../files.ts';
import { parseJsonLines, readMetrics, type LoggedRow } from '../metrics/logger.ts';

/** Files a stage may write with its headline results (the eval stage writes eval.json). */
export const RESULT_FILES = ['results.json', 'eval.json'];
/** Files whose change means a page of their folder is out of date (the live server watches them). */
export const WATCHED_FILES = ['metrics.jsonl', 'samples.jsonl', 'manifest.json', ...RESULT_FILES];

export type StageType = 'pretrain' | 'sft' | 'grpo' | 'dpo' | 'eval' | 'rejection-sampling' | 'other';

export type StageRecord = { status?: string; started_at?: string; finished_at?: string; summary?: Record<string, unknown>; hash?: string };

/** A JSON object file, or null when it is missing, unreadable or not an object. */
export function readJson(file: string): Record<string, unknown> | null {
  if (!existsSync(file)) return null;
  try {
    const v = JSON.parse(readFileSync(file, 'utf8')) as unknown;
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** Rows of samples.jsonl (empty when absent). A run may be writing it: a torn last line is skipped. */
export function readSamples(stageDir: string): Record<string, unknown>[] {
  const file = join(stageDir, 'samples.jsonl');
  return existsSync(file) ? parseJsonLines<Record<string, unknown>>(readFileSync(file, 'utf8'), file) : [];
}

/** The stage's results (results.json or eval.json), or null. */
export function readResults(stageDir: string): Record<string, unknown> | null {
  return RESULT_FILES.map((f) => readJson(join(stageDir, f))).find((r) => r !== null) ?? null;
}

export function readStageRows(stageDir: string): LoggedRow[] {
  return readMetrics(join(stageDir, 'metrics.jsonl'));
}

/** The pipeline's records by stage name (manifest.json), in run order. */
export function manifestRecords(runDir: string): Record<string, StageRecord> {
  const stages = readJson(join(runDir, 'manifest.json'))?.stages;
  return stages && typeof stages === 'object' && !Array.isArray(stages) ? (stages as Record<string, StageRecord>) : {};
}

/** Stage names and types of the recipe copied into the run folder (the pipeline writes recipe.yaml), in
 * pipeline order; empty when there is none. Read as plain YAML: the report must not need the recipe's
 * files (datasets, reward modules) to exist any more. */
export function recipeStages(runDir: string): { name: string; type: string }[] {
  const file = join(runDir, 'recipe.yaml');
  if (!existsSync(file)) return [];
  try {
    const doc = parseYaml(readFileSync(file, 'utf8'), { merge: true }) as { stages?: unknown };
    if (!Array.isArray(doc?.stages)) return [];
    return doc.stages.flatMap((s) =>
      s && typeof s === 'object' && typeof s.name === 'string' ? [{ name: s.name as string, type: String(s.type ?? '') }] : [],
    );
  } catch {
    return [];
  }
}

/** Stage folders of a run: those holding metrics.jsonl, samples.jsonl or results, in pipeline order
 * when the manifest or recipe lists the stages, else by name. */
export function stageDirs(runDir: string): string[] {
  if (!existsSync(runDir)) return [];
  const dirs = readdirSync(runDir).filter((d) => {
    const p = join(runDir, d);
    return statSync(p).isDirectory() && ['metrics.jsonl', 'samples.jsonl', ...RESULT_FILES].some((f) => existsSync(join(p, f)));
  });
  const order = pipelineOrder(runDir);
  const rank = (d: string) => (order.includes(d) ? order.indexOf(d) : order.length);
  return dirs.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

/** Stage names in pipeline order: the recipe's when there is one, else the manifest's (run.json's). */
export function pipelineOrder(runDir: string): string[] {
  const fromRecipe = recipeStages(runDir).map((s) => s.name);
  if (fromRecipe.length) return fromRecipe;
  for (const f of ['manifest.json', 'run.json']) {
    const stages = readJson(join(runDir, f))?.stages;
    if (Array.isArray(stages)) return stages.map((s) => (typeof s === 'string' ? s : String((s as { name?: unknown })?.name ?? '')));
    if (stages && typeof stages === 'object') return Object.keys(stages);
  }
  return [];
}

/** The stage's type: the recipe's word for it, else a guess from what it logged. */
export function stageType(runDir: string, stage: string, rows: LoggedRow[] = readStageRows(join(runDir, stage))): StageType {
  const declared = recipeStages(runDir).find((s) => s.name === stage)?.type;
  const known: StageType[] = ['pretrain', 'sft', 'grpo', 'dpo', 'eval', 'rejection-sampling'];
  if (declared && (known as string[]).includes(declared)) return declared as StageType;
  // No recipe to ask: a stage named after a type (the usual "pretrain", "grpo", "eval") is that type.
  if ((known as string[]).includes(stage)) return stage as StageType;
  const has = (k: string) => rows.some((r) => typeof r[k] === 'number');
  if (existsSync(join(runDir, stage, 'eval.json')) || has('pass@1')) return 'eval';
  if (has('reward') || rows.some((r) => Object.keys(r).some((k) => k.startsWith('rewards/') && k.endsWith('/mean')))) return 'grpo';
  if (has('rewards/margins')) return 'dpo';
  if (has('acceptance_rate')) return 'rejection-sampling';
  if (has('loss')) return 'pretrain';
  return 'other';
}

/** The (step, value) points of one metric; missing or non-finite values leave gaps. */
export function series(rows: LoggedRow[], name: string): [number, number][] {
  return rows.flatMap((r): [number, number][] => {
    const v = r[name];
    return typeof v === 'number' && Number.isFinite(v) ? [[r.step, v]] : [];
  });
}

/** Numbers as people read them: 4 significant digits, exponent form for the very small or large. */
export function fmtNum(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v) && Math.abs(v) < 1e6) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e6) ? Number(v.toPrecision(3)).toExponential() : String(Number(v.toPrecision(4)));
}

/** A duration in seconds as 4.2s, 12s, 3m05s, 1h02m. Rounded once, to the unit shown, before it is split
 * into minutes and seconds: 119.7 s is 2m00s, never 1m60s. */
export function fmtDuration(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '–';
  if (s < 9.95) return `${s.toFixed(1)}s`;
  const whole = Math.round(s);
  if (whole < 60) return `${whole}s`;
  if (whole < 3600) return `${Math.floor(whole / 60)}m${String(whole % 60).padStart(2, '0')}s`;
  const minutes = Math.round(s / 60);
  return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, '0')}m`;
}

export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Write a page through a temporary file and a rename (files.ts), so a reader (or the live server) never sees half a file. */
export function writeAtomic(file: string, text: string): void {
  writeFileAtomic(file, [text]);
}
