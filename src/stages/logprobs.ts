// Log-probabilities of completions given their prompts, from one forward pass over prompt +
// completion (right-padded: causal attention makes the padding invisible to real positions).
import * as tf from '@tensorflow/tfjs-core';
import { chunkedTokenLogprobs, headWeight, logitsChunkRows } from '../model/head-logprobs.ts';
import type { Transformer } from '../model/transformer.ts';
import { type ModelTokenMask, lossMaskValues, tokenEntropy, tokenLogprobs } from '../rl/index.ts';

/** Token sequences, each a prompt followed by its completion. */
export type PromptCompletions = { inputs: number[][]; promptLengths: number[] };

/** log pi(token) of the completion tokens of the given rows under `model` with logits divided by
 * `temperature` (as the sampler draws them): [rows, width] (default width: the longest completion);
 * entries past a completion are junk and must be masked. Differentiable with respect to the
 * model's weights. With `entropy`, also the entropy of each of those positions' distributions. */
export function completionLogprobs(
  model: Transformer,
  batch: PromptCompletions,
  rows: number[],
  temperature = 1,
  width?: number,
): tf.Tensor2D {
  return completionForward(model, batch, rows, temperature, width, false).logprobs;
}

export function completionLogprobsAndEntropy(
  model: Transformer,
  batch: PromptCompletions,
  rows: number[],
  temperature: number,
  width: number,
): { logprobs: tf.Tensor2D; entropies: tf.Tensor2D } {
  const out = completionForward(model, batch, rows, temperature, width, true);
  return { logprobs: out.logprobs, entropies: out.entropies! };
}

function completionForward(
  model: Transformer,
  batch: PromptCompletions,
  rows: number[],
  temperature: number,
  width: number | undefined,
  entropy: boolean,
) {
  return tf.tidy(() => {
    const B = rows.length;
    const T = Math.max(...rows.map((i) => batch.inputs[i].length)) - 1;
    const Tc = width ?? Math.max(1, ...rows.map((i) => batch.inputs[i].length - batch.promptLengths[i]));
    const inputs = new Int32Array(B * T),
      targets = new Int32Array(B * T),
      pick = new Int32Array(B * Tc);
    rows.forEach((i, b) => {
      const seq = batch.inputs[i];
      for (let t = 0; t < seq.length - 1; t++) {
        inputs[b * T + t] = seq[t];
        targets[b * T + t] = seq[t + 1];
      }
      // Completion token j is predicted at position promptLength - 1 + j.
      for (let j = 0; j < Tc; j++) pick[b * Tc + j] = b * T + Math.min(batch.promptLengths[i] - 1 + j, T - 1);
    });
    const hidden = model.hidden(tf.tensor2d(inputs, [B, T], 'int32')); // [B*T, C]
    const at = tf.tensor1d(pick, 'int32');
    const sliceRows = logitsChunkRows(B * Tc, model.config.vocab_size);
    if (sliceRows !== null) {
      // Large logits: only the completion positions' rows, through the head a slice at a time.
      const { head, tied } = headWeight(model.params);
      const picked = tf.gather(hidden, at) as tf.Tensor2D,
        wanted = tf.gather(tf.tensor1d(targets, 'int32'), at) as tf.Tensor1D;
      const logprobs = tf.reshape(chunkedTokenLogprobs(picked, head, tied, wanted, sliceRows, temperature), [B, Tc]) as tf.Tensor2D;
      const entropies = entropy ? (tf.reshape(chunkedEntropy(model, picked, sliceRows, temperature), [B, Tc]) as tf.Tensor2D) : null;
      return entropies ? { logprobs, entropies } : { logprobs };
    }
    let logits = model.logits(hidden); // [B*T, V]
    if (temperature !== 1) logits = tf.div(logits, temperature);
    const all = tokenLogprobs(logits, tf.tensor1d(targets, 'int32')); // [B*T]
    const logprobs = tf.reshape(tf.gather(all, at), [B, Tc]) as tf.Tensor2D;
    // Entropy only where it is read: the completion positions.
    const entropies = entropy ? (tf.reshape(tokenEntropy(tf.gather(logits, at) as tf.Tensor2D), [B, Tc]) as tf.Tensor2D) : null;
    return entropies ? { logprobs, entropies } : { logprobs };
  }) as { logprobs: tf.Tensor2D; entropies?: tf.Tensor2D };
}

/** Entropy of each row's next-token distribution, a slice of rows at a time (no gradient: metrics and
 * the entropy mask only). */
function chunkedEntropy(model: Transformer, hidden: tf.Tensor2D, rows: number, temperature: number): tf.Tensor1D {
  const N = hidden.shape[0];
  // A custom gradient of zeros: no gradient flows through entropy, and the slices' logits, made
  // inside it, are not kept for a backward pass.
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const h = args[0] as tf.Tensor2D;
    const parts: tf.Tensor[] = [];
    for (let start = 0; start < N; start += rows) {
      parts.push(
        tf.tidy(() => {
          const z = model.logits(tf.slice(h, [start, 0], [Math.min(rows, N - start), -1]));
          return tokenEntropy(temperature === 1 ? z : (tf.div(z, temperature) as tf.Tensor2D));
        }),
      );
    }
    return { value: tf.concat(parts), gradFunc: () => tf.zerosLike(h) };
  });
  return f(hidden) as tf.Tensor1D;
}

/** 1 on each row's completion tokens (times `weight(row)`), 0 past them and, for a multi-turn
 * rollout, on the tokens a tool wrote (`modelTokens(row)`, rl/tool-mask.ts): [rows, width]. */
export function completionMask(
  batch: PromptCompletions,
  rows: number[],
  width: number,
  weight: (i: number) => number = () => 1,
  modelTokens: (i: number) => ModelTokenMask = () => null,
): tf.Tensor2D {
  const lengths = rows.map((i) => batch.inputs[i].length - batch.promptLengths[i]);
  return tf.tensor2d(
    lossMaskValues(
      lengths,
      width,
      (b) => weight(rows[b]),
      (b) => modelTokens(rows[b]),
    ),
    [rows.length, width],
  );
}
