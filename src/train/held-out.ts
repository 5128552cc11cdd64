// A held-out loss (Hugging Face's eval_loss): the mean next-token loss of a model over token windows
// it does not train on, in forward passes only. The windows are the pretraining stage's own shape
// (T + 1 tokens: inputs are the first T, targets the last T), so the number reads like its loss.
import type { Transformer } from '../model/transformer.ts';
import { nextTokenLoss, windowBatch } from './lm-loss.ts';

/** Mean next-token loss (nats per token) over `windows` of T + 1 tokens, B windows per forward pass. */
export function heldOutLoss(model: Transformer, windows: readonly number[][], B: number, T: number): number {
  if (!windows.length) throw new Error('heldOutLoss: no windows to score');
  let sum = 0;
  for (let i = 0; i < windows.length; i += B) {
    const term = nextTokenLoss(model, windowBatch(windows.slice(i, i + B), T, windows.length * T));
    sum += term.dataSync()[0];
    term.dispose();
  }
  return sum;
}
