// Tensors too large for one kernel, split by vocabulary rows. A GPU binds at most
// maxStorageBufferBindingSize bytes of one tensor per kernel (128 MiB on Mesa's llvmpipe and on
// WebGPU's compatibility adapters; Dawn caps NVIDIA at 2 GiB), and Qwen2.5's embedding alone is
// 151,936 x 896 float32 = 545 MB: the lookup and the output layer are therefore done a block of
// vocabulary rows at a time, each block (and each block's logits) under the limit, and combined.
// The limit comes from the backend (engine/backend.ts bindingLimit: Infinity off WebGPU, where
// everything here is one block and the ops are the plain ones); R1_BINDING_LIMIT lowers it, so
// the split paths run, and are tested, on a tiny model on any backend.
import * as tf from '@tensorflow/tfjs-core';
import { activeBackend, bindingLimit } from '../engine/backend.ts';
import { matmulPath } from '../engine/kernels/index.ts';

const FLOAT_BYTES = 4;

/** A range of rows: [start, start + size). */
export type RowBlock = { start: number; size: number };

/** `rows` rows of `rowBytes` bytes each in blocks of at most `limit` bytes: one block when they fit.
 * `what` names the tensor in the error when one row alone is over the limit. */
export function rowBlocks(rows: number, rowBytes: number, what: string, limit = bindingLimit()): RowBlock[] {
  if (rows * rowBytes <= limit) return [{ start: 0, size: rows }];
  const per = Math.floor(limit / rowBytes);
  if (per < 1)
    throw new Error(
      `${what}: one row is ${rowBytes} bytes, over the ${limit}-byte binding limit of this backend; it cannot be split further`,
    );
  const blocks: RowBlock[] = [];
  for (let start = 0; start < rows; start += per) blocks.push({ start, size: Math.min(per, rows - start) });
  return blocks;
}

/** Rows `ids` [N] of the embedding `table` [V, C]: tf.gather, or, when the table is over the
 * binding limit, a gather from each block of rows (indices outside a block read its row 0 and
 * are zeroed) summed, which is the same rows exactly. Differentiable in the table. */
export function embedRows(table: tf.Tensor2D, ids: tf.Tensor1D): tf.Tensor2D {
  const [V, C] = table.shape;
  const blocks = rowBlocks(V, C * FLOAT_BYTES, `embedding [${V}, ${C}]`);
  if (blocks.length === 1) return tf.gather(table, ids);
  const lookup = () => blockedRows(table, ids, blocks);
  if (!(table instanceof tf.Variable) || table.trainable) return lookup();
  // A frozen table (LoRA) gets no gradient: the lookup runs inside a custom gradient, so a
  // gradient tape keeps none of its row blocks (copies of the whole table, 545 MB for Qwen2.5)
  // until the backward pass. The ids take no gradient either.
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => ({
    value: lookup(),
    gradFunc: () => tf.zerosLike(args[0] as tf.Tensor),
  }));
  return f(ids) as tf.Tensor2D;
}

/** embedRows over `blocks` of rows. */
function blockedRows(table: tf.Tensor2D, ids: tf.Tensor1D, blocks: RowBlock[]): tf.Tensor2D {
  const C = table.shape[1];
  return tf.tidy(() => {
    const index = tf.cast(ids, 'int32');
    let out: tf.Tensor2D | null = null;
    for (const b of blocks) {
      const local = tf.sub(index, tf.scalar(b.start, 'int32'));
      const inside = tf.logicalAnd(tf.greaterEqual(local, tf.scalar(0, 'int32')), tf.less(local, tf.scalar(b.size, 'int32')));
      const rows = tf.gather(tf.slice(table, [b.start, 0], [b.size, C]), tf.where(inside, local, tf.zerosLike(local)));
      const part = tf.mul(rows, tf.expandDims(tf.cast(inside, 'float32'), 1)) as tf.Tensor2D;
      out = out ? (tf.add(out, part) as tf.Tensor2D) : part;
    }
    return out!;
  });
}

/** True where a transposed product is slow (WebAssembly with XNNPACK running products), so the
 * tied output layer is better off transposing the embedding first. */
export function tiedHeadNeedsTranspose(): boolean {
  return activeBackend() === 'wasm' && matmulPath() === 'xnnpack';
}

/** The output layer's vocabulary size: lm_head [C, V], or the tied embedding [V, C]. */
export function headVocab(head: tf.Tensor2D, tied: boolean): number {
  return tied ? head.shape[0] : head.shape[1];
}

/** Blocks of the vocabulary such that each block of the head and each block's logits for `rows`
 * hidden rows are under the binding limit: one block (the whole head) off WebGPU. */
export function vocabBlocks(head: tf.Tensor2D, tied: boolean, rows: number): RowBlock[] {
  const V = headVocab(head, tied),
    C = tied ? head.shape[1] : head.shape[0];
  return rowBlocks(V, Math.max(C, rows) * FLOAT_BYTES, `output layer [${tied ? `${V}, ${C}` : `${C}, ${V}`}] for ${rows} rows`);
}

/** Block `b` of a head's vocabulary: rows of the tied embedding [V, C], or columns of lm_head [C, V]. */
export function headBlock(head: tf.Tensor2D, tied: boolean, b: RowBlock): tf.Tensor2D {
  return tied ? tf.slice(head, [b.start, 0], [b.size, -1]) : tf.slice(head, [0, b.start], [-1, b.size]);
}

/** Logits of rows `hidden` [n, C] against a head (or a block of it): lm_head [C, V], or the tied
 * embedding [V, C] read transposed. */
export function headProduct(hidden: tf.Tensor2D, head: tf.Tensor2D, tied: boolean): tf.Tensor2D {
  if (!tied) return tf.matMul(hidden, head);
  return tiedHeadNeedsTranspose() ? tf.tidy(() => tf.matMul(hidden, tf.transpose(head))) : tf.matMul(hidden, head, false, true);
}

/** Logits [n, V] of hidden states [n, C]: one product, or one per vocabulary block, side by side. */
export function headLogits(hidden: tf.Tensor2D, head: tf.Tensor2D, tied: boolean): tf.Tensor2D {
  const blocks = vocabBlocks(head, tied, hidden.shape[0]);
  if (blocks.length === 1) return headProduct(hidden, head, tied);
  return tf.tidy(() =>
    tf.concat(
      blocks.map((b) => headProduct(hidden, headBlock(head, tied, b), tied)),
      1,
    ),
  );
}
