// The dense feed-forward of every family: SwiGLU, down(silu(gate(x)) * up(x)), with gate and up as
// one fused [C, 2F] matrix (plain matMuls are fast here), and llama's optional mlp_bias.
import type * as tf from '@tensorflow/tfjs-core';
import { swiglu } from '../engine/kernels/index.ts';
import { type ModelConfig, biases } from './config.ts';
import { type Weight, linear } from './linear.ts';

/** Internal parameter names and shapes of one layer's SwiGLU under `prefix`. */
export function mlpShapes(c: ModelConfig, prefix: string): Record<string, number[]> {
  const C = c.hidden_size,
    F = c.intermediate_size,
    bias = biases(c).mlp;
  const s: Record<string, number[]> = { [prefix + 'w_gate_up']: [C, 2 * F] };
  if (bias) s[prefix + 'b_gate_up'] = [2 * F];
  s[prefix + 'w_down'] = [F, C];
  if (bias) s[prefix + 'b_down'] = [C];
  return s;
}

/** h: normed hidden states [B*T, C] -> [B*T, C]. */
export function mlp(h: tf.Tensor2D, w: { w_gate_up: Weight; b_gate_up?: tf.Tensor; w_down: Weight; b_down?: tf.Tensor }): tf.Tensor2D {
  return linear(swiglu(linear(h, w.w_gate_up, w.b_gate_up)), w.w_down, w.b_down); // silu(gate) * up
}
