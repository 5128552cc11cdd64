// DeepSeek-V3 checkpoints against the project's own PyTorch reference, tests/reference/hf_reference.py
// (as tests/hf-models.test.ts for the dense families): random tiny checkpoints with MLA (with and
// without q_lora_rank), yarn, sigmoid group-limited MoE with shared experts and one MTP layer;
// `r1 logits --mtp` must give the reference's logits and MTP logits, `r1 convert` and saving a loaded
// model must write the reference's tensors back (the correction bias still F32), and a config that does
// not fit is refused naming the file and field. Live against PyTorch where it runs; elsewhere against
// the checked-in fixtures (tests/reference/fixtures/deepseek-hf.json).
import * as tf from '@tensorflow/tfjs-core';
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../src/cli/main.ts';
import { initBackend } from '../src/engine/backend.ts';
import { readSafetensorsHeader } from '../src/engine/safetensors.ts';
import { loadModel, saveModel } from '../src/model/checkpoint.ts';
import { type ModelConfig, kvCacheBytesPerToken } from '../src/model/config.ts';
import { generate } from '../src/model/generate.ts';
import { describeModel } from '../src/model/inspect.ts';
import { Transformer } from '../src/model/transformer.ts';
import { TORCH, announceTorch, reference, referenceBatch } from './hf-reference.ts';
import { REGENERATE, loadSuite, storedDigest, summaryDiff, writeCheckpoint } from './reference/checkpoint.ts';

announceTorch('tests/deepseek-hf.test.ts');

const dir = mkdtempSync(join(tmpdir(), 'r1-deepseek-'));
beforeAll(() => initBackend('wasm'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** hf_reference.py compare: its JSON report (exit status 1 when not ok). */
async function compare(model: string, ids: string, logits: string): Promise<Record<string, unknown>> {
  try {
    return await reference('compare', '--model', model, '--ids', ids, '--logits', logits);
  } catch (e) {
    return JSON.parse(
      String((e as { stdout?: string }).stdout ?? '{}')
        .trim()
        .split('\n')
        .at(-1) || '{}',
    );
  }
}

async function r1(...args: string[]): Promise<{ code: number; stderr: string }> {
  let stderr = '';
  const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => ((stderr += String(chunk)), true));
  const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  try {
    return { code: await main(args), stderr };
  } finally {
    spy.mockRestore();
    out.mockRestore();
  }
}

// The checkpoints of tests/reference/cases.json: with and without q_lora_rank, f32 and bf16, one with
// attention biases and no rope scaling. Two rows of one length and a ragged one, past yarn's original
// context of 128 for one of them.
const { cases: CASES, fixtures: FIXTURES } = loadSuite('deepseek-hf');
const IDS = FIXTURES['q-lora-f32'].ids.map((s) => s.join(',')).join(';');
const path = (name: string) => join(dir, name);

// By PyTorch where it runs (and its logits, MTP logits included, in <name>.ref.json), else from the
// fixtures; either way the tensors are the fixture's.
beforeAll(async () => {
  if (TORCH) {
    await referenceBatch(
      CASES.flatMap((c) => [
        [
          'make',
          '--family',
          c.family,
          '--out',
          path(c.name),
          '--dtype',
          c.dtype,
          '--shards',
          String(c.shards),
          ...Object.entries(c.set ?? {}).flatMap(([k, v]) => ['--set', `${k}=${JSON.stringify(v)}`]),
        ],
        ['logits', '--model', path(c.name), '--ids', IDS, '--out', path(`${c.name}.ref.json`)],
      ]),
    );
  }
  for (const c of CASES) {
    if (TORCH) {
      const ref = JSON.parse(readFileSync(path(`${c.name}.ref.json`), 'utf8'));
      const stale = `${c.name}: the fixture's logits are stale: ${REGENERATE}`;
      expect(summaryDiff(ref.logits, FIXTURES[c.name].logits), stale).toBeLessThanOrEqual(1e-6);
      expect(summaryDiff(ref.mtp_logits, FIXTURES[c.name].mtp_logits!), stale).toBeLessThanOrEqual(1e-6);
    } else {
      writeCheckpoint(FIXTURES[c.name], path(c.name));
    }
    expect(storedDigest(path(c.name)), `${c.name}: the tensors are not the fixture's: ${REGENERATE}`).toBe(FIXTURES[c.name].digest);
  }
}, 180_000);

describe('deepseek_v3 checkpoints against hf_reference.py', () => {
  for (const c of CASES) {
    it(`${c.name}: r1 logits --mtp equal the reference to 1e-4; the r1 convert copy reads back equal`, async () => {
      expect(readdirSync(path(c.name)).filter((f) => f.endsWith('.safetensors'))).toHaveLength(2);
      expect(await r1('logits', '--model', path(c.name), '--ids', IDS, '--output', path(`${c.name}.r1.json`), '--mtp')).toEqual({
        code: 0,
        stderr: '',
      });
      const mine = JSON.parse(readFileSync(path(`${c.name}.r1.json`), 'utf8'));
      expect(mine.mtp_logits).toHaveLength(3);
      expect(mine.mtp_logits[2]).toHaveLength(8); // T - 1 rows
      expect(summaryDiff(mine.logits, FIXTURES[c.name].logits)).toBeLessThanOrEqual(1e-4);
      expect(summaryDiff(mine.mtp_logits, FIXTURES[c.name].mtp_logits!)).toBeLessThanOrEqual(1e-4);
      if (TORCH) {
        const res = await compare(path(c.name), IDS, path(`${c.name}.r1.json`));
        expect(res).toMatchObject({ ok: true, logits_compared: true, mtp_logits_compared: true, unused_weights: [] });
        expect(res.max_abs_diff).toBeLessThanOrEqual(1e-4);
        expect(res.mtp_logits_max_abs_diff).toBeLessThanOrEqual(1e-4);
      }

      const copy = path(`${c.name}-copy`);
      expect(await r1('convert', '--model', path(c.name), '--output', copy, '--max-shard-size', '400KB')).toEqual({ code: 0, stderr: '' });
      // The copy holds the reference's tensors, byte for byte, in new shards.
      expect(storedDigest(copy)).toBe(FIXTURES[c.name].digest);
      if (TORCH) {
        const back = await reference('logits', '--model', copy, '--ids', IDS, '--out', path(`${c.name}.copy.json`));
        expect(back.unused_weights).toEqual([]);
        expect(readFileSync(path(`${c.name}.copy.json`), 'utf8')).toBe(readFileSync(path(`${c.name}.ref.json`), 'utf8'));
      }
      expect(JSON.parse(readFileSync(join(copy, 'config.json'), 'utf8'))).toEqual(
        JSON.parse(readFileSync(join(path(c.name), 'config.json'), 'utf8')),
      );
      // DeepSeek keeps the routers' correction biases in F32 whatever the checkpoint's dtype.
      const headers = readdirSync(copy)
        .filter((f) => f.endsWith('.safetensors'))
        .map((f) => readSafetensorsHeader(join(copy, f)));
      expect(headers.length).toBeGreaterThan(1);
      const dtypes = Object.fromEntries(headers.flatMap((h) => Object.entries(h).map(([k, e]) => [k, e.dtype])));
      expect(dtypes['model.layers.1.mlp.gate.e_score_correction_bias']).toBe('F32');
      expect(dtypes['model.layers.2.mlp.gate.e_score_correction_bias']).toBe('F32');
      expect(dtypes['model.layers.2.eh_proj.weight']).toBe(c.dtype === 'f32' ? 'F32' : 'BF16');
    }, 60_000);
  }

  it('inspects a deepseek_v3 directory: MLA cache size, experts, MTP', () => {
    const d = describeModel(path('q-lora-f32'));
    expect(d).toMatchObject({
      family: 'deepseek_v3',
      layers: 2,
      mtp_layers: 1,
      routed_experts: 16,
      experts_per_token: 4,
      shared_experts: 1,
      kv_lora_rank: 32,
    });
    expect(d.kv_cache_bytes_per_token).toBe(2 * (32 + 8) * 4);
    // The MTP module is the model's layers.<num_hidden_layers>.* tensors; a token at inference goes
    // through fewer weights than the main model holds (4 of 16 routed experts).
    const m = loadModel(path('q-lora-f32'));
    const count = (keep: (name: string) => boolean) =>
      Object.entries(m.params)
        .filter(([n]) => keep(n))
        .reduce((a, [, v]) => a + v.size, 0);
    expect(d.parameters).toBe(count(() => true));
    expect(d.mtp_parameters).toBe(count((n) => n.startsWith('layers.2.')));
    expect(d.active_parameters).toBeLessThan((d.parameters as number) - (d.mtp_parameters as number));
    m.dispose();
  });

  it('generates from a loaded checkpoint with the latent cache, as the full forward predicts', () => {
    const m = loadModel(path('no-q-lora-f32'));
    const prompt = [5, 17, 300, 2];
    const [out] = generate(m, { decode: (ids) => ids.join(' ') }, [prompt], { maxNewTokens: 6, temperature: 0 });
    const lp = tf.tidy(() => tf.logSoftmax(m.forward(tf.tensor2d([[...prompt, ...out.tokens]], [1, 10], 'int32'))).arraySync()[0]);
    out.tokens.forEach((t, j) => expect(Math.abs(out.logprobs[j] - lp[3 + j][t])).toBeLessThan(1e-4));
    m.dispose();
  });

  it("saves a loaded checkpoint back to the reference's tensors, MTP module and F32 correction biases included", () => {
    for (const name of ['q-lora-f32', 'no-q-lora-bf16-bias']) {
      const m = loadModel(path(name));
      const cfg = FIXTURES[name].config as { bos_token_id: number; eos_token_id: number };
      saveModel(path(`${name}-saved`), m, { bos: cfg.bos_token_id, eos: cfg.eos_token_id });
      m.dispose();
      expect(storedDigest(path(`${name}-saved`)), name).toBe(FIXTURES[name].digest);
    }
  });

  it.skipIf(!TORCH)('saves a model made here in a layout the reference reads to the same logits', async () => {
    const config: ModelConfig = {
      model_type: 'deepseek_v3',
      vocab_size: 1000,
      hidden_size: 32,
      num_hidden_layers: 2,
      num_attention_heads: 2,
      num_key_value_heads: 2,
      intermediate_size: 48,
      max_position_embeddings: 64,
      rope_theta: 10000,
      rms_norm_eps: 1e-6,
      tie_word_embeddings: true,
      q_lora_rank: null,
      kv_lora_rank: 12,
      qk_nope_head_dim: 8,
      qk_rope_head_dim: 8,
      v_head_dim: 8,
      first_k_dense_replace: 1,
      n_routed_experts: 8,
      n_shared_experts: 1,
      moe_intermediate_size: 16,
      num_experts_per_tok: 2,
      n_group: 2,
      topk_group: 1,
      routed_scaling_factor: 1.5,
      num_nextn_predict_layers: 1,
    };
    const m = Transformer.init(config, 3);
    for (const [name, v] of Object.entries(m.params)) if (!/norm|bias/.test(name)) tf.tidy(() => v.assign(tf.mul(v, 10)));
    tf.tidy(() => m.params['layers.1.router_bias'].assign(tf.randomNormal([8], 0, 0.05, 'float32', 1)));
    saveModel(path('made-here'), m, { bos: 0, eos: 1 });
    m.dispose();
    const ids = '1,2,3,4,5,6,7,8,9,10;11,12,13,14,15,16,17,18,19,20';
    expect(await r1('logits', '--model', path('made-here'), '--ids', ids, '--output', path('made-here.json'), '--mtp')).toEqual({
      code: 0,
      stderr: '',
    });
    expect(await compare(path('made-here'), ids, path('made-here.json'))).toMatchObject({ ok: true, mtp_logits_compared: true });
    expect(kvCacheBytesPerToken(config)).toBe(2 * 20 * 4);
  });

  it('refuses configs that do not fit, naming the file and the field', async () => {
    const bad = async (patch: Record<string, unknown>, message: RegExp) => {
      const d = path(`bad-${Object.keys(patch).join('-')}`);
      cpSync(path('q-lora-f32'), d, { recursive: true });
      const cfg = JSON.parse(readFileSync(join(d, 'config.json'), 'utf8'));
      writeFileSync(join(d, 'config.json'), JSON.stringify({ ...cfg, ...patch }));
      const r = await r1('logits', '--model', d, '--ids', '1,2,3', '--output', join(d, 'out.json'));
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/config\.json/);
      expect(r.stderr).toMatch(message);
    };
    await bad({ topk_group: 5 }, /topk_group \(5\) must not exceed .*n_group \(4\)/);
    await bad({ num_experts_per_tok: 17 }, /num_experts_per_tok \(17\) must not exceed .*n_routed_experts \(16\)/);
    await bad({ n_group: 3 }, /n_routed_experts \(16\) must divide into .*n_group \(3\)/);
    await bad({ scoring_func: 'softmax' }, /scoring_func "softmax" is not supported/);
    await bad({ topk_method: 'group_limited_greedy' }, /topk_method "group_limited_greedy" is not supported/);
    await bad({ kv_lora_rank: 1000 }, /kv_lora_rank \(1000\) must not exceed/);
  }, 60_000);
});
