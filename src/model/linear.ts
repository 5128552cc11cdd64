// A dense projection in the layout that is fast here: x [N, in] times w [in, out] (a plain matMul;
// transposed matMuls are slow on WebAssembly), plus a bias where the family has one. A weight may
// carry a LoRA adapter (lora.ts): its low-rank term is added to the frozen product. A frozen weight
// may be held as bfloat16 outside the tfjs backend (bf16.ts) and widened for the product.
import * as tf from '@tensorflow/tfjs-core';
import { Bf16Weight, bf16MatMul } from './bf16.ts';

/** A frozen matrix: a tensor, or bfloat16 values widened at use. */
export type FrozenMatrix = tf.Tensor | Bf16Weight;

/** A frozen weight with the adapter term that goes with it: y = x W + adapt(x). */
export class AdaptedWeight {
  constructor(
    readonly base: FrozenMatrix,
    readonly adapt: (x: tf.Tensor2D, y: tf.Tensor2D) => tf.Tensor2D,
  ) {}
}

/** What a block's projection is: a plain weight [in, out], a bf16-held one, or one with a LoRA adapter. */
export type Weight = FrozenMatrix | AdaptedWeight;

function product(x: tf.Tensor2D, w: FrozenMatrix): tf.Tensor2D {
  return w instanceof Bf16Weight ? bf16MatMul(x, w) : (tf.matMul(x, w) as tf.Tensor2D);
}

export function linear(x: tf.Tensor2D, w: Weight, bias?: tf.Tensor): tf.Tensor2D {
  const y = w instanceof AdaptedWeight ? w.adapt(x, product(x, w.base)) : product(x, w);
  return bias ? (tf.add(y, bias) as tf.Tensor2D) : y;
}
