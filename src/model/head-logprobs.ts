// The chosen token's log-probability through the output layer, a slice of rows at a time, so the
// [N, V] logits (N = B x T tokens; V = 151,936 for Qwen) are never held at once: the forward pass
// keeps only each row's log-probability, and the backward pass computes each slice's logits again,
// turns them into d logits = dy (onehot(target) - softmax) / temperature, and adds that slice's
// share to d hidden and d head. The gradient is the unchunked one (tests hold them equal).
import * as tf from '@tensorflow/tfjs-core';
import { bindingLimit } from '../engine/backend.ts';
import { headBlock, headProduct, type RowBlock, vocabBlocks } from './vocab-split.ts';

export { tiedHeadNeedsTranspose } from './vocab-split.ts';

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
  // Never more than one kernel may bind either (a GPU's maxStorageBufferBindingSize).
  const most = Math.min(chunkValues, Math.floor(bindingLimit() / 4));
  if (N * V <= most) return null;
  return Math.max(1, Math.floor(most / V));
}

/** The output layer's weight: lm_head [C, V], or the embedding [V, C] when tied. */
export function headWeight(params: Record<string, tf.Tensor | undefined>): { head: tf.Tensor2D; tied: boolean } {
  return params.lm_head ? { head: params.lm_head as tf.Tensor2D, tied: false } : { head: params.embed! as tf.Tensor2D, tied: true };
}

/** log softmax(hidden W / temperature)[n, targets[n]] for every row n, [N], in slices of `rows`,
 * and, where the head (or a slice's logits) is over the backend's binding limit, in blocks of the
 * vocabulary (model/vocab-split.ts): each block's log-sum-exp and target logit are combined, so
 * only one block of one slice's logits exists at a time. `head`: lm_head [C, V], or the embedding
 * [V, C] when `tied`. A head that is a frozen variable (LoRA) gets no gradient: its [V, C] share
 * is not computed. */
export function chunkedTokenLogprobs(
  hidden: tf.Tensor2D,
  head: tf.Tensor2D,
  tied: boolean,
  targets: tf.Tensor1D,
  rows: number,
  temperature = 1,
): tf.Tensor1D {
  const N = hidden.shape[0];
  const starts = Array.from({ length: Math.ceil(N / rows) }, (_, k) => k * rows);
  const blocks = vocabBlocks(head, tied, Math.min(rows, N));
  const whole = blocks.length === 1;
  const trainHead = !(head instanceof tf.Variable) || head.trainable;
  const sliceOf = (t: tf.Tensor, start: number): tf.Tensor => {
    const n = Math.min(rows, N - start);
    return t.rank === 1 ? tf.slice(t, [start], [n]) : tf.slice(t, [start, 0], [n, -1]);
  };
  const blockLogits = (hSlice: tf.Tensor2D, w: tf.Tensor2D): tf.Tensor2D => {
    const z = headProduct(hSlice, w, tied);
    return temperature === 1 ? z : tf.div(z, temperature);
  };
  /** Where each target falls in block `b`: its index there (0 when outside) and 1 / 0 for inside. */
  const inBlock = (ys: tf.Tensor1D, b: RowBlock): { local: tf.Tensor1D; inside: tf.Tensor1D } => {
    if (whole) return { local: ys, inside: tf.ones([ys.shape[0]]) };
    const shifted = tf.sub(ys, tf.scalar(b.start, 'int32'));
    const inside = tf.logicalAnd(tf.greaterEqual(shifted, tf.scalar(0, 'int32')), tf.less(shifted, tf.scalar(b.size, 'int32')));
    return { local: tf.where(inside, shifted, tf.zerosLike(shifted)) as tf.Tensor1D, inside: tf.cast(inside, 'float32') as tf.Tensor1D };
  };
  const forward = (h: tf.Tensor2D, w: tf.Tensor2D, y: tf.Tensor1D) =>
    tf.tidy(() => {
      const lse: tf.Tensor1D[] = [],
        picked: tf.Tensor1D[] = [];
      for (const b of blocks) {
        const wb = whole ? w : headBlock(w, tied, b);
        const parts = starts.map((start) =>
          tf.tidy(() => {
            const z = blockLogits(sliceOf(h, start) as tf.Tensor2D, wb),
              [n, size] = z.shape;
            const { local, inside } = inBlock(sliceOf(y, start) as tf.Tensor1D, b);
            const flat = tf.add(tf.mul(tf.range(0, n, 1, 'int32'), tf.scalar(size, 'int32')), local);
            const target = tf.gather(tf.reshape(z, [n * size]), flat);
            return { lse: tf.reshape(tf.logSumExp(z, -1), [n]), target: whole ? target : tf.mul(target, inside) };
          }),
        );
        lse.push(tf.concat(parts.map((p) => p.lse)) as tf.Tensor1D);
        picked.push(tf.concat(parts.map((p) => p.target)) as tf.Tensor1D);
        if (!whole) wb.dispose(); // one block of the head at a time
      }
      const total = whole ? lse[0] : (tf.logSumExp(tf.stack(lse, 1), -1) as tf.Tensor1D);
      return { value: tf.sub(whole ? picked[0] : tf.addN(picked), total) as tf.Tensor1D, lse: total };
    });
  /** d hidden, and d head when it trains, of dy [N] through the blocks: softmax from the saved lse. */
  const backward = (dy: tf.Tensor, hs: tf.Tensor2D, ws: tf.Tensor2D, ys: tf.Tensor1D, lse: tf.Tensor1D) => {
    const dHidden: (tf.Tensor2D | null)[] = starts.map(() => null);
    const dHead: tf.Tensor2D[] = [];
    for (const b of blocks) {
      const wb = whole ? ws : headBlock(ws, tied, b);
      let dwb: tf.Tensor2D | null = null;
      starts.forEach((start, k) => {
        const part = tf.tidy(() => {
          const hSlice = sliceOf(hs, start) as tf.Tensor2D;
          const z = blockLogits(hSlice, wb),
            [n, size] = z.shape;
          const p = tf.exp(tf.sub(z, tf.reshape(sliceOf(lse, start), [n, 1])));
          const { local, inside } = inBlock(sliceOf(ys, start) as tf.Tensor1D, b);
          // int32 then cast: the wasm backend's OneHot writes integer bits into a float32 output.
          let onehot = tf.cast(tf.oneHot(local, size), 'float32');
          if (!whole) onehot = tf.mul(onehot, tf.reshape(inside, [n, 1]));
          const dz = tf.mul(tf.sub(onehot, p), tf.reshape(sliceOf(dy, start), [n, 1])); // [n, size]
          const dzRaw = (temperature === 1 ? dz : tf.div(dz, temperature)) as tf.Tensor2D;
          // d hidden = dz W^T; d head = h^T dz ([C, V]) or dz^T h for the tied [V, C] embedding.
          const dh = tied ? tf.matMul(dzRaw, wb) : tf.matMul(dzRaw, wb, false, true);
          if (!trainHead) return { dh };
          return { dh, dw: tied ? tf.matMul(dzRaw, hSlice, true, false) : tf.matMul(hSlice, dzRaw, true, false) };
        }) as { dh: tf.Tensor2D; dw?: tf.Tensor2D };
        dHidden[k] = accumulate(dHidden[k], part.dh);
        if (part.dw) dwb = accumulate(dwb, part.dw);
      });
      if (!whole) wb.dispose();
      if (dwb) dHead.push(dwb);
    }
    const dh = tf.concat(dHidden as tf.Tensor2D[]);
    tf.dispose(dHidden as tf.Tensor2D[]);
    if (!trainHead) return [dh];
    const dw = whole ? dHead[0] : tf.concat(dHead, tied ? 0 : 1);
    if (!whole) tf.dispose(dHead);
    return [dh, dw];
  };
  const y = tf.cast(targets, 'int32') as tf.Tensor1D;
  if (!trainHead) {
    const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const [h, save] = args as [tf.Tensor2D, tf.GradSaveFunc];
      const { value, lse } = forward(h, head, y);
      // Saved for the backward pass, which may run after the caller disposed `targets`.
      save([h, y, lse]);
      return {
        value,
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
          backward(dy, saved[0] as tf.Tensor2D, head, saved[1] as tf.Tensor1D, saved[2] as tf.Tensor1D),
      };
    });
    return f(hidden) as tf.Tensor1D;
  }
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [h, w, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.GradSaveFunc];
    const { value, lse } = forward(h, w, y);
    save([h, w, y, lse]);
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [hs, ws, ys, ls] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D, tf.Tensor1D];
        return backward(dy, hs, ws, ys, ls);
      },
    };
  });
  return f(hidden, head) as tf.Tensor1D;
}

/** a + b, disposing both (a may be null: then b). */
function accumulate(a: tf.Tensor2D | null, b: tf.Tensor2D): tf.Tensor2D {
  if (a === null) return b;
  const sum = tf.add(a, b) as tf.Tensor2D;
  tf.dispose([a, b]);
  return sum;
}
