// The chosen token's log-probability through the output layer, a slice of rows at a time, so the
// [N, V] logits (N = B x T tokens; V = 151,936 for Qwen) are never held at once: the forward pass
// keeps only each row's log-probability, and the backward pass computes each slice's logits again,
// turns them into d logits = dy (onehot(target) - softmax) / temperature, and adds that slice's
// share to d hidden and d head. The gradient is the unchunked one (tests hold them equal).
import * as tf from '@tensorflow/tfjs-core';
import { activeBackend } from '../engine/backend.ts';
import { matmulPath } from '../engine/kernels/index.ts';

/** True where a transposed product is slow (WebAssembly with XNNPACK running products), so the
 * tied output layer is better off transposing the embedding first. */
export function tiedHeadNeedsTranspose(): boolean {
  return activeBackend() === 'wasm' && matmulPath() === 'xnnpack';
}

/** Logit values held at once above which the head is run in slices (64 MiB of float32). */
export const DEFAULT_LOGITS_CHUNK_VALUES = 2 ** 24;
let chunkValues = DEFAULT_LOGITS_CHUNK_VALUES;

/** Sets how many logit values a slice may hold (tests force small slices); returns the old value. */
export function setLogitsChunkValues(values: number): number {
  if (!(values >= 1)) throw new Error(`logits chunk must hold at least one value, got ${values}`);
  const old = chunkValues;
  chunkValues = values;
  return old;
}

/** Rows per slice for a vocabulary of V, or null when N rows fit in one slice (no chunking). */
export function logitsChunkRows(N: number, V: number): number | null {
  if (N * V <= chunkValues) return null;
  return Math.max(1, Math.floor(chunkValues / V));
}

/** Logits of rows `hidden` [n, C] against a head: [C, V], or the tied embedding [V, C] read transposed. */
function headProduct(hidden: tf.Tensor2D, head: tf.Tensor2D, tied: boolean): tf.Tensor2D {
  if (!tied) return tf.matMul(hidden, head);
  return tiedHeadNeedsTranspose() ? tf.matMul(hidden, tf.transpose(head)) : tf.matMul(hidden, head, false, true);
}

/** The output layer's weight: lm_head [C, V], or the embedding [V, C] when tied. */
export function headWeight(params: Record<string, tf.Tensor | undefined>): { head: tf.Tensor2D; tied: boolean } {
  return params.lm_head ? { head: params.lm_head as tf.Tensor2D, tied: false } : { head: params.embed! as tf.Tensor2D, tied: true };
}

/** log softmax(hidden W / temperature)[n, targets[n]] for every row n, [N], in slices of `rows`.
 * `head`: lm_head [C, V], or the embedding [V, C] when `tied`. */
export function chunkedTokenLogprobs(
  hidden: tf.Tensor2D,
  head: tf.Tensor2D,
  tied: boolean,
  targets: tf.Tensor1D,
  rows: number,
  temperature = 1,
): tf.Tensor1D {
  const N = hidden.shape[0];
  const V = tied ? head.shape[0] : head.shape[1];
  const starts = Array.from({ length: Math.ceil(N / rows) }, (_, k) => k * rows);
  const sliceLogits = (h: tf.Tensor2D, w: tf.Tensor2D, start: number): tf.Tensor2D => {
    const z = headProduct(tf.slice(h, [start, 0], [Math.min(rows, N - start), -1]), w, tied);
    return temperature === 1 ? z : tf.div(z, temperature);
  };
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [h, w, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.GradSaveFunc];
    const y = tf.cast(targets, 'int32');
    const value = tf.concat(
      starts.map((start) =>
        tf.tidy(() => {
          const z = sliceLogits(h, w, start),
            n = z.shape[0];
          const flat = tf.add(tf.mul(tf.range(0, n, 1, 'int32'), tf.scalar(V, 'int32')), tf.slice(y, [start], [n]));
          return tf.sub(tf.gather(tf.reshape(z, [n * V]), flat), tf.reshape(tf.logSumExp(z, -1), [n]));
        }),
      ),
    ) as tf.Tensor1D;
    // Saved for the backward pass, which may run after the caller disposed `targets`.
    save([h, w, y]);
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [hs, ws, ys] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D];
        let dHead: tf.Tensor2D | null = null;
        const dHidden: tf.Tensor2D[] = [];
        for (const start of starts) {
          const part = tf.tidy(() => {
            const z = sliceLogits(hs, ws, start),
              n = z.shape[0];
            const p = tf.exp(tf.sub(z, tf.logSumExp(z, -1, true)));
            // int32 then cast: the wasm backend's OneHot writes integer bits into a float32 output.
            const onehot = tf.cast(tf.oneHot(tf.slice(ys, [start], [n]), V), 'float32');
            const dz = tf.mul(tf.sub(onehot, p), tf.reshape(tf.slice(dy, [start], [n]), [n, 1])); // [n, V]
            const dzRaw = (temperature === 1 ? dz : tf.div(dz, temperature)) as tf.Tensor2D;
            const hSlice = tf.slice(hs, [start, 0], [n, -1]);
            // d hidden = dz W^T; d head = h^T dz ([C, V]) or dz^T h for the tied [V, C] embedding.
            const dh = tied ? tf.matMul(dzRaw, ws) : tf.matMul(dzRaw, ws, false, true);
            const dw = tied ? tf.matMul(dzRaw, hSlice, true, false) : tf.matMul(hSlice, dzRaw, true, false);
            return { dh, dw };
          });
          dHidden.push(part.dh as tf.Tensor2D);
          if (dHead === null) dHead = part.dw as tf.Tensor2D;
          else {
            const sum: tf.Tensor2D = tf.add(dHead, part.dw);
            tf.dispose([dHead, part.dw]);
            dHead = sum;
          }
        }
        const dh = tf.concat(dHidden);
        tf.dispose(dHidden);
        return [dh, dHead!];
      },
    };
  });
  return f(hidden, head) as tf.Tensor1D;
}
