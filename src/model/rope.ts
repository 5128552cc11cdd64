// Rotary position embeddings, rotate-half convention (Hugging Face's Llama): the cos and sin tables,
// with the config's frequency scaling (linear, llama3, yarn). Computed in float32 steps, as modeling_rope_utils.py does, so
// the tables match PyTorch's to the last bit or two, not merely to float64 precision.
import * as tf from '@tensorflow/tfjs-core';
import { type ModelConfig, type RopeScaling, headDim } from './config.ts';

const f = Math.fround;

/** yarn's attention scaling of a context extension by `scale`: 0.1 m ln(scale) + 1 (1 when not extending). */
export function yarnMscale(scale: number, m = 1): number {
  return scale <= 1 ? 1 : 0.1 * m * Math.log(scale) + 1;
}

/** Frequencies [D/2] of the rotation: theta^(-2i/D), then the config's rope_scaling. D: the rotated
 * size (the head size; qk_rope_head_dim in MLA). */
export function inverseFrequencies(c: ModelConfig, D = headDim(c)): Float32Array {
  const s = c.rope_scaling;
  const inv = new Float32Array(D / 2);
  for (let i = 0; i < D / 2; i++) {
    const base = f(1 / f(Math.pow(f(c.rope_theta), f((2 * i) / D))));
    if (!s) inv[i] = base;
    else if (s.rope_type === 'linear') inv[i] = f(base / f(s.factor));
    else if (s.rope_type === 'yarn') inv[i] = yarnFrequency(c, D, i);
    else {
      // llama3: wavelengths beyond the original context's long end are slowed by `factor`, those
      // below its short end kept, and the band between blended smoothly.
      const old = s.original_max_position_embeddings,
        lo = s.low_freq_factor,
        hi = s.high_freq_factor;
      const wavelength = f(f(2 * Math.PI) / base);
      if (wavelength > f(old / lo)) inv[i] = f(base / f(s.factor));
      else if (wavelength < f(old / hi)) inv[i] = base;
      else {
        const smooth = f(f(f(old / wavelength) - lo) / f(hi - lo));
        inv[i] = f(f(f(f(1 - smooth) * base) / f(s.factor)) + f(smooth * base));
      }
    }
  }
  return inv;
}

/** yarn: frequency i keeps its value above beta_fast rotations over the original context, is divided
 * by `factor` below beta_slow rotations, and blends linearly between (modeling_rope_utils.py). */
function yarnFrequency(c: ModelConfig, D: number, i: number): number {
  const s = c.rope_scaling as Extract<RopeScaling, { rope_type: 'yarn' }>,
    base = c.rope_theta;
  const orig = s.original_max_position_embeddings ?? c.max_position_embeddings;
  const correction = (rotations: number) => (D * Math.log(orig / (rotations * 2 * Math.PI))) / (2 * Math.log(base));
  let lo = correction(s.beta_fast ?? 32),
    hi = correction(s.beta_slow ?? 1);
  if (s.truncate ?? true) [lo, hi] = [Math.floor(lo), Math.ceil(hi)];
  lo = Math.max(lo, 0);
  hi = Math.min(hi, D - 1);
  const ramp = Math.min(1, Math.max(0, f(f(i - lo) / f(hi === lo ? 0.001 : hi - lo))));
  const pos = f(Math.pow(f(base), f((2 * i) / D)));
  return f(f(f(1 / f(s.factor * pos)) * ramp) + f(f(1 / pos) * f(1 - ramp)));
}

/** What cos and sin are multiplied by: yarn's attention_factor (default mscale(factor, mscale) /
 * mscale(factor, mscale_all_dim) when both are set, else mscale(factor)); 1 for the other types. */
export function ropeAttentionFactor(c: ModelConfig): number {
  const s = c.rope_scaling;
  if (s?.rope_type !== 'yarn') return 1;
  if (s.attention_factor !== undefined) return s.attention_factor;
  return s.mscale && s.mscale_all_dim ? yarnMscale(s.factor, s.mscale) / yarnMscale(s.factor, s.mscale_all_dim) : yarnMscale(s.factor);
}

/** cos and sin of position x frequency, [positions, D] with each frequency repeated for both halves.
 * Grown on demand (doubling, up to max_position_embeddings): real configs declare contexts of 32k and
 * more, whose full tables a short sequence never reads. */
export class RopeTables {
  private readonly inv: Float32Array;
  private readonly factor: number;
  private cos: tf.Tensor2D | null = null;
  private sin: tf.Tensor2D | null = null;

  /** `dim`: the rotated size (default the head size). */
  constructor(
    private readonly config: ModelConfig,
    dim = headDim(config),
  ) {
    this.inv = inverseFrequencies(config, dim);
    this.factor = ropeAttentionFactor(config);
  }

  /** [1, T, 1, D] tables for positions start .. start + T - 1. */
  at(start: number, T: number): { cos: tf.Tensor4D; sin: tf.Tensor4D } {
    const max = this.config.max_position_embeddings;
    if (start + T > max) throw new Error(`sequence of ${start + T} tokens exceeds max_position_embeddings ${max}`);
    if (!this.cos || this.cos.shape[0] < start + T) this.grow(Math.min(max, Math.max(start + T, 2 * (this.cos?.shape[0] ?? 128))));
    const D = 2 * this.inv.length;
    return tf.tidy(() => ({
      cos: tf.reshape(tf.slice(this.cos!, [start, 0], [T, D]), [1, T, 1, D]) as tf.Tensor4D,
      sin: tf.reshape(tf.slice(this.sin!, [start, 0], [T, D]), [1, T, 1, D]) as tf.Tensor4D,
    }));
  }

  /** [B, T, 1, D] tables for a position per token (positions [B*T], row-major), as packed
   * sequences need them: each document's positions restart at 0. */
  gather(positions: Int32Array, B: number, T: number): { cos: tf.Tensor4D; sin: tf.Tensor4D } {
    const max = this.config.max_position_embeddings;
    if (positions.length !== B * T) throw new Error(`rope: ${positions.length} positions for a batch of ${B} x ${T} tokens`);
    let top = 0;
    for (const p of positions) {
      if (!(p >= 0)) throw new Error(`rope: position ${p} is negative`);
      top = Math.max(top, p);
    }
    if (top >= max) throw new Error(`position ${top} exceeds max_position_embeddings ${max}`);
    if (!this.cos || this.cos.shape[0] <= top) this.grow(Math.min(max, Math.max(top + 1, 2 * (this.cos?.shape[0] ?? 128))));
    const D = 2 * this.inv.length;
    return tf.tidy(() => {
      const at = tf.tensor1d(positions, 'int32');
      return {
        cos: tf.reshape(tf.gather(this.cos!, at), [B, T, 1, D]) as tf.Tensor4D,
        sin: tf.reshape(tf.gather(this.sin!, at), [B, T, 1, D]) as tf.Tensor4D,
      };
    });
  }

  private grow(P: number): void {
    const half = this.inv.length,
      D = 2 * half;
    const cos = new Float32Array(P * D),
      sin = new Float32Array(P * D);
    for (let p = 0; p < P; p++) {
      for (let i = 0; i < half; i++) {
        const angle = f(p * this.inv[i]);
        cos[p * D + i] = cos[p * D + i + half] = this.factor === 1 ? Math.cos(angle) : f(Math.cos(angle)) * this.factor;
        sin[p * D + i] = sin[p * D + i + half] = this.factor === 1 ? Math.sin(angle) : f(Math.sin(angle)) * this.factor;
      }
    }
    this.dispose();
    this.cos = tf.keep(tf.tensor2d(cos, [P, D]));
    this.sin = tf.keep(tf.tensor2d(sin, [P, D]));
  }

  dispose(): void {
    this.cos?.dispose();
    this.sin?.dispose();
    this.cos = this.sin = null;
  }
}
