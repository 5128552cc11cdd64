// Activation checkpointing per decoder block (gradient_checkpointing: true): a block's forward keeps
// only its input for the backward pass, and the backward recomputes the block's forward from that
// input to get its gradients. The tape of a training step then holds one [B*T, C] tensor per layer
// instead of every intermediate of every layer (the attention probabilities, the SwiGLU hidden
// states, the rotated q/k copies...), for about one extra forward pass of compute.
//
// In tfjs a block becomes one customGrad op whose inputs are its hidden states and the layer's
// trainable variables: the ops inside a customGrad's forward are not recorded on the tape (they run
// at kernel depth > 0), and its backward computes the block's vector-Jacobian product on a tape of
// its own, freed before the next block's backward runs.
import * as tf from '@tensorflow/tfjs-core';
import { gradientsFreeing } from '../engine/backprop.ts';
import type { BlockContext } from './blocks.ts';
import { isMoeLayer } from './config.ts';
import type { Transformer } from './transformer.ts';

/** Whether block `i` is worth and safe to recompute: only under a gradient tape (a forward pass
 * with no backward has nothing to save); not a MoE layer, whose balance loss is a second output a
 * single-output customGrad cannot carry (and whose expert-load recording would count twice); not
 * with a generation cache, which the forward grows in place. Other blocks run as usual. */
export function recomputable(model: Transformer, i: number, ctx: BlockContext): boolean {
  return !ctx.cache && !isMoeLayer(model.config, i) && tf.engine().isTapeOn();
}

/** The variables block `i` trains: its own trainable weights, or under LoRA its adapters. */
export function blockTrainables(model: Transformer, i: number): tf.Variable[] {
  const prefix = `layers.${i}.`;
  if (model.adapters) {
    return [...model.adapters.slots.values()].filter((s) => s.param.startsWith(prefix)).flatMap((s) => [s.a, ...s.b]);
  }
  return Object.entries(model.params)
    .filter(([name, v]) => name.startsWith(prefix) && v.trainable)
    .map(([, v]) => v);
}

/** Block `i` of `model` over x [B*T, C], keeping only its input (and the context's tables) for the
 * backward pass, which recomputes the block. Equal to model.block(i, x, ctx) in value and gradient. */
export function checkpointedBlock(model: Transformer, i: number, x: tf.Tensor2D, ctx: BlockContext): tf.Tensor2D {
  const lora = model.adapters;
  // A dropout mask drawn again in the recompute would differ from the forward's: refuse rather than
  // compute a wrong gradient (no stage turns LoRA dropout on in training today).
  if (lora?.training && lora.config.dropout > 0) throw new Error('gradient checkpointing with LoRA dropout in training is not supported');
  const trainables = blockTrainables(model, i);
  const tables = [ctx.cos, ctx.sin, ...(ctx.mask ? [ctx.mask] : [])];
  const run = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const input = args[0] as tf.Tensor2D;
    save([input, ...tables]);
    const value = model.block(i, input, { ...ctx, balance: [] });
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [x0, cos, sin, mask] = saved as [tf.Tensor2D, tf.Tensor4D, tf.Tensor4D, tf.Tensor4D | undefined];
        const again: BlockContext = { ...ctx, cos, sin, mask, load: undefined, balance: [] };
        return blockVjp(() => model.block(i, x0, again), [x0, ...trainables], dy);
      },
    };
  });
  return run(x, ...trainables) as tf.Tensor2D;
}

/** Gradients of f's output, weighted by dy, with respect to xs (zeros where f does not reach one).
 * A gradient walk called inside a backward pass would start a tape over the outer one and, at its
 * end, clear the outer tape the outer backward is still walking: the outer tape is set aside for
 * the recompute and put back after, so each block's recomputed intermediates are freed on return. */
function blockVjp(f: () => tf.Tensor, xs: tf.Tensor[], dy: tf.Tensor): tf.Tensor[] {
  const engine = tf.engine();
  const outer = engine.state.activeTape;
  try {
    const { value, grads } = gradientsFreeing(f, xs, dy);
    value.dispose();
    return grads.map((g, k) => g ?? tf.zerosLike(xs[k]));
  } finally {
    engine.state.activeTape = outer;
  }
}
