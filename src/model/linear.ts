// A dense projection in the layout that is fast here: x [N, in] times w [in, out] (a plain matMul;
// transposed matMuls are slow on WebAssembly), plus a bias where the family has one.
import * as tf from '@tensorflow/tfjs-core';

export function linear(x: tf.Tensor2D, w: tf.Tensor, bias?: tf.Tensor): tf.Tensor2D {
  const y = tf.matMul(x, w) as tf.Tensor2D;
  return bias ? (tf.add(y, bias) as tf.Tensor2D) : y;
}
