// Model sizes for the benchmarks (all llama layout, vocabulary 512): tiny is the reference model of
// DESIGN.md; small (about 10 M parameters) and base (about 50 M) show how cost grows with the model.
// `--torch` runs the project's PyTorch baseline, scripts/torch_baseline.py, at the same size, next to ours.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TINY, type ModelConfig } from '../../model/config.ts';

export const SIZES: Record<'tiny' | 'small' | 'base', ModelConfig> = {
  tiny: TINY,
  small: { ...TINY, hidden_size: 384, num_hidden_layers: 6, num_attention_heads: 6, num_key_value_heads: 2, intermediate_size: 1024 },
  base: { ...TINY, hidden_size: 640, num_hidden_layers: 12, num_attention_heads: 10, num_key_value_heads: 2, intermediate_size: 1728 },
};
export type SizeName = keyof typeof SIZES;

/** The size named by --model, or null when --model is a checkpoint (or absent). */
export function sizeNamed(model: unknown): SizeName | null {
  return typeof model === 'string' && model in SIZES ? (model as SizeName) : null;
}

/** Timed repetitions for a size: fewer as the model grows (and with --quick). */
export function repetitions(size: SizeName, quick: boolean, full: number): number {
  const n = size === 'base' ? Math.max(1, Math.round(full / 5)) : size === 'small' ? Math.max(1, Math.round(full / 2.5)) : full;
  return quick ? Math.max(1, Math.min(n, Math.ceil(full / 3))) : n;
}

const here = dirname(fileURLToPath(import.meta.url));
export const TORCH_BASELINE = resolve(here, '..', '..', '..', 'scripts', 'torch_baseline.py');

/** torch_baseline.py's line at this size: { tokens_per_s, ms_per_step | ms_per_run, threads, ... },
 * or { error } when Python or PyTorch is missing (saying how to install it). R1_PYTHON names the Python. */
export function runTorch(mode: 'train' | 'generate', c: ModelConfig, extra: Record<string, number>): Record<string, unknown> {
  const python = process.env.R1_PYTHON || (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
  if (spawnSync(python, ['-c', 'import torch'], { stdio: 'ignore' }).status !== 0) {
    return {
      error: `${python} cannot import torch: install it with \`apt-get install python3-torch libopenblas0-pthread\` (or set R1_PYTHON to a Python that has it)`,
    };
  }
  const args = [
    TORCH_BASELINE,
    '--mode',
    mode,
    '--rope-theta',
    String(c.rope_theta ?? 10000),
    '--vocab',
    String(c.vocab_size),
    '--d-model',
    String(c.hidden_size),
    '--layers',
    String(c.num_hidden_layers),
    '--heads',
    String(c.num_attention_heads),
    '--kv-heads',
    String(c.num_key_value_heads),
    '--ffn',
    String(c.intermediate_size),
    ...Object.entries(extra).flatMap(([k, v]) => [`--${k}`, String(v)]),
  ];
  const r = spawnSync(python, args, { encoding: 'utf8', timeout: 900_000 });
  const last = r.stdout?.trim().split('\n').at(-1);
  try {
    return JSON.parse(last ?? '') as Record<string, unknown>;
  } catch {
    return { error: `torch_baseline.py failed: ${(r.stderr || r.error?.message || 'no output').trim().split('\n').at(-1)}` };
  }
}

/** The benchmark line of PyTorch, with ours / PyTorch's throughput. */
export function torchLine(bench: string, size: SizeName, torch: Record<string, unknown>, ours: number): Record<string, unknown> {
  const theirs = Number(torch.tokens_per_s);
  return {
    bench,
    impl: 'pytorch',
    model: size,
    ...torch,
    ...(theirs > 0 && { ours_tokens_per_s: ours, ratio_ours_to_pytorch: +(ours / theirs).toFixed(3) }),
  };
}
