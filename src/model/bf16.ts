// Frozen weights stored as bfloat16 outside the WebAssembly heap (a stage's lora.frozen_dtype:
// bfloat16). Under LoRA the base projections never change, so they need not sit in the tfjs backend
// as float32 for the whole run: each is kept as its bf16 bit patterns in a JS Uint16Array (2 bytes a
// value instead of 4, and none of it in the 4 GiB heap), and widened to a float32 tensor only for
// the product that uses it, which frees it at once. The backward pass of x W needs W again (dx =
// dy W^T): a customGrad widens it a second time there instead of letting the tape hold it, so at most
// one matrix's float32 copy lives in the backend at a time, whatever the tape keeps.
//
// bfloat16 is float32's top 16 bits, so widening is a 16-bit shift; narrowing rounds to nearest even.
import * as tf from '@tensorflow/tfjs-core';

/** float32 values to bfloat16 bit patterns, rounded to nearest even (NaN stays a quiet NaN). */
export function toBf16(values: Float32Array): Uint16Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < bits.length; i++) {
    const b = bits[i];
    if ((b & 0x7f800000) === 0x7f800000 && (b & 0x7fffff) !== 0) out[i] = (b >>> 16) | 0x40;
    else out[i] = (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
  }
  return out;
}

/** bfloat16 bit patterns to float32 values (exact: the low 16 bits are zeros). */
export function fromBf16(bits: Uint16Array): Float32Array {
  const wide = new Uint32Array(bits.length);
  for (let i = 0; i < bits.length; i++) wide[i] = bits[i] << 16;
  return new Float32Array(wide.buffer);
}

/** float32 values rounded to the nearest bfloat16 (what a bf16-held weight computes with). */
export function roundToBf16(values: Float32Array): Float32Array {
  return fromBf16(toBf16(values));
}

/** A frozen matrix [in, out] held as bfloat16 in JS memory (not a tfjs tensor). */
export class Bf16Weight {
  constructor(
    readonly bits: Uint16Array,
    readonly shape: [number, number],
  ) {
    if (bits.length !== shape[0] * shape[1]) throw new Error(`Bf16Weight: ${bits.length} values for shape [${shape}]`);
  }

  static fromTensor(t: tf.Tensor): Bf16Weight {
    if (t.rank !== 2) throw new Error(`Bf16Weight: a matrix is needed, got shape [${t.shape}]`);
    return new Bf16Weight(toBf16(t.dataSync() as Float32Array), t.shape as [number, number]);
  }

  /** Bytes held (2 a value). */
  get bytes(): number {
    return this.bits.byteLength;
  }

  /** The float32 values (a fresh array). */
  values(): Float32Array {
    return fromBf16(this.bits);
  }

  /** A float32 tensor of the values: the caller disposes it. */
  widen(): tf.Tensor2D {
    return tf.tensor2d(this.values(), this.shape);
  }
}

/** x [N, in] times a bf16-held w [in, out], in float32: w widened for the product and freed after,
 * and widened again in the backward pass for dx = dy w^T (w itself has no gradient: it is frozen). */
export function bf16MatMul(x: tf.Tensor2D, w: Bf16Weight): tf.Tensor2D {
  const product = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const input = args[0] as tf.Tensor;
    const wide = w.widen();
    const value = tf.matMul(input as tf.Tensor2D, wide);
    wide.dispose();
    return {
      value,
      gradFunc: (dy: tf.Tensor) => {
        const again = w.widen();
        const dx = tf.matMul(dy as tf.Tensor2D, again, false, true);
        again.dispose();
        return dx;
      },
    };
  });
  return product(x) as tf.Tensor2D;
}
