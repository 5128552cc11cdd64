// Turning rows into training batches: a fixed, seeded order per epoch, so batch i is the same batch
// whether a run went straight through or was killed and resumed.
import { availableParallelism } from 'node:os';
import { activeBackend, onOneDevice } from '../engine/backend.ts';
import { Rng } from '../engine/rng.ts';
import { LM_LOSS, type LmBatch, lossWeight } from '../train/lm-loss.ts';
import type { Transformer } from '../model/transformer.ts';
import type { MicroBatch, TrainLoopOptions } from '../train/trainer.ts';
import type { StageContext } from './context.ts';

/** Row indices of micro-batch `index` (0-based, counted over the whole run). */
export function batchIndices(index: number, batchSize: number, numRows: number, seed: number): number[] {
  const out: number[] = [];
  for (let k = 0; k < batchSize; k++) {
    const g = index * batchSize + k;
    const epoch = Math.floor(g / numRows);
    out.push(epochOrder(numRows, seed, epoch)[g % numRows]);
  }
  return out;
}

const orders = new Map<string, number[]>();
function epochOrder(n: number, seed: number, epoch: number): number[] {
  const key = `${n}:${seed}:${epoch}`;
  let o = orders.get(key);
  if (!o) {
    if (orders.size > 8) orders.clear();
    o = new Rng(seed * 1000003 + epoch).shuffle(Array.from({ length: n }, (_, i) => i));
    orders.set(key, o);
  }
  return o;
}

/** Steps for `epochs` passes over `numRows` rows, or maxSteps when positive. */
export function totalSteps(maxSteps: number, epochs: number, numRows: number, rowsPerStep: number): number {
  return maxSteps > 0 ? maxSteps : Math.max(1, Math.ceil((epochs * numRows) / rowsPerStep));
}

/** Token ids with per-token loss weights. `documents` (packed sequences, see sft.ts): each token's
 * document id, a contiguous run per document; absent = one document. */
export type WeightedSequence = { ids: number[]; weights: number[]; documents?: number[] };

/** Sequences of token ids with per-token loss weights, right-padded into one batch: inputs,
 * next-token targets and their weights (0 on padding and on tokens outside the loss), divided by
 * `normaliser` (default: this batch's own loss weight). When a sequence is packed (`documents`), the
 * batch carries each input token's position in its document (restarting at 0) and its document id,
 * so the model attends within documents only, and the weight where a document's last token would
 * predict the next document's first token is 0: each document trains as it would alone. */
export function padBatch(seqs: WeightedSequence[], padId: number, normaliser?: number): LmBatch {
  const T = Math.max(...seqs.map((s) => s.ids.length)) - 1;
  const B = seqs.length;
  const inputs = new Int32Array(B * T).fill(padId),
    targets = new Int32Array(B * T).fill(padId),
    weights = new Float32Array(B * T);
  // Padding: a document of its own (id -1), positions 0.
  const packed = seqs.some((s) => s.documents)
    ? { positions: new Int32Array(B * T), documents: new Int32Array(B * T).fill(-1) }
    : undefined;
  seqs.forEach((s, b) => {
    const doc = (t: number) => s.documents?.[t] ?? 0;
    let start = 0; // where the current document began
    for (let t = 0; t < s.ids.length - 1; t++) {
      if (doc(t) !== doc(t - 1)) start = t;
      inputs[b * T + t] = s.ids[t];
      targets[b * T + t] = s.ids[t + 1];
      weights[b * T + t] = doc(t + 1) === doc(t) ? s.weights[t + 1] : 0;
      if (packed) {
        packed.positions[b * T + t] = t - start;
        packed.documents[b * T + t] = doc(t);
      }
    }
  });
  return {
    inputs,
    targets,
    weights,
    B,
    T,
    normaliser: normaliser ?? Math.max(1, lossWeight({ weights, B, T })),
    ...(packed && { packed }),
  };
}

/** The loss weight of a sequence: the weights of the tokens it predicts (all but each document's first). */
const trainedWeight = (s: WeightedSequence) =>
  s.weights.reduce((a, w, t) => (t > 0 && (s.documents?.[t] ?? 0) === (s.documents?.[t - 1] ?? 0) ? a + w : a), 0);

/** One optimiser step of next-token loss over several micro-batches of sequences: every micro-batch
 * is divided by the loss weight of the WHOLE step, so each trained token counts the same whichever
 * micro-batch holds it (a mean per micro-batch would weigh a token of a short micro-batch more). */
export function lmStep(microBatches: WeightedSequence[][], padId: number): MicroBatch[] {
  const normaliser = Math.max(
    1,
    microBatches.flat().reduce((a, s) => a + trainedWeight(s), 0),
  );
  return microBatches.map((seqs) => {
    const lm = padBatch(seqs, padId, normaliser);
    return { kind: 'sharded', tokens: seqs.reduce((a, s) => a + trainedWeight(s), 0), job: { module: LM_LOSS, data: lm, rows: lm.B } };
  });
}

/** Gradient threads for a `train_workers` setting: auto is one per core on the CPU backends, and
 * one on a GPU (every extra thread would open a device of its own and compete for it). */
export function trainThreads(setting: number | 'auto', backend: string = activeBackend()): number {
  if (setting !== 'auto') return setting;
  return onOneDevice(backend) ? 1 : availableParallelism();
}

/** The trainer's options every training stage sets the same way: the stage's name, folder and config,
 * the run's seed and hash, the tokenizer's ids in config.json and its files in every checkpoint, the
 * progress stream; with `threads`, the stage's gradient threads (stages whose micro-batches are
 * sharded jobs) on the active backend. */
export function stageTrainOptions(
  ctx: StageContext,
  config: TrainLoopOptions['config'] & { name: string },
  model: Transformer,
  totalSteps: number,
  threads?: number | 'auto',
): TrainLoopOptions {
  const tok = ctx.tokenizer;
  return {
    stage: config.name,
    stageDir: ctx.stageDir,
    model,
    config,
    totalSteps,
    seed: ctx.recipe.seed,
    hash: ctx.hash,
    special: { bos: tok.bosId, eos: tok.eosId, pad: tok.padId },
    onCheckpoint: (dir) => tok.save(dir),
    progressStream: ctx.progressStream,
    ...(threads !== undefined && { threads: trainThreads(threads), backend: activeBackend() }),
  };
}

/** Token ids of a text that starts a sequence: the tokenizer's document start first (see
 * Tokenizer.documentStart), unless the text already begins with it. */
export function documentIds(tok: { documentStart: readonly number[]; encode(text: string): number[] }, text: string): number[] {
  const ids = tok.encode(text);
  return tok.documentStart.every((id, i) => ids[i] === id) ? ids : [...tok.documentStart, ...ids];
}
