// What a stage gets from the pipeline: its config, its folder, the tokenizer, and functions that
// resolve its inputs (weights and rows) from the recipe.
import { join } from 'node:path';
import { UserError } from '../errors.ts';
import { readRows } from '../data/io.ts';
import type { Tokenizer } from '../model/tokenizer.ts';
import { checkpointExists, loadModel, prepareStageAdapters } from '../model/checkpoint.ts';
import { Transformer } from '../model/transformer.ts';
import { type DatasetField, type Recipe, type Stage, datasetSources, modelSource } from '../recipe/index.ts';

export type Row = Record<string, unknown>;

export type StageContext = {
  recipe: Recipe;
  index: number;
  runDir: string;
  stageDir: string;
  hash: string;
  tokenizer: Tokenizer;
  /** The weights this stage starts from (a fresh init, an earlier stage's checkpoint, or a path). */
  loadModel: () => Transformer;
  /** Rows of the stage's `datasets` (or of rejection sampling's `mix.datasets`), max_samples applied. */
  readDatasets: (field?: DatasetField) => Promise<Row[]>;
  progressStream?: NodeJS.WritableStream & { isTTY?: boolean };
};

export type StageResult = {
  /** Folder of the checkpoint the stage wrote, if any. */
  checkpoint?: string;
  /** File of the dataset the stage wrote, if any. */
  dataset?: string;
  /** Headline numbers (final loss, accuracy, acceptance rate, ...), kept in the manifest. */
  summary: Record<string, unknown>;
};

export const stageCheckpoint = (runDir: string, stage: string) => join(runDir, stage, 'checkpoint');
export const stageDataset = (runDir: string, stage: string) => join(runDir, stage, 'dataset.jsonl');

export function makeContext(recipe: Recipe, index: number, runDir: string, hash: string, tokenizer: Tokenizer): StageContext {
  const stage: Stage = recipe.stages[index];
  const stageDir = join(runDir, stage.name);
  return {
    recipe,
    index,
    runDir,
    stageDir,
    hash,
    tokenizer,
    loadModel: () => {
      const src = modelSource(recipe, index);
      if (src.kind === 'init') {
        const vocab = stage.init_config?.vocab_size || recipe.model.vocab_size || tokenizer.vocabSize;
        if (vocab < tokenizer.vocabSize) {
          throw new UserError(`model.vocab_size (${vocab}) is smaller than the tokenizer's vocabulary (${tokenizer.vocabSize})`);
        }
        return Transformer.init({ ...recipe.model, ...(stage.init_config ?? {}), vocab_size: vocab }, recipe.seed);
      }
      const dir = src.kind === 'stage' ? stageCheckpoint(runDir, src.stage) : src.path;
      if (!checkpointExists(dir)) {
        throw new UserError(
          `stage '${stage.name}': no checkpoint at ${dir}` + (src.kind === 'stage' ? ` (run stage '${src.stage}' first)` : ''),
        );
      }
      const lora = stage.type === 'sft' || stage.type === 'dpo' || stage.type === 'grpo' ? stage.lora : undefined;
      const model = loadModel(dir, { frozenBf16: lora?.frozen_dtype === 'bfloat16' });
      if (stage.type === 'sft' || stage.type === 'dpo' || stage.type === 'grpo') {
        prepareStageAdapters(model, stage.lora, dir, `stages.${stage.name}.lora`, recipe.seed);
      }
      return model;
    },
    readDatasets: async (field = 'datasets') => {
      const rows: Row[] = [];
      for (const src of datasetSources(recipe, index, field)) {
        const file = src.kind === 'file' ? src.path : stageDataset(runDir, src.stage);
        rows.push(...(await readRows(file)));
      }
      const max = stage.max_samples;
      return max && field === 'datasets' ? rows.slice(0, max) : rows;
    },
  };
}
