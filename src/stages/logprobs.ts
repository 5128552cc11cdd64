// Log-probabilities of completions given their prompts, from one forward pass over prompt +
// completion (right-padded: causal attention makes the padding invisible to real positions).
import * as tf from '@tensorflow/tfjs-core';
import type { Transformer } from '../model/transformer.ts';
import { tokenLogprobs } from '../train/loss.ts';

/** Token sequences, each a prompt followed by its completion. */
export type PromptCompletions = { inputs: number[][]; promptLengths: number[] };

/** log pi(token) of the completion tokens of the given rows under `model` with logits divided by
 * `temperature`: [rows, width] (default: the longest completion); entries past a completion are junk
 * and must be masked. Differentiable with respect to the model's weights. */
export function completionLogprobs(model: Transformer, batch: PromptCompletions, rows: number[], temperature = 1, width?: number): tf.Tensor2D {
  return tf.tidy(() => {
    const B = rows.length;
    const T = Math.max(...rows.map((i) => batch.inputs[i].length)) - 1;
    const Tc = width ?? Math.max(1, ...rows.map((i) => batch.inputs[i].length - batch.promptLengths[i]));
    const inputs = new Int32Array(B * T), targets = new Int32Array(B * T), pick = new Int32Array(B * Tc);
    rows.forEach((i, b) => {
      const seq = batch.inputs[i];
      for (let t = 0; t < seq.length - 1; t++) {
        inputs[b * T + t] = seq[t];
        targets[b * T + t] = seq[t + 1];
      }
      // Completion token j is predicted at position promptLength - 1 + j.
      for (let j = 0; j < Tc; j++) pick[b * Tc + j] = b * T + Math.min(batch.promptLengths[i] - 1 + j, T - 1);
    });
    let logits = model.logits(model.hidden(tf.tensor2d(inputs, [B, T], 'int32')));
    if (temperature !== 1) logits = tf.div(logits, temperature);
    const all = tokenLogprobs(logits, tf.tensor1d(targets, 'int32')); // [B*T]
    return tf.reshape(tf.gather(all, tf.tensor1d(pick, 'int32')), [B, Tc]) as tf.Tensor2D;
  });
}

/** 1 on each row's completion tokens, 0 past them: [rows, Tc]. */
export function completionMask(batch: PromptCompletions, rows: number[], width: number, weight: (i: number) => number = () => 1): tf.Tensor2D {
  const out = new Float32Array(rows.length * width);
  rows.forEach((i, b) => {
    const n = Math.min(width, batch.inputs[i].length - batch.promptLengths[i]);
    out.fill(weight(i), b * width, b * width + n);
  });
  return tf.tensor2d(out, [rows.length, width]);
}
