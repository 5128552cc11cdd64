// What `r1 inspect` reports about a model directory: its architecture from config.json, its weights
// from the safetensors headers alone (checked against the config, no tensor data read), and which
// tokenizer files, chat template and generation settings come with it.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { biases, family, hasQkNorm, headDim } from './config.ts';
import { checkTensors, checkpointHeaders, readModelConfig } from './checkpoint.ts';
import { resolveModelDir } from './hub.ts';

export function describeModel(spec: string): Record<string, unknown> {
  const dir = resolveModelDir(spec);
  const { config: c, raw } = readModelConfig(dir);
  const { entries, fileOf } = checkpointHeaders(dir);
  checkTensors(c, Object.fromEntries(Object.entries(entries).map(([k, e]) => [k, e.shape])), (n) => fileOf[n], join(dir, 'config.json'));
  const count: Record<string, number> = {};
  let parameters = 0;
  for (const e of Object.values(entries)) {
    const n = e.shape.reduce((a, b) => a * b, 1);
    parameters += n;
    count[e.dtype] = (count[e.dtype] ?? 0) + n;
  }
  const files = [...new Set(Object.values(fileOf))];
  const readJson = (f: string) => (existsSync(join(dir, f)) ? (JSON.parse(readFileSync(join(dir, f), 'utf8')) as Record<string, unknown>) : null);
  const tokenizerConfig = readJson('tokenizer_config.json'), generation = readJson('generation_config.json');
  return {
    model: spec,
    dir,
    family: family(c),
    architectures: raw.architectures ?? null,
    parameters,
    dtype: Object.keys(count).sort((a, b) => count[b] - count[a]).join('+'),
    layers: c.num_hidden_layers,
    hidden_size: c.hidden_size,
    heads: c.num_attention_heads,
    kv_heads: c.num_key_value_heads,
    head_dim: headDim(c),
    intermediate_size: c.intermediate_size,
    context: c.max_position_embeddings,
    vocabulary: c.vocab_size,
    rope: { theta: c.rope_theta, scaling: c.rope_scaling ?? null },
    rms_norm_eps: c.rms_norm_eps,
    tie_word_embeddings: c.tie_word_embeddings,
    biases: biases(c),
    qk_norm: hasQkNorm(c),
    weight_files: files.length,
    weight_bytes: files.reduce((n, f) => n + statSync(f).size, 0),
    tokenizer: existsSync(join(dir, 'tokenizer.json')),
    chat_template: tokenizerConfig?.chat_template !== undefined || existsSync(join(dir, 'chat_template.jinja')) || existsSync(join(dir, 'chat_template.json')),
    eos_token_id: generation?.eos_token_id ?? raw.eos_token_id ?? null,
  };
}
