// LoRA adapters as a GGUF adapter file for llama.cpp, so the llama.cpp rollout engine writes the
// frozen base once and, at each weight sync, only the adapters (a few MB instead of the whole model).
//
// The format is what llama.cpp's llama_adapter_lora_init reads (src/llama-adapter.cpp; the files
// convert_lora_to_gguf.py writes): metadata general.type = "adapter", general.architecture = the
// base's, adapter.type = "lora", adapter.lora.alpha (f32); for each adapted weight, two tensors named
// after the base tensor, `<base>.lora_a` of ggml dims [in, r] (PEFT's A [r, in] as stored) and
// `<base>.lora_b` of ggml dims [r, out] (PEFT's B [out, r]). llama.cpp adds
// scale * alpha / r * B (A x) to the weight's product, where `scale` is the one given when the adapter
// is set on a context (1 here) and r is read from the tensors, so alpha is written as s * r with s
// r1kit's own scale: plain LoRA's alpha, and rsLoRA's alpha / sqrt(r) comes out right too.
// For the llama architecture the q and k rows of the base are permuted for llama.cpp's adjacent-pair
// RoPE (gguf.ts), so B's rows of q_proj and k_proj (its output side) are permuted the same way.
import type { LoraAdapters } from '../model/lora.ts';
import { type ModelConfig, headDim } from '../model/config.ts';
import { type GgufTensor, type GgufValue, ggufArchitecture, permuteRope, writeGgufFile } from './gguf.ts';

/** The Hugging Face modules an adapter may target, and the llama.cpp base tensor each one adapts. */
export const GGUF_LORA_TENSORS: Record<string, string> = {
  q_proj: 'attn_q',
  k_proj: 'attn_k',
  v_proj: 'attn_v',
  o_proj: 'attn_output',
  gate_proj: 'ffn_gate',
  up_proj: 'ffn_up',
  down_proj: 'ffn_down',
};

/** Why llama.cpp cannot run these adapters on this model (null: it can). `targets` are the module
 * names of lora.target_modules (or the family's defaults). Checked before a run, not at a sync. */
export function ggufLoraProblem(c: ModelConfig, targets: readonly string[]): string | null {
  const off = targets.filter((t) => !(t in GGUF_LORA_TENSORS));
  if (!off.length) return null;
  return (
    `the llama.cpp rollout engine loads LoRA adapters on ${Object.keys(GGUF_LORA_TENSORS).join(', ')} only, ` +
    `not ${off.join(', ')} (${c.model_type ?? 'llama'} model): drop ${off.length === 1 ? 'it' : 'them'} from lora.target_modules, or use rollout.engine: tfjs`
  );
}

/** The llama.cpp base tensor a PEFT module path adapts, e.g. model.layers.3.self_attn.q_proj ->
 * blk.3.attn_q.weight, with the module's short name. */
function baseTensorOf(module: string): { tensor: string; short: string } {
  const m = /^model\.layers\.(\d+)\.(?:self_attn|mlp)\.([a-z_]+)$/.exec(module);
  const tensor = m && GGUF_LORA_TENSORS[m[2]];
  if (!m || !tensor) throw new Error(`gguf-lora: module ${module} has no llama.cpp tensor (ggufLoraProblem should have refused it)`);
  return { tensor: `blk.${m[1]}.${tensor}.weight`, short: m[2] };
}

/** The metadata and tensors of an adapter file for `adapters` on a model of config `c`. */
export function ggufLoraContents(
  c: ModelConfig,
  adapters: LoraAdapters,
  name = 'r1kit-adapter',
): { metadata: Record<string, GgufValue>; tensors: GgufTensor[] } {
  const { arch, fam } = ggufArchitecture(c);
  const r = adapters.config.r;
  const metadata: Record<string, GgufValue> = {
    'general.architecture': { type: 'string', value: arch },
    'general.type': { type: 'string', value: 'adapter' },
    'general.name': { type: 'string', value: name },
    'general.alignment': { type: 'u32', value: 32 },
    'adapter.type': { type: 'string', value: 'lora' },
    'adapter.lora.alpha': { type: 'f32', value: adapters.scale * r },
  };
  const heads: Record<string, number> = { q_proj: c.num_attention_heads, k_proj: c.num_key_value_heads };
  const D = headDim(c);
  const tensors: GgufTensor[] = [];
  const peft = adapters.toPeft(); // A [r, in] and B [out, r] by module, row-major: ggml's [in, r] and [r, out]
  for (const key of Object.keys(peft)) {
    const m = /^base_model\.model\.(.+)\.lora_A\.weight$/.exec(key);
    if (!m) continue;
    const A = peft[key],
      B = peft[key.replace('lora_A', 'lora_B')];
    const { tensor, short } = baseTensorOf(m[1]);
    const [out, inW] = [B.shape[0], A.shape[1]];
    const permuted = fam === 'llama' && heads[short] !== undefined;
    const b = () => (permuted ? permuteRope(B.data, heads[short], D, r) : B.data);
    tensors.push(
      { name: `${tensor}.lora_a`, dims: [inW, r], dtype: 'f32', values: () => A.data },
      { name: `${tensor}.lora_b`, dims: [r, out], dtype: 'f32', values: b },
    );
  }
  return { metadata, tensors };
}

/** Writes `adapters` as a llama.cpp LoRA adapter file at `path`. */
export function writeGgufLora(path: string, c: ModelConfig, adapters: LoraAdapters): void {
  const { metadata, tensors } = ggufLoraContents(c, adapters);
  writeGgufFile(path, metadata, tensors);
}
