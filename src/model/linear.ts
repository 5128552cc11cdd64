// A dense projection in the layout that is fast here: x [N, in] times w [in, out] (a plain matMul;
// transposed matMuls are slow on WebAssembly), plus a bias where the family has one. A weight may
// carry a LoRA adapter (lora.ts): its low-rank term is added to the frozen product.
import * as tf from '@tensorflow/tfjs-core';

/** A frozen weight with the adapter term that goes with it: y = x W + adapt(x). */
export class AdaptedWeight {
  constructor(
    readonly base: tf.Tensor,
    readonly adapt: (x: tf.Tensor2D, y: tf.Tensor2D) => tf.Tensor2D,
  ) {}
}

/** What a block's projection is: a plain weight [in, out], or one with a LoRA adapter. */
export type Weight = tf.Tensor | AdaptedWeight;

export function linear(x: tf.Tensor2D, w: Weight, bias?: tf.Tensor): tf.Tensor2D {
  const y = w instanceof AdaptedWeight ? w.adapt(x, tf.matMul(x, w.base) as tf.Tensor2D) : (tf.matMul(x, w) as tf.Tensor2D);
  return bias ? (tf.add(y, bias) as tf.Tensor2D) : y;
}
