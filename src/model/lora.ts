// LoRA (Hu et al. 2021) in PEFT's terms: a targeted projection y = x W^T becomes
//   y = x W^T + s * (dropout(x) A^T) B^T,   A [r, in], B [out, r],   s = alpha / r  (alpha / sqrt(r), rsLoRA)
// with A drawn as PEFT draws it (Kaiming-uniform, a = sqrt(5): U(-1/sqrt(in), 1/sqrt(in))) and B = 0,
// so a fresh adapter leaves the model unchanged. Only A and B train; the base weights stay frozen.
//
// Our projections are fused (q/k/v in one [C, (H + 2 Hkv) D] matrix, gate/up in one), while PEFT
// names one adapter per Hugging Face module. A slot is one fused parameter and its modules: x goes
// through every module's A at once (A's stacked side by side, [in, r * P]), then each module's
// r-wide slice through its own B into its own columns of the output; untargeted modules add zeros.
// Adapters are kept in the fast layout (A^T [in, r], B^T [r, out]) and written in PEFT's.
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { UserError } from '../errors.ts';
import { Rng } from '../engine/rng.ts';
import type { NamedArray } from '../engine/safetensors.ts';
import { type ModelConfig, family } from './config.ts';

/** The modules LoRA targets by default, per family: every projection of the blocks (PEFT's
 * "all-linear" minus the head). deepseek_v3: MLA's q, kv_a and o projections and every feed-forward
 * (dense, shared and routed experts); kv_b_proj is left out because generation absorbs it into the
 * latent cache (mla.ts), and the router (mlp.gate) is not a linear layer in Hugging Face's model. */
export const LORA_DEFAULT_TARGETS: Record<string, readonly string[]> = {
  llama: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
  qwen2: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
  qwen3: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
  deepseek_v3: ['q_proj', 'q_a_proj', 'q_b_proj', 'kv_a_proj_with_mqa', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
};
/** Modules that cannot carry an adapter here, and why. */
const UNTARGETABLE: Record<string, string> = {
  kv_b_proj: 'generation absorbs kv_b_proj into the latent cache (mla.ts), so an adapter on it would differ between training and sampling',
  eh_proj: 'the multi-token-prediction module trains only in pretraining',
};

export const LoraConfig = z
  .strictObject({
    r: z.number().int().min(1).default(16).describe('rank of each adapter (PEFT r); 8-64 is usual, 16 a good start'),
    alpha: z
      .number()
      .positive()
      .optional()
      .describe('scale numerator (PEFT lora_alpha): s = alpha / r, or alpha / sqrt(r) with use_rslora; default 2r (recommended)'),
    dropout: z
      .number()
      .min(0)
      .max(1)
      .default(0)
      .describe('dropout on the adapter input while training (PEFT lora_dropout); 0 for RL, 0.05 for SFT'),
    target_modules: z
      .array(z.string().min(1))
      .min(1)
      .optional()
      .describe(
        "Hugging Face module names to adapt (q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj, ...); default every projection of the family's blocks",
      ),
    use_rslora: z.boolean().default(false).describe('rank-stabilised LoRA: s = alpha / sqrt(r) (Kalajdzievski 2023), steadier at large r'),
    frozen_dtype: z
      .enum(['float32', 'bfloat16'])
      .default('float32')
      .describe(
        'how the frozen base projections are held while training: bfloat16 keeps them as 2-byte values outside the ' +
          "WebAssembly heap (half the frozen weights' bytes, and none of them in the 4 GiB heap), widening each to float32 " +
          'for its product (and again in the backward pass): one extra conversion per projection per pass. The model then ' +
          'computes with bf16-rounded base weights. Use it when the base does not fit, or nearly (a 0.5 B model on WebAssembly); ' +
          'not written to adapter_config.json',
      ),
  })
  .describe('train LoRA adapters instead of all weights (PEFT layout in and out); the reference model is the base with adapters off');
export type LoraConfig = z.output<typeof LoraConfig>;

/** Scale s that multiplies B A. */
export function loraScale(cfg: Pick<LoraConfig, 'r' | 'alpha' | 'use_rslora'>): number {
  const alpha = cfg.alpha ?? 2 * cfg.r;
  return cfg.use_rslora ? alpha / Math.sqrt(cfg.r) : alpha / cfg.r;
}

/** One Hugging Face projection inside a fused parameter: its module path (without `.weight`), its
 * input width and its columns [offset, offset + out) of the fused [in, out] weight. */
export type Projection = { module: string; in: number; out: number; offset: number };
/** A fused parameter and the projections it is made of (checkpoint.ts's mapping table). */
export type ProjectionParam = { param: string; projections: Projection[] };

/** An adapter slot: one fused parameter, the projections of it that are targeted, and their
 * variables: a [in, r * P] (A^T of each targeted module side by side) and b[j] [r, out_j] (B^T). */
export type LoraSlot = { param: string; in: number; width: number; targets: Projection[]; a: tf.Variable; b: tf.Variable[] };

export class LoraAdapters {
  readonly scale: number;
  /** Slots by fused parameter name. */
  readonly slots: Map<string, LoraSlot>;
  /** Off: the base model (the reference of GRPO and DPO), with no second copy of the weights. */
  enabled = true;
  /** Dropout rate while training (set by the trainer around its forward passes). */
  training = false;

  constructor(
    readonly config: LoraConfig & { target_modules: string[] },
    slots: LoraSlot[],
    readonly baseModel: string,
  ) {
    this.scale = loraScale(config);
    this.slots = new Map(slots.map((s) => [s.param, s]));
  }

  /** Sets every B to seeded normal values of standard deviation `std`: a trained adapter's stand-in
   * (fresh adapters have B = 0, which adds nothing), for benchmarks and tests of adapter paths. */
  drawB(seed: number, std: number): void {
    const rng = new Rng(seed);
    for (const slot of this.slots.values())
      for (const b of slot.b)
        tf.tidy(() =>
          b.assign(
            tf.tensor(
              Float32Array.from({ length: b.size }, () => rng.normal() * std),
              b.shape,
            ),
          ),
        );
  }

  /** Fresh adapters on `projections` (PEFT's init: A Kaiming-uniform, B zeros), seeded. */
  static init(c: ModelConfig, projections: ProjectionParam[], raw: z.input<typeof LoraConfig>, baseModel: string, seed = 0): LoraAdapters {
    const cfg = resolveLoraConfig(c, raw, 'lora');
    const rng = new Rng(seed ^ 0x10a4);
    // The family's default list names every form a family's layers may take (deepseek_v3's q_proj or
    // q_a_proj + q_b_proj): only a list the user wrote must match in full.
    const chosen = selectTargets(projections, cfg.target_modules, raw.target_modules === undefined);
    cfg.target_modules = [...new Set(chosen.flatMap((s) => s.targets.map((t) => t.module.slice(t.module.lastIndexOf('.') + 1))))];
    const slots = chosen.map(({ param, width, targets }) => {
      const inW = targets[0].in,
        r = cfg.r;
      const bound = 1 / Math.sqrt(inW);
      const a = new Float32Array(inW * r * targets.length);
      // Filled module by module in PEFT's [r, in] order, then laid out as A^T columns.
      targets.forEach((_, j) => {
        for (let k = 0; k < r; k++) for (let i = 0; i < inW; i++) a[i * r * targets.length + j * r + k] = (2 * rng.next() - 1) * bound;
      });
      return makeSlot(
        param,
        width,
        targets,
        a,
        targets.map((t) => new Float32Array(r * t.out)),
        r,
      );
    });
    return new LoraAdapters(cfg, slots, baseModel);
  }

  /** Adds s * (x A^T) B^T to `y` = x W for the slot of `param`, if any and if enabled. x [N, in], y [N, out]. */
  apply(param: string, x: tf.Tensor2D, y: tf.Tensor2D): tf.Tensor2D {
    const slot = this.enabled ? this.slots.get(param) : undefined;
    if (!slot) return y;
    return tf.tidy(() => {
      const xin = this.training && this.config.dropout > 0 ? tf.dropout(x, this.config.dropout) : x;
      return tf.add(y, this.delta(slot, tf.matMul(xin, slot.a))) as tf.Tensor2D;
    });
  }

  /** s * h B^T laid into the fused parameter's columns, for h [N, r * P] (x A^T of each module side
   * by side): each module's r-wide slice through its own B; untargeted modules' columns are zeros. */
  private delta(slot: LoraSlot, h: tf.Tensor2D): tf.Tensor2D {
    const r = this.config.r,
      N = h.shape[0];
    const cols: tf.Tensor2D[] = [];
    let at = 0;
    slot.targets.forEach((t, j) => {
      if (t.offset > at) cols.push(tf.zeros([N, t.offset - at]));
      cols.push(tf.matMul(tf.slice(h, [0, j * r], [N, r]), slot.b[j]));
      at = t.offset + t.out;
    });
    if (at < slot.width) cols.push(tf.zeros([N, slot.width - at]));
    return tf.mul(cols.length === 1 ? cols[0] : tf.concat(cols, 1), this.scale);
  }

  /** The trainable variables, keyed by PEFT's tensor names (what the optimiser and checkpoints see). */
  params(): Record<string, tf.Variable> {
    const out: Record<string, tf.Variable> = {};
    for (const s of this.slots.values()) {
      out[`${s.param}.lora_a`] = s.a;
      s.b.forEach((b, j) => (out[`${s.param}.lora_b.${s.targets[j].module}`] = b));
    }
    return out;
  }

  /** Adapter tensors in PEFT's layout and names: base_model.model.<module>.lora_A.weight [r, in],
   * .lora_B.weight [out, r]. */
  toPeft(): Record<string, NamedArray> {
    const out: Record<string, NamedArray> = {},
      r = this.config.r;
    for (const s of this.slots.values()) {
      const a = s.a.dataSync() as Float32Array,
        P = s.targets.length;
      s.targets.forEach((t, j) => {
        const A = new Float32Array(r * t.in);
        for (let k = 0; k < r; k++) for (let i = 0; i < t.in; i++) A[k * t.in + i] = a[i * r * P + j * r + k];
        const bt = s.b[j].dataSync() as Float32Array,
          B = new Float32Array(t.out * r);
        for (let k = 0; k < r; k++) for (let o = 0; o < t.out; o++) B[o * r + k] = bt[k * t.out + o];
        out[`${PEFT_PREFIX}${t.module}.lora_A.weight`] = { shape: [r, t.in], data: A };
        out[`${PEFT_PREFIX}${t.module}.lora_B.weight`] = { shape: [t.out, r], data: B };
      });
    }
    return out;
  }

  /** PEFT's adapter_config.json for these adapters. */
  peftConfig(): Record<string, unknown> {
    const c = this.config;
    return {
      peft_type: 'LORA',
      task_type: 'CAUSAL_LM',
      base_model_name_or_path: this.baseModel,
      r: c.r,
      lora_alpha: c.alpha ?? 2 * c.r,
      lora_dropout: c.dropout,
      target_modules: [...c.target_modules].sort(),
      use_rslora: c.use_rslora,
      bias: 'none',
      fan_in_fan_out: false,
      inference_mode: true,
      init_lora_weights: true,
      modules_to_save: null,
    };
  }

  /** The merged weight of a fused parameter: W + s * A^T B^T in our [in, out] layout. */
  merged(param: string, w: tf.Tensor): tf.Tensor {
    const slot = this.slots.get(param);
    if (!slot) return tf.clone(w);
    return tf.tidy(() => tf.add(w, this.delta(slot, slot.a as tf.Tensor2D)));
  }

  dispose(): void {
    for (const s of this.slots.values()) {
      s.a.dispose();
      for (const b of s.b) b.dispose();
    }
  }
}

export const PEFT_PREFIX = 'base_model.model.';

const fusedWidth = (ps: Projection[]) => ps.reduce((n, p) => n + p.out, 0);

/** `width`: the fused parameter's whole output (its untargeted modules' columns included). */
function makeSlot(param: string, width: number, targets: Projection[], a: Float32Array, bs: Float32Array[], r: number): LoraSlot {
  const inW = targets[0].in;
  return {
    param,
    in: inW,
    width,
    targets,
    a: tf.tidy(() => tf.variable(tf.tensor2d(a, [inW, r * targets.length]), true, uniqueLoraName(`${param}.lora_a`))),
    b: targets.map((t, j) => tf.tidy(() => tf.variable(tf.tensor2d(bs[j], [r, t.out]), true, uniqueLoraName(`${param}.lora_b.${j}`)))),
  };
}

let counter = 0;
const uniqueLoraName = (n: string) => `${n}#lora${counter++}`;

/** The config with its defaults filled in for this family, checked: every target names a module
 * the model has. `where` names the recipe field or file for errors. */
export function resolveLoraConfig(
  c: ModelConfig,
  raw: z.input<typeof LoraConfig>,
  where: string,
): LoraConfig & { target_modules: string[] } {
  const parsed = LoraConfig.safeParse(raw);
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    throw new UserError(`${[where, ...i.path].join('.')}: ${i.message}`);
  }
  const targets = parsed.data.target_modules ?? [...(LORA_DEFAULT_TARGETS[family(c)] ?? LORA_DEFAULT_TARGETS.llama)];
  for (const t of targets) if (UNTARGETABLE[t]) throw new UserError(`${where}.target_modules: ${t} cannot be adapted: ${UNTARGETABLE[t]}`);
  return { ...parsed.data, target_modules: targets };
}

/** The projections whose module's last name is a target, grouped by fused parameter. A target that
 * matches nothing is an error (PEFT raises too). */
export function selectTargets(
  projections: ProjectionParam[],
  targets: readonly string[],
  lenient = false,
): { param: string; width: number; targets: Projection[] }[] {
  const hit = new Set<string>();
  const out: { param: string; width: number; targets: Projection[] }[] = [];
  for (const { param, projections: ps } of projections) {
    const chosen = ps.filter((p) => {
      const last = p.module.slice(p.module.lastIndexOf('.') + 1);
      if (!targets.includes(last)) return false;
      hit.add(last);
      return true;
    });
    if (chosen.length) out.push({ param, width: fusedWidth(ps), targets: chosen });
  }
  const missing = targets.filter((t) => !hit.has(t));
  if (missing.length && !lenient)
    throw new UserError(`lora.target_modules: ${missing.join(', ')} match${missing.length === 1 ? 'es' : ''} no module of this model`);
  return out;
}

/** Adapters from PEFT tensors (checked: names, shapes, both halves of every pair). `file` names the
 * safetensors file for errors. */
export function adaptersFromPeft(
  projections: ProjectionParam[],
  cfg: LoraConfig & { target_modules: string[] },
  tensors: Record<string, NamedArray>,
  file: string,
  baseModel: string,
): LoraAdapters {
  const r = cfg.r,
    seen = new Set<string>();
  const byModule = new Map(projections.flatMap(({ param, projections: ps }) => ps.map((p) => [p.module, { param, p }] as const)));
  const groups = new Map<string, { targets: Projection[]; a: Float32Array[]; b: Float32Array[] }>();
  for (const name of Object.keys(tensors)) {
    const m = /^base_model\.model\.(.+)\.lora_([AB])(?:\.default)?\.weight$/.exec(name);
    if (!m)
      throw new UserError(
        `${file}: tensor ${name} is not a LoRA tensor in PEFT's layout (base_model.model.<module>.lora_A.weight / lora_B.weight)`,
      );
    if (m[2] === 'B') continue;
    const module = m[1],
      found = byModule.get(module);
    if (!found) throw new UserError(`${file}: tensor ${name} adapts ${module}, which this base model does not have as a projection`);
    const bName = name.replace('lora_A', 'lora_B');
    const A = tensors[name],
      B = tensors[bName];
    if (!B) throw new UserError(`${file}: ${name} has no ${bName}`);
    const { p } = found;
    if (A.shape.join() !== [r, p.in].join())
      throw new UserError(`${file}: ${name} has shape [${A.shape}], expected [${r}, ${p.in}] (r = ${r} from adapter_config.json)`);
    if (B.shape.join() !== [p.out, r].join()) throw new UserError(`${file}: ${bName} has shape [${B.shape}], expected [${p.out}, ${r}]`);
    seen.add(name).add(bName);
    const g = groups.get(found.param) ?? { targets: [], a: [], b: [] };
    g.targets.push(p);
    g.a.push(A.data);
    g.b.push(B.data);
    groups.set(found.param, g);
  }
  for (const name of Object.keys(tensors)) if (!seen.has(name)) throw new UserError(`${file}: ${name} has no matching lora_A tensor`);
  const slots: LoraSlot[] = [];
  for (const { param, projections: ps } of projections) {
    const g = groups.get(param);
    if (!g) continue;
    const order = ps.filter((p) => g.targets.includes(p)); // the fused order (q, k, v; gate, up)
    const idx = order.map((p) => g.targets.indexOf(p));
    const P = order.length,
      inW = order[0].in;
    const a = new Float32Array(inW * r * P);
    idx.forEach((src, j) => {
      const A = g.a[src];
      for (let k = 0; k < r; k++) for (let i = 0; i < inW; i++) a[i * r * P + j * r + k] = A[k * inW + i];
    });
    const bs = idx.map((src, j) => {
      const B = g.b[src],
        out = order[j].out,
        bt = new Float32Array(r * out);
      for (let k = 0; k < r; k++) for (let o = 0; o < out; o++) bt[k * out + o] = B[o * r + k];
      return bt;
    });
    slots.push(makeSlot(param, fusedWidth(ps), order, a, bs, r));
  }
  return new LoraAdapters(cfg, slots, baseModel);
}
