// Moves a LoRA model's frozen projections out of the tfjs backend into bfloat16 (bf16.ts), for a
// stage with lora.frozen_dtype: bfloat16. Kept apart from bf16.ts so the product code (linear.ts)
// does not import the model.
import type { ProjectionParam } from './lora.ts';
import { Bf16Weight } from './bf16.ts';
import type { Transformer } from './transformer.ts';

/** The parameters that may be held as bf16: every block projection that reaches its product through
 * Transformer.projection (MLA's kv_b is read as a tensor by the absorbed generation path, so stays). */
export function bf16HoldableParams(projections: ProjectionParam[]): string[] {
  return projections.map((p) => p.param).filter((name) => !name.endsWith('.wkv_b'));
}

/** Replaces each named frozen variable of `model` with its bf16 values held in JS memory, one at a
 * time (so the conversion needs one matrix's extra memory), and disposes the variable. Returns the
 * bytes taken out of the backend. A trainable or non-matrix parameter is refused. */
export function holdFrozenAsBf16(model: Transformer, names: string[]): number {
  let freed = 0;
  for (const name of names) {
    if (model.frozen.has(name)) continue;
    const v = model.params[name];
    if (!v) throw new Error(`holdFrozenAsBf16: the model has no parameter ${name}`);
    if (v.trainable) throw new Error(`holdFrozenAsBf16: ${name} is trainable; only frozen weights (under LoRA) can be held as bf16`);
    model.frozen.set(name, Bf16Weight.fromTensor(v));
    freed += v.size * 4;
    v.dispose();
    delete model.params[name];
  }
  return freed;
}

/** Bytes of the bf16-held weights (2 a value), outside the backend. */
export function frozenBf16Bytes(model: Transformer): number {
  let n = 0;
  for (const w of model.frozen.values()) n += w.bytes;
  return n;
}
