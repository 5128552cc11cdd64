// Batched sampling with a KV cache. Prompts are grouped by token length so that no row needs
// padding or an attention mask: the batch stays exact, and the log-probabilities returned here are
// the ones a training forward pass over prompt + completion recomputes.
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../engine/rng.ts';
import { logitsChunkRows } from './head-logprobs.ts';
import type { Transformer } from './transformer.ts';
import type { Turn } from '../../rewards/types.ts';

export type SamplingOptions = {
  /** Tokens to generate at most per sequence. */
  maxNewTokens: number;
  /** Softmax temperature; 0 picks the most likely token (greedy). */
  temperature?: number;
  /** Keep only the k most likely tokens (0 = all); applied after the temperature. */
  topK?: number;
  /** Then keep the smallest set of those tokens whose probability, renormalised over the top-k set,
   * reaches p (1 = all), as Hugging Face's top-k then top-p logits warpers do. */
  topP?: number;
  /** Token ids that end a sequence (kept in its tokens, not in its text). */
  stopTokens?: number[];
  /** Strings that end a sequence; the text keeps the stop string, as a closing tag needs. */
  stopStrings?: string[];
  /** Rows per forward pass at most. */
  maxBatch?: number;
  rng?: Rng;
  /** One random stream per prompt, in place of `rng`: row i draws only from rngs[i], and a finished
   * row draws nothing more, so what a row samples does not depend on which rows share its batch
   * (multi-turn rollouts batch whichever trajectories are ready: rollout/multi-turn.ts). */
  rngs?: Rng[];
};

export type Completion = {
  /** Generated token ids (prompt excluded). */
  tokens: number[];
  /** Generated text, cut after the first stop string. */
  text: string;
  /** log pi(token) of each generated token under the temperature-scaled full-vocabulary softmax,
   * log_softmax(logits / T), before top-k/top-p: what the trainer's forward recomputes, the quantity
   * GRPO's ratio and KL use (as TRL). See sampleToken. */
  logprobs: number[];
  finishReason: 'stop' | 'length';
  /** Multi-turn rollouts only (rollout/multi-turn.ts): the tokens are the model's turns interleaved
   * with the tool outputs appended between them; `modelTokens` has 1 on each token the model sampled
   * and 0 on each a tool wrote (whose `logprobs` entry is 0 and means nothing); `turns` the turns. */
  trajectory?: { modelTokens: number[]; turns: Turn[] };
};

/** Anything that turns token ids into text (the tokenizer). */
export type Decoder = { decode(ids: readonly number[]): string };

/** Samples one completion per prompt (token ids). Rows finish independently. */
export function generate(model: Transformer, decoder: Decoder, prompts: number[][], opts: SamplingOptions): Completion[] {
  const out = new Array<Completion>(prompts.length);
  const byLength = new Map<number, number[]>();
  prompts.forEach((p, i) => {
    if (p.length === 0) throw new Error(`prompt ${i} is empty: generation needs at least one token`);
    const ctx = model.config.max_position_embeddings;
    if (p.length + opts.maxNewTokens > ctx) {
      throw new Error(`prompt ${i} (${p.length} tokens) + maxNewTokens ${opts.maxNewTokens} exceeds the model's context of ${ctx}`);
    }
    byLength.set(p.length, [...(byLength.get(p.length) ?? []), i]);
  });
  if (opts.rngs && opts.rngs.length !== prompts.length)
    throw new Error(`generate: ${opts.rngs.length} random streams (rngs) for ${prompts.length} prompts: give one per prompt`);
  const maxBatch = opts.maxBatch ?? 64;
  for (const rows of byLength.values()) {
    for (let s = 0; s < rows.length; s += maxBatch) {
      const chunk = rows.slice(s, s + maxBatch);
      const rngs = opts.rngs;
      const done = model.withHeadTransposed(() =>
        generateBatch(
          model,
          decoder,
          chunk.map((i) => prompts[i]),
          rngs ? { ...opts, rngs: chunk.map((i) => rngs[i]) } : opts,
        ),
      );
      chunk.forEach((row, j) => (out[row] = done[j]));
    }
  }
  return out;
}

function generateBatch(model: Transformer, decoder: Decoder, prompts: number[][], opts: SamplingOptions): Completion[] {
  const B = prompts.length,
    V = model.config.vocab_size;
  const temperature = opts.temperature ?? 1;
  const rng = opts.rng ?? new Rng(0);
  const rowRngs = opts.rngs;
  const stopTokens = new Set(opts.stopTokens ?? []);
  const stopStrings = opts.stopStrings ?? [];
  const tailTokens = stopStrings.length ? Math.max(...stopStrings.map((s) => s.length)) + 4 : 0;
  const rows = prompts.map((): Completion => ({ tokens: [], text: '', logprobs: [], finishReason: 'length' }));
  const finished = new Array<boolean>(B).fill(false);
  const cache = model.newCache(prompts[0].length + opts.maxNewTokens);
  try {
    let input = tf.tensor2d(prompts.flat(), [B, prompts[0].length], 'int32');
    for (let step = 0; step < opts.maxNewTokens; step++) {
      const last = tf.tidy(() => {
        const h = model.hidden(input, cache);
        const T = input.shape[1];
        return (T === 1 ? h : tf.reshape(tf.slice(tf.reshape(h, [B, T, -1]), [0, T - 1, 0], [B, 1, -1]), [B, -1])) as tf.Tensor2D;
      });
      input.dispose();
      const next = new Array<number>(B);
      // The output layer a slice of rows at a time (head-logprobs.ts's budget), so a large batch
      // times a 151,936-token vocabulary is never one [B, V] buffer, in the heap or in JS.
      const sliceRows = logitsChunkRows(B, V) ?? B;
      for (let start = 0; start < B; start += sliceRows) {
        const n = Math.min(sliceRows, B - start);
        const logits = tf.tidy(() => model.logits(n === B ? last : tf.slice(last, [start, 0], [n, -1])));
        const z = logits.dataSync() as Float32Array;
        logits.dispose();
        for (let b = start; b < start + n; b++) {
          if (finished[b] && rowRngs) {
            next[b] = 0; // fed but never read: the row is done, and its own stream stays untouched
            continue;
          }
          const row = z.subarray((b - start) * V, (b - start + 1) * V);
          const [token, logprob] = sampleToken(row, temperature, opts.topK ?? 0, opts.topP ?? 1, rowRngs ? rowRngs[b] : rng);
          next[b] = token;
          if (finished[b]) continue;
          const r = rows[b];
          r.tokens.push(token);
          r.logprobs.push(logprob);
          if (stopTokens.has(token)) {
            finished[b] = true;
            r.finishReason = 'stop';
          } else if (tailTokens && endsWithStop(decoder.decode(r.tokens.slice(-tailTokens)), stopStrings)) {
            finished[b] = true;
            r.finishReason = 'stop';
          }
        }
      }
      last.dispose();
      if (finished.every(Boolean) || step === opts.maxNewTokens - 1) break;
      input = tf.tensor2d(next, [B, 1], 'int32');
    }
  } finally {
    cache.dispose();
  }
  for (const r of rows) {
    const ids = r.finishReason === 'stop' && stopTokens.has(r.tokens[r.tokens.length - 1]) ? r.tokens.slice(0, -1) : r.tokens;
    r.text = cutAtStop(decoder.decode(ids), stopStrings);
  }
  return rows;
}

function endsWithStop(tail: string, stops: string[]): boolean {
  return stops.some((s) => tail.includes(s));
}

/** Text up to and including the first stop string (every rollout engine cuts its text this way). */
export function cutAtStop(text: string, stops: string[]): string {
  let cut = text.length;
  for (const s of stops) {
    const i = text.indexOf(s);
    if (i >= 0 && i + s.length < cut) cut = i + s.length;
  }
  return text.slice(0, cut);
}

/** The distribution a token is drawn from, in Hugging Face's order of logits processors:
 * temperature, then top-k, then top-p applied to the renormalised top-k set.
 * `ids` are the tokens that can be drawn, most likely first; `probs` their probabilities
 * renormalised over that set (they sum to 1). At temperature 0 (greedy) it is the argmax alone. */
export type SamplingDistribution = { ids: number[]; probs: number[] };

/** The distribution `sampleToken` draws from for these logits (see SamplingDistribution). Pure. */
export function samplingDistribution(logits: Float32Array, temperature: number, topK: number, topP: number): SamplingDistribution {
  const { p, argmax } = scaledProbs(logits, temperature);
  if (temperature <= 0) return { ids: [argmax], probs: [1] };
  const ids = keptTokens(logits, p, topK, topP) ?? Array.from({ length: logits.length }, (_, i) => i).sort((a, b) => p[b] - p[a] || a - b);
  let total = 0;
  for (const i of ids) total += p[i];
  return { ids, probs: ids.map((i) => p[i] / total) };
}

/** Draws a token from logits as `samplingDistribution` describes and returns it with its
 * log-probability under the temperature-scaled full-vocabulary softmax, log_softmax(logits / T),
 * not under the top-k/top-p truncated distribution it was drawn from. That log-prob is GRPO's "old"
 * policy log-prob: the trainer recomputes log_softmax(logits / T) over the whole vocabulary
 * (completionLogprobs), so the importance ratio is exactly 1 on the first update with unchanged
 * weights, as with TRL and vLLM, which also record the untruncated log-probs. Using the truncated
 * distribution would put a constant log(kept mass) offset into every ratio and KL term.
 * At temperature 0 the token is the argmax and its log-prob is log_softmax(logits) (T taken as 1). */
export function sampleToken(logits: Float32Array, temperature: number, topK: number, topP: number, rng: Rng): [number, number] {
  const V = logits.length;
  const { p, sum, max, argmax } = scaledProbs(logits, temperature);
  const t = temperature > 0 ? temperature : 1;
  const logZ = Math.log(sum);
  const logprob = (i: number) => (logits[i] - max) / t - logZ;
  if (temperature <= 0) return [argmax, logprob(argmax)];
  const pool = keptTokens(logits, p, topK, topP);
  if (pool) {
    let total = 0;
    for (const i of pool) total += p[i];
    let u = rng.next() * total;
    for (const i of pool) if ((u -= p[i]) <= 0) return [i, logprob(i)];
    return [pool[pool.length - 1], logprob(pool[pool.length - 1])];
  }
  let u = rng.next() * sum;
  for (let i = 0; i < V; i++) if ((u -= p[i]) <= 0) return [i, logprob(i)];
  return [argmax, logprob(argmax)];
}

/** exp((logits - max) / T) (unnormalised; T taken as 1 at temperature 0), their sum, the max logit and its index. */
function scaledProbs(logits: Float32Array, temperature: number): { p: Float64Array; sum: number; max: number; argmax: number } {
  const V = logits.length;
  let max = -Infinity,
    argmax = 0;
  for (let i = 0; i < V; i++) {
    if (logits[i] > max) {
      max = logits[i];
      argmax = i;
    }
  }
  const t = temperature > 0 ? temperature : 1;
  let sum = 0;
  const p = new Float64Array(V);
  for (let i = 0; i < V; i++) sum += p[i] = Math.exp((logits[i] - max) / t);
  return { p, sum, max, argmax };
}

/** The tokens top-k then top-p keep, most likely first, or null when neither truncates.
 * `p` holds the temperature-scaled unnormalised probabilities of `logits`.
 * Top-k (HF TopKLogitsWarper) keeps every token whose logit is at least the k-th largest, so ties at
 * the threshold survive. Top-p (HF TopPLogitsWarper) then works on that set renormalised: it keeps
 * the most likely tokens up to and including the first whose cumulative probability, within the
 * top-k set, reaches topP (HF drops those whose ascending cumulative probability is <= 1 - top_p),
 * and always at least one. */
function keptTokens(logits: Float32Array, p: Float64Array, topK: number, topP: number): number[] | null {
  const V = logits.length;
  const useK = topK > 0 && topK < V,
    useP = topP < 1;
  if (!useK && !useP) return null;
  let ids: number[];
  if (useK) {
    const kth = Float32Array.from(logits).sort()[V - topK];
    ids = [];
    for (let i = 0; i < V; i++) if (logits[i] >= kth) ids.push(i);
  } else {
    ids = Array.from({ length: V }, (_, i) => i);
  }
  ids.sort((a, b) => p[b] - p[a] || a - b);
  if (useP) {
    let mass = 0;
    for (const i of ids) mass += p[i]; // the top-k set's total: top-p sees it renormalised
    let acc = 0;
    for (let j = 0; j < ids.length; j++) {
      acc += p[ids[j]];
      if (acc >= topP * mass) {
        ids.length = j + 1;
        break;
      }
    }
  }
  return ids;
}
