// Runs a recipe's stages in order inside its run folder. The manifest records each stage's hash and
// status, so a rerun skips finished stages, resumes an interrupted one from its last checkpoint, and
// reruns a stage whose config (or an earlier stage's) changed, with every stage after it.
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { initBackend } from '../engine/backend.ts';
import { writeFileAtomic } from '../files.ts';
import { UserError } from '../errors.ts';
import { readRows } from '../data/io.ts';
import { CJK_PRETOKENIZE_PATTERN, PRETOKENIZE_PATTERN, Tokenizer } from '../model/tokenizer.ts';
import { type Recipe, type Stage, modelSource, recipeHash, runDir as recipeRunDir, stageHash, canonicalJson } from '../recipe/index.ts';
import { liveReports } from '../report/live.ts';
import { stageDoneLine } from '../report/pages.ts';
import { makeContext, type StageContext, type StageResult } from '../stages/context.ts';
import { dataDigest, tokenizerDigests } from './fingerprint.ts';

const require = createRequire(import.meta.url);

type StageRecord = {
  hash: string;
  status: 'running' | 'done';
  started_at: string;
  finished_at?: string;
  summary?: Record<string, unknown>;
};
export type Manifest = {
  recipe: string;
  recipe_hash: string;
  recipe_file: string;
  seed: number;
  backend: string;
  versions: Record<string, string>;
  stages: Record<string, StageRecord>;
};

export type RunOptions = {
  /** Delete the run folder first. */
  fresh?: boolean;
  /** Run only this stage (its inputs must exist). */
  only?: string;
  /** Rerun from this stage on, even if finished. */
  from?: string;
  /** Where progress is drawn (default stderr). */
  progressStream?: NodeJS.WritableStream & { isTTY?: boolean };
  log?: (line: string) => void;
};

/** The function that runs a stage of type T, given that stage's own config type. */
type StageFn<T extends Stage['type']> = (ctx: StageContext, stage: Extract<Stage, { type: T }>) => Promise<StageResult>;
const STAGES: { [T in Stage['type']]: () => Promise<StageFn<T>> } = {
  pretrain: async () => (await import('../stages/pretrain.ts')).runPretrain,
  sft: async () => (await import('../stages/sft.ts')).runSft,
  eval: async () => (await import('../stages/eval.ts')).runEval,
  dpo: async () => (await import('../stages/dpo.ts')).runDpo,
  grpo: async () => (await import('../stages/grpo.ts')).runGrpo,
  'rejection-sampling': async () => (await import('../stages/rejection-sampling.ts')).runRejectionSampling,
};

/** Runs one stage with the function of its type (the lookup keeps the pairing typed). */
async function runStage<T extends Stage['type']>(ctx: StageContext, stage: Extract<Stage, { type: T }>): Promise<StageResult> {
  const run = await (STAGES[stage.type as T] as () => Promise<StageFn<T>>)();
  return run(ctx, stage);
}

export function readManifest(runDir: string): Manifest | null {
  const file = join(runDir, 'manifest.json');
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Manifest) : null;
}

/** A stage's hash: its config's (recipe/hash.ts) combined with the digest of the data it depends on. */
const withData = (configHash: string, data: string) => createHash('sha256').update(`${configHash}:${data}`).digest('hex').slice(0, 16);

/** The stage records in the recipe's order (stages no longer in it last): a stage added to a finished
 * run is listed where it runs, not at the end, and reports that read the manifest follow the pipeline. */
function inRecipeOrder(stages: Manifest['stages'], names: string[]): Manifest['stages'] {
  const rank = (k: string) => (names.includes(k) ? names.indexOf(k) : names.length);
  return Object.fromEntries(
    Object.keys(stages)
      .sort((a, b) => rank(a) - rank(b))
      .map((k) => [k, stages[k]]),
  );
}

function writeManifest(runDir: string, m: Manifest): void {
  writeFileAtomic(join(runDir, 'manifest.json'), [JSON.stringify(m, null, 2) + '\n']);
}

function versions(): Record<string, string> {
  const v = (pkg: string) => {
    try {
      return (require(`${pkg}/package.json`) as { version: string }).version;
    } catch {
      return 'none';
    }
  };
  const own = (require('../../package.json') as { version: string }).version;
  return { r1kit: own, node: process.version, '@tensorflow/tfjs-core': v('@tensorflow/tfjs-core') };
}

/** With code rewards and `sandbox.isolation: strict`, the os layer must be there before any stage
 * runs (a UserError: exit 2); with `standard`, says once which layers the programs will get. */
async function checkSandbox(recipe: Recipe, log: (line: string) => void): Promise<void> {
  const isolations = recipe.stages
    .flatMap((s) => ('rewards' in s ? s.rewards : []))
    .filter((r) => r.name === 'code')
    .map((r) => String(r.options?.isolation ?? recipe.sandbox.isolation));
  if (!isolations.length) return;
  const { announceOnce, layersFor, describeLayers } = await import('../../sandbox/launch.ts');
  const strictest = isolations.includes('strict') ? 'strict' : isolations.includes('standard') ? 'standard' : 'process';
  const layers = layersFor(strictest);
  announceOnce(`sandbox (${strictest}): ${describeLayers(layers).join('; ')}`, log);
}

export async function runRecipe(recipe: Recipe, opts: RunOptions = {}): Promise<{ runDir: string; manifest: Manifest }> {
  const log = opts.log ?? ((line: string) => process.stderr.write(line + '\n'));
  const names = recipe.stages.map((s) => s.name);
  for (const [flag, name] of [
    ['--only', opts.only],
    ['--from', opts.from],
  ] as const) {
    if (name && !names.includes(name)) throw new UserError(`${flag} ${name}: no such stage; stages are ${names.join(', ')}`);
  }
  await checkSandbox(recipe, log);
  const dir = recipeRunDir(recipe);
  if (opts.fresh) rmSync(dir, { recursive: true, force: true });
  const backend = await initBackend(recipe.backend, { allowSoftwareGpu: recipe.allow_software_gpu });
  mkdirSync(dir, { recursive: true });
  if (recipe.file) copyFileSync(recipe.file, join(dir, 'recipe.yaml'));
  const old = readManifest(dir);
  const manifest: Manifest = {
    recipe: recipe.name,
    recipe_hash: recipeHash(recipe),
    recipe_file: recipe.file,
    seed: recipe.seed,
    backend,
    versions: versions(),
    stages: inRecipeOrder(old?.stages ?? {}, names),
  };
  writeManifest(dir, manifest);
  const tokenizer = await prepareTokenizer(recipe, dir, log);
  const fromIndex = opts.from ? names.indexOf(opts.from) : -1;
  for (let i = 0; i < recipe.stages.length; i++) {
    const stage = recipe.stages[i];
    if (opts.only && stage.name !== opts.only) continue;
    const hash = withData(stageHash(recipe, i), dataDigest(recipe, i));
    const rec = manifest.stages[stage.name];
    const forced = opts.only === stage.name || (fromIndex >= 0 && i >= fromIndex);
    if (rec?.status === 'done' && rec.hash === hash && !forced) {
      log(`[${stage.name}] done earlier, skipped`);
      continue;
    }
    const stageDir = join(dir, stage.name);
    // A changed config, or a forced rerun, starts the stage afresh; same hash + 'running' resumes.
    if (rec && (rec.hash !== hash || rec.status === 'done')) rmSync(stageDir, { recursive: true, force: true });
    manifest.stages[stage.name] = { hash, status: 'running', started_at: new Date().toISOString() };
    manifest.stages = inRecipeOrder(manifest.stages, names);
    writeManifest(dir, manifest);
    log(`[${stage.name}] ${stage.type}${rec?.status === 'running' && rec.hash === hash ? ' (resuming)' : ''}`);
    const ctx = makeContext(recipe, i, dir, hash, tokenizer);
    ctx.progressStream = opts.progressStream;
    // The stage's pages and the run's index.html, rewritten every few steps and once the stage is done.
    const pages = liveReports(dir, stageDir, log);
    const result = await runStage(ctx, stage).finally(() => pages.stop());
    manifest.stages[stage.name] = {
      hash,
      status: 'done',
      started_at: manifest.stages[stage.name].started_at,
      finished_at: new Date().toISOString(),
      summary: result.summary,
    };
    writeManifest(dir, manifest);
    pages.refresh();
    // A short line for people; the summary itself is in manifest.json.
    log(`[${stage.name}] ${stageDoneLine(dir, stage.name)}`);
  }
  return { runDir: dir, manifest };
}

/** The recipe's tokenizer: a given file, or one trained on the recipe's corpus (cached in the run
 * folder under the hash of its config), or the one saved with the starting checkpoint. */
async function prepareTokenizer(recipe: Recipe, runDir: string, log: (l: string) => void): Promise<Tokenizer> {
  const t = recipe.tokenizer;
  // Recipe paths are relative to the recipe's folder or absolute: resolve, never join, onto the folder.
  if (t.path) return Tokenizer.load(resolve(recipe.recipeDir, t.path));
  const dir = join(runDir, 'tokenizer');
  if (t.train) {
    const key = canonicalJson({ ...t.train, digests: tokenizerDigests(recipe) });
    const keyFile = join(dir, 'train-config.json');
    if (existsSync(keyFile) && readFileSync(keyFile, 'utf8') === key) return Tokenizer.load(dir);
    const texts: string[] = [];
    for (const d of t.train.datasets) {
      for (const row of await readRows(resolve(recipe.recipeDir, d))) {
        const text = row[t.train.text_field];
        if (typeof text === 'string') texts.push(text);
      }
    }
    log(`[tokenizer] training byte-level BPE (vocab ${t.train.vocab_size}) on ${texts.length} rows`);
    const tok = Tokenizer.train(texts, {
      vocabSize: t.train.vocab_size,
      pattern: t.train.split_cjk ? CJK_PRETOKENIZE_PATTERN : PRETOKENIZE_PATTERN,
    });
    mkdirSync(dir, { recursive: true });
    tok.save(dir);
    writeFileAtomic(keyFile, [key]);
    return tok;
  }
  // No tokenizer given: take the one saved next to the first stage's starting checkpoint.
  const first = modelSource(recipe, 0);
  if (first.kind === 'checkpoint' && existsSync(join(first.path, 'tokenizer.json'))) return Tokenizer.load(first.path);
  throw new UserError(`recipe ${recipe.file}: no tokenizer: set tokenizer.path or tokenizer.train`);
}
