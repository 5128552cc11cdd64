// Batched sampling with a KV cache. Prompts are grouped by token length so that no row needs
// padding or an attention mask: the batch stays exact, and the log-probabilities returned here are
// the ones a training forward pass over prompt + completion recomputes.
import * as tf from '@tensorflow/tfjs-core';
import { KVCache } from '../engine/kernels/attention.ts';
import { Rng } from '../engine/rng.ts';
import type { Transformer } from './transformer.ts';

export type SamplingOptions = {
  /** Tokens to generate at most per sequence. */
  maxNewTokens: number;
  /** Softmax temperature; 0 picks the most likely token (greedy). */
  temperature?: number;
  /** Keep only the k most likely tokens (0 = all). */
  topK?: number;
  /** Keep the smallest set of tokens whose probability reaches p (1 = all). */
  topP?: number;
  /** Token ids that end a sequence (kept in its tokens, not in its text). */
  stopTokens?: number[];
  /** Strings that end a sequence; the text keeps the stop string, as a closing tag needs. */
  stopStrings?: string[];
  /** Rows per forward pass at most. */
  maxBatch?: number;
  rng?: Rng;
};

export type Completion = {
  /** Generated token ids (prompt excluded). */
  tokens: number[];
  /** Generated text, cut after the first stop string. */
  text: string;
  /** log pi(token) of each generated token under the temperature-scaled model (before top-k/top-p),
   * the quantity GRPO's ratio and KL use (as TRL). */
  logprobs: number[];
  finishReason: 'stop' | 'length';
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
  const maxBatch = opts.maxBatch ?? 64;
  for (const rows of byLength.values()) {
    for (let s = 0; s < rows.length; s += maxBatch) {
      const chunk = rows.slice(s, s + maxBatch);
      const done = generateBatch(model, decoder, chunk.map((i) => prompts[i]), opts);
      chunk.forEach((row, j) => (out[row] = done[j]));
    }
  }
  return out;
}

function generateBatch(model: Transformer, decoder: Decoder, prompts: number[][], opts: SamplingOptions): Completion[] {
  const B = prompts.length, V = model.config.vocab_size;
  const temperature = opts.temperature ?? 1;
  const rng = opts.rng ?? new Rng(0);
  const stopTokens = new Set(opts.stopTokens ?? []);
  const stopStrings = opts.stopStrings ?? [];
  const tailTokens = stopStrings.length ? Math.max(...stopStrings.map((s) => s.length)) + 4 : 0;
  const rows = prompts.map((): Completion => ({ tokens: [], text: '', logprobs: [], finishReason: 'length' }));
  const finished = new Array<boolean>(B).fill(false);
  const cache = new KVCache(model.config.num_hidden_layers, prompts[0].length + opts.maxNewTokens);
  try {
    let input = tf.tensor2d(prompts.flat(), [B, prompts[0].length], 'int32');
    for (let step = 0; step < opts.maxNewTokens; step++) {
      const logits = tf.tidy(() => {
        const h = model.hidden(input, cache);
        const T = input.shape[1];
        const last = T === 1 ? h : tf.reshape(tf.slice(tf.reshape(h, [B, T, -1]), [0, T - 1, 0], [B, 1, -1]), [B, -1]);
        return model.logits(last as tf.Tensor2D);
      });
      input.dispose();
      const z = logits.dataSync() as Float32Array;
      logits.dispose();
      const next = new Array<number>(B);
      for (let b = 0; b < B; b++) {
        const row = z.subarray(b * V, (b + 1) * V);
        const [token, logprob] = sampleToken(row, temperature, opts.topK ?? 0, opts.topP ?? 1, rng);
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

/** Text up to and including the first stop string. */
function cutAtStop(text: string, stops: string[]): string {
  let cut = text.length;
  for (const s of stops) {
    const i = text.indexOf(s);
    if (i >= 0 && i + s.length < cut) cut = i + s.length;
  }
  return text.slice(0, cut);
}

/** Draws a token from logits; returns it with its log-probability under softmax(logits / temperature). */
export function sampleToken(logits: Float32Array, temperature: number, topK: number, topP: number, rng: Rng): [number, number] {
  const V = logits.length;
  let max = -Infinity, argmax = 0;
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
  const logZ = Math.log(sum);
  const logprob = (i: number) => (logits[i] - max) / t - logZ;
  if (temperature <= 0) return [argmax, logprob(argmax)];
  let candidates: number[] | null = null;
  if ((topK > 0 && topK < V) || topP < 1) {
    const order = Array.from({ length: V }, (_, i) => i).sort((a, b) => p[b] - p[a]);
    let keep = topK > 0 ? Math.min(topK, V) : V;
    if (topP < 1) {
      let acc = 0;
      for (let j = 0; j < keep; j++) {
        acc += p[order[j]] / sum;
        if (acc >= topP) {
          keep = j + 1;
          break;
        }
      }
    }
    candidates = order.slice(0, keep);
  }
  const pool = candidates ?? null;
  let total = 0;
  if (pool) for (const i of pool) total += p[i];
  else total = sum;
  let u = rng.next() * total;
  if (pool) {
    for (const i of pool) if ((u -= p[i]) <= 0) return [i, logprob(i)];
    return [pool[pool.length - 1], logprob(pool[pool.length - 1])];
  }
  for (let i = 0; i < V; i++) if ((u -= p[i]) <= 0) return [i, logprob(i)];
  return [argmax, logprob(argmax)];
}
