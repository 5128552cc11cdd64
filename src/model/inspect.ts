// What `r1 inspect` reports about a model directory: its architecture from config.json, its weights
// from the safetensors headers alone (checked against the config, no tensor data read), and which
// tokenizer files, chat template and generation settings come with it.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { biases, deepseek, family, hasQkNorm, headDim, kvCacheBytesPerToken, parameterCount } from './config.ts';
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
  const readJson = (f: string) =>
    existsSync(join(dir, f)) ? (JSON.parse(readFileSync(join(dir, f), 'utf8')) as Record<string, unknown>) : null;
  const tokenizerConfig = readJson('tokenizer_config.json'),
    generation = readJson('generation_config.json');
  return {
    model: spec,
    dir,
    family: family(c),
    architectures: raw.architectures ?? null,
    parameters,
    dtype: Object.keys(count)
      .sort((a, b) => count[b] - count[a])
      .join('+'),
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
    kv_cache_bytes_per_token: kvCacheBytesPerToken(c),
    ...(family(c) === 'deepseek_v3' && deepseekFields(c)),
    weight_files: files.length,
    weight_bytes: files.reduce((n, f) => n + statSync(f).size, 0),
    tokenizer: existsSync(join(dir, 'tokenizer.json')),
    chat_template:
      tokenizerConfig?.chat_template !== undefined ||
      existsSync(join(dir, 'chat_template.jinja')) ||
      existsSync(join(dir, 'chat_template.json')),
    eos_token_id: generation?.eos_token_id ?? raw.eos_token_id ?? null,
  };
}

/** MLA, MoE and MTP sizes of a deepseek_v3 model. */
function deepseekFields(c: Parameters<typeof deepseek>[0]): Record<string, unknown> {
  const d = deepseek(c);
  return {
    q_lora_rank: d.q_lora_rank,
    kv_lora_rank: d.kv_lora_rank,
    qk_nope_head_dim: d.qk_nope_head_dim,
    qk_rope_head_dim: d.qk_rope_head_dim,
    v_head_dim: d.v_head_dim,
    dense_layers: d.first_k_dense_replace,
    routed_experts: d.n_routed_experts,
    shared_experts: d.n_shared_experts,
    experts_per_token: d.num_experts_per_tok,
    expert_groups: `${d.topk_group} of ${d.n_group}`,
    moe_intermediate_size: d.moe_intermediate_size,
    mtp_layers: d.num_nextn_predict_layers,
    // What a token goes through at inference (num_experts_per_tok routed experts; MTP is off then), and the
    // MTP module, which training runs besides.
    active_parameters: parameterCount({ ...c, num_nextn_predict_layers: 0 }, true),
    mtp_parameters: parameterCount(c) - parameterCount({ ...c, num_nextn_predict_layers: 0 }),
  };
}
