// deepseek_v3 blocks without checkpoints: DeepSeekMoE routing worked by hand (group limit; the
// correction bias moves the choice, never the gate values), gradients through the gates against finite
// differences, the bias update on a skewed router, MLA's latent-cache decoding against the full
// forward, MTP's loss reaching the main model, expert load counts, and the config checks by field.
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/engine/backend.ts';
import { ATTENTION } from '../src/engine/kernels/attention-wasm.ts';
import { type ModelConfig, kvCacheBytesPerToken, parameterCount, validateConfig } from '../src/model/config.ts';
import { generate } from '../src/model/generate.ts';
import { LatentCache } from '../src/model/mla.ts';
import { ExpertLoad, route, routerGates, updateRouterBias } from '../src/model/moe.ts';
import { mtpLoss } from '../src/model/mtp.ts';
import { Transformer, parameterShapes } from '../src/model/transformer.ts';
import { lmLoss, loss as lossModule } from '../src/train/lm-loss.ts';
import { disposeGrads, lossAndGrads } from '../src/train/step.ts';
import { DEEPSEEK_MICRO } from './micro-configs.ts';

beforeAll(() => initBackend('wasm'));

/** A tiny DeepSeek-V3: MLA with q compression and yarn, layer 0 dense, layer 1 MoE (8 experts in 4
 * groups, 2 groups and 2 experts per token, one shared), one MTP module. */
const DS: ModelConfig = {
  ...DEEPSEEK_MICRO,
  vocab_size: 64,
  aux_loss_alpha: 0.001,
  rope_scaling: { rope_type: 'yarn', factor: 4, original_max_position_embeddings: 16, mscale: 1, mscale_all_dim: 0.8 },
};
const ROUTING = {
  n_routed_experts: 8,
  n_group: 4,
  topk_group: 2,
  num_experts_per_tok: 2,
  norm_topk_prob: true,
  routed_scaling_factor: 2.5,
};

/** A model whose weights are scaled up from the init (std 0.02 makes everything near-linear). */
function model(config: ModelConfig = DS, seed = 1): Transformer {
  const m = Transformer.init(config, seed);
  for (const [name, v] of Object.entries(m.params)) if (!/norm|bias/.test(name)) tf.tidy(() => v.assign(tf.mul(v, 10)));
  return m;
}

describe('DeepSeekMoE routing', () => {
  // Groups (2 experts each): g0 {0.9, 0.1} = 1.0, g1 {0.85, 0.05} = 0.9, g2 {0.8, 0.7} = 1.5, g3 {0.2, 0.3} = 0.5.
  const scores = Float32Array.from([0.9, 0.1, 0.85, 0.05, 0.8, 0.7, 0.2, 0.3]);

  it('keeps the topk_group best groups by the sum of their top 2, then takes the top k inside them', () => {
    // g2 and g0 stay; expert 2 (0.85, second best overall) is in g1 and loses to expert 4 (0.8).
    expect(Array.from(route(scores, null, ROUTING))).toEqual([0, 4]);
    expect(Array.from(route(scores, null, { ...ROUTING, n_group: 1, topk_group: 1 }))).toEqual([0, 2]); // no group limit
  });

  it('lets the correction bias change the choice but not the gate values', () => {
    const bias = Float32Array.from([0, 0, 0, 0, 0, 0.25, 0, 0]); // expert 5: 0.7 + 0.25 = 0.95 beats expert 0's 0.9
    const chosen = route(scores, bias, ROUTING);
    expect(Array.from(chosen)).toEqual([5, 0]);
    const gates = tf.tidy(() => routerGates(tf.tensor2d(scores, [1, 8]), chosen, ROUTING).arraySync()[0]);
    // The unbiased scores 0.7 and 0.9, normalised over the two and scaled by 2.5.
    expect(gates[0]).toBeCloseTo((0.7 / 1.6) * 2.5, 6);
    expect(gates[1]).toBeCloseTo((0.9 / 1.6) * 2.5, 6);
    // Without the bias: experts 0 and 4, gates from 0.9 and 0.8.
    const plain = tf.tidy(() => routerGates(tf.tensor2d(scores, [1, 8]), route(scores, null, ROUTING), ROUTING).arraySync()[0]);
    expect(plain[0]).toBeCloseTo((0.9 / 1.7) * 2.5, 6);
    expect(plain[1]).toBeCloseTo((0.8 / 1.7) * 2.5, 6);
  });

  it('has gradients through the gates that equal finite differences', () => {
    const m = model();
    const ids = tf.tensor2d(
      [
        [3, 9, 27, 1, 50, 8],
        [7, 7, 2, 33, 12, 60],
      ],
      [2, 6],
      'int32',
    );
    const probe = tf.randomNormal([12, 64], 0, 1, 'float32', 5);
    const router = m.params['layers.1.router'];
    const f = () => tf.sum(tf.mul(m.logits(m.hidden(ids)), probe)) as tf.Scalar;
    const { value, grads } = tf.variableGrads(f, [router]);
    value.dispose();
    const analytic = grads[router.name].dataSync() as Float32Array;
    const base = router.dataSync().slice() as Float32Array;
    const eps = 1e-3; // small enough to leave every token's choice of experts as it is
    let nonzero = 0;
    for (let i = 0; i < analytic.length; i += 13) {
      const at = (delta: number) => {
        const w = base.slice();
        w[i] += delta;
        tf.tidy(() => router.assign(tf.tensor(w, router.shape)));
        return tf.tidy(() => f().dataSync()[0]);
      };
      const numeric = (at(eps) - at(-eps)) / (2 * eps);
      expect(Math.abs(numeric - analytic[i])).toBeLessThan(0.02 * Math.abs(analytic[i]) + 0.03);
      if (Math.abs(analytic[i]) > 0.1) nonzero++;
    }
    expect(nonzero).toBeGreaterThan(5);
    tf.tidy(() => router.assign(tf.tensor(base, router.shape)));
    tf.dispose([ids, probe, grads[router.name]]);
    m.dispose();
  });

  it('counts tokens per expert when asked, and the bias update moves a skewed router toward balance', () => {
    const m = model(DS, 2);
    // Skew: every token's affinity to expert 3 gets a large constant push.
    tf.tidy(() =>
      m.params['layers.1.router'].assign(tf.add(m.params['layers.1.router'], tf.mul(tf.oneHot(tf.tensor1d([3], 'int32'), 8), 0.3))),
    );
    const ids = tf.tensor2d(
      Array.from({ length: 64 }, (_, i) => (i * 7) % 64),
      [4, 16],
      'int32',
    );
    const load = new ExpertLoad();
    m.expertLoad = load;
    tf.tidy(() => m.hidden(ids));
    const counts = load.counts.get(1)!;
    expect(counts.reduce((a, b) => a + b, 0)).toBe(64 * 2); // every token, 2 experts each, none dropped
    const before = load.imbalance(1);
    expect(before).toBeGreaterThan(1.5);
    for (let step = 0; step < 40; step++) {
      load.reset();
      tf.tidy(() => m.hidden(ids));
      updateRouterBias(m.params, load, 0.02);
    }
    load.reset();
    tf.tidy(() => m.hidden(ids));
    expect(load.imbalance(1)).toBeLessThan(before);
    expect(load.imbalance(1)).toBeLessThan(1.5);
    // The bias is no gradient's business.
    expect(m.params['layers.1.router_bias'].trainable).toBe(false);
    ids.dispose();
    m.dispose();
  });
});

describe('MLA', () => {
  it('decodes from the latent cache with the tokens and log-probs of the full forward', () => {
    for (const q_lora_rank of [16, null]) {
      const m = model({ ...DS, q_lora_rank });
      const prompts = [
        [5, 9, 11, 3],
        [60, 2, 2, 40],
      ];
      const out = generate(m, { decode: (ids) => ids.join(' ') }, prompts, { maxNewTokens: 8, temperature: 0 });
      const full = tf.tidy(() =>
        tf
          .logSoftmax(
            m.forward(
              tf.tensor2d(
                prompts.map((p, i) => [...p, ...out[i].tokens]),
                [2, 12],
                'int32',
              ),
            ),
          )
          .arraySync(),
      );
      out.forEach((c, b) => {
        expect(c.tokens).toHaveLength(8);
        c.tokens.forEach((t, j) => {
          const row = full[b][3 + j];
          expect(t).toBe(row.indexOf(Math.max(...row))); // greedy = the full forward's argmax
          expect(Math.abs(c.logprobs[j] - row[t])).toBeLessThan(1e-4);
        });
      });
      m.dispose();
    }
  });

  it('runs the fused attention kernels when dn + dr = dv, with the loss and gradients of the composed path', async () => {
    const m = model({ ...DS, qk_nope_head_dim: 8, qk_rope_head_dim: 8, v_head_dim: 16, num_nextn_predict_layers: 0, aux_loss_alpha: 0 });
    const rows = [
      [5, 9, 11, 3, 60, 2, 2, 40],
      [1, 2, 3, 4, 5, 6, 7, 8],
    ];
    const batch = {
      inputs: Int32Array.from(rows.flatMap((r) => r.slice(0, -1))),
      targets: Int32Array.from(rows.flatMap((r) => r.slice(1))),
      weights: null,
      B: 2,
      T: 7,
      normaliser: 14,
    };
    // One document per row: the packed path's document mask is the causal mask, and it runs composedAttention.
    const packed = {
      ...batch,
      packed: { positions: Int32Array.from([0, 1, 2, 3, 4, 5, 6, 0, 1, 2, 3, 4, 5, 6]), documents: new Int32Array(14) },
    };
    const kernels = async (b: typeof batch) => (await tf.profile(() => tf.tidy(() => lmLoss(m, b)))).kernels.map((k) => k.name);
    expect(await kernels(batch)).toContain(ATTENTION);
    expect(await kernels(packed)).not.toContain(ATTENTION);
    const fused = lossAndGrads(m.params, () => lmLoss(m, batch)),
      composed = lossAndGrads(m.params, () => lmLoss(m, packed));
    expect(Math.abs(fused.loss - composed.loss)).toBeLessThan(1e-5);
    for (const [name, g] of Object.entries(fused.grads)) {
      const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(g, composed.grads[name]))).dataSync()[0]);
      const size = tf.tidy(() => tf.max(tf.abs(g)).dataSync()[0]);
      expect(diff, name).toBeLessThanOrEqual(1e-4 * Math.max(1, size));
    }
    disposeGrads(fused.grads);
    disposeGrads(composed.grads);
    m.dispose();
  });

  it('caches kv_lora_rank + qk_rope_head_dim numbers per token and layer', () => {
    const m = model();
    const cache = m.newCache(16) as LatentCache;
    expect(cache).toBeInstanceOf(LatentCache);
    tf.tidy(() => m.hidden(tf.tensor2d([[1, 2, 3, 4, 5]], [1, 5], 'int32'), cache));
    expect(cache.length).toBe(5);
    expect(cache.bytes / 5).toBe(kvCacheBytesPerToken(DS));
    expect(kvCacheBytesPerToken(DS)).toBe(2 * (12 + 8) * 4);
    // A GQA model with the same heads and head size caches 2 x heads x head size per layer.
    const gqa: ModelConfig = { ...DS, model_type: 'llama', head_dim: 16 } as ModelConfig;
    for (const k of Object.keys(gqa))
      if (/lora|qk_|v_head|expert|group|first_k|nextn|routed|aux|rope_scaling/.test(k)) delete (gqa as Record<string, unknown>)[k];
    expect(kvCacheBytesPerToken(gqa)).toBe(2 * 2 * 2 * 16 * 4);
    cache.dispose();
    m.dispose();
  });
});

describe('MTP and training', () => {
  const batch = () => {
    const inputs = Int32Array.from({ length: 24 }, (_, i) => (i * 13 + 5) % 64);
    const targets = Int32Array.from({ length: 24 }, (_, i) => (i * 13 + 18) % 64);
    return { inputs, targets, weights: null, B: 2, T: 12, normaliser: 24 };
  };

  it('sends the MTP loss gradient into the main model', () => {
    const m = model();
    const b = batch();
    const { value, grads } = tf.variableGrads(() =>
      tf.tidy(() => {
        const hidden = m.hidden(tf.tensor2d(b.inputs, [2, 12], 'int32'));
        return mtpLoss(m, hidden, b)!;
      }),
    );
    value.dispose();
    const norm = (name: string) => tf.tidy(() => tf.norm(grads[m.params[name].name]).dataSync()[0]);
    for (const name of ['embed', 'layers.0.wq_a', 'layers.0.wkv_b', 'layers.1.router', 'norm', 'layers.2.eh_proj', 'layers.2.head'])
      expect(norm(name)).toBeGreaterThan(0);
    expect(grads[m.params.lm_head.name]).toBeUndefined(); // the MTP head is its own
    disposeGrads(grads);
    m.dispose();
  });

  it('adds mtp_loss_weight x MTP loss and the balance loss to the LM loss, and lossAndGrads skips the router bias', () => {
    const m = model();
    const b = batch();
    const plain = model({ ...DS, mtp_loss_weight: 0, aux_loss_alpha: 0 });
    const mtp = tf.tidy(() => mtpLoss(m, m.hidden(tf.tensor2d(b.inputs, [2, 12], 'int32')), b)!.dataSync()[0]);
    const withTerms = tf.tidy(() => lmLoss(m, b).dataSync()[0]),
      without = tf.tidy(() => lmLoss(plain, b).dataSync()[0]);
    expect(mtp).toBeGreaterThan(0);
    expect(withTerms - without).toBeGreaterThan(mtp * 0.999); // plus a small positive balance term
    expect(withTerms - without - mtp).toBeLessThan(0.01);
    const parts: Record<string, number> = tf.tidy(() => {
      const out = lossModule(m, b);
      return { total: out.loss.dataSync()[0], ...Object.fromEntries(Object.entries(out.metrics!).map(([k, v]) => [k, v.dataSync()[0]])) };
    });
    expect(parts.mtp_loss).toBeCloseTo(mtp, 5);
    expect(parts.lm_loss).toBeCloseTo(without, 4);
    expect(parts.balance_loss).toBeGreaterThan(0);
    expect(parts.total).toBeCloseTo(withTerms, 5);
    const { grads } = lossAndGrads(m.params, () => lmLoss(m, b));
    expect(grads['layers.1.router_bias']).toBeUndefined();
    expect(grads['layers.2.router_bias']).toBeUndefined(); // the MTP block's MoE too
    expect(Object.keys(grads)).toHaveLength(Object.keys(m.params).length - 2);
    disposeGrads(grads);
    m.dispose();
    plain.dispose();
  });

  it('packs rows like separate documents (main and MTP loss)', () => {
    const m = model({ ...DS, aux_loss_alpha: 0 });
    const doc1 = [3, 8, 13, 21, 34, 55],
      doc2 = [2, 7, 1, 8, 28, 18];
    const shift = (d: number[]) => ({ inputs: d.slice(0, -1), targets: d.slice(1) });
    const a = shift(doc1),
      c = shift(doc2);
    const packed = {
      inputs: Int32Array.from([...a.inputs, ...c.inputs]),
      targets: Int32Array.from([...a.targets, ...c.targets]),
      weights: Float32Array.from([1, 1, 1, 1, 1, 1, 1, 1, 1, 1]),
      B: 1,
      T: 10,
      normaliser: 10,
      packed: { positions: Int32Array.from([0, 1, 2, 3, 4, 0, 1, 2, 3, 4]), documents: Int32Array.from([0, 0, 0, 0, 0, 1, 1, 1, 1, 1]) },
    };
    const rows = {
      inputs: Int32Array.from([...a.inputs, ...c.inputs]),
      targets: Int32Array.from([...a.targets, ...c.targets]),
      weights: null,
      B: 2,
      T: 5,
      normaliser: 10,
    };
    const lp = tf.tidy(() => lmLoss(m, packed).dataSync()[0]),
      lr = tf.tidy(() => lmLoss(m, rows).dataSync()[0]);
    expect(Math.abs(lp - lr)).toBeLessThan(1e-5);
    m.dispose();
  });

  it('builds from its config alone, as rollout and gradient workers do, and takes flat weights in parameterShapes order', () => {
    const a = model(),
      b = Transformer.init(DS, 7);
    const flat = new Float32Array(Object.values(parameterShapes(DS)).reduce((n, s) => n + s.reduce((x, y) => x * y, 1), 0));
    let o = 0;
    for (const name of Object.keys(parameterShapes(DS))) {
      const d = a.params[name].dataSync();
      flat.set(d, o);
      o += d.length;
    }
    expect(o).toBe(parameterCount(DS));
    b.loadFlat(flat);
    const ids = tf.tensor2d([[1, 2, 3, 4]], [1, 4], 'int32');
    const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(a.forward(ids), b.forward(ids)))).dataSync()[0]);
    expect(diff).toBe(0);
    expect(parameterCount(DS, true)).toBeLessThan(parameterCount(DS));
    ids.dispose();
    a.dispose();
    b.dispose();
  });
});

describe('deepseek_v3 config checks', () => {
  const bad = (patch: Partial<ModelConfig>, field: RegExp) =>
    expect(() => validateConfig({ ...DS, ...patch } as ModelConfig, 'model')).toThrow(field);
  it('names the field that does not fit', () => {
    bad({ num_experts_per_tok: 9 }, /model\.num_experts_per_tok \(9\) must not exceed model\.n_routed_experts/);
    bad({ topk_group: 5 }, /model\.topk_group \(5\) must not exceed model\.n_group/);
    bad({ n_group: 3 }, /model\.n_routed_experts \(8\) must divide into model\.n_group \(3\)/);
    bad({ n_group: 8, topk_group: 2 }, /model\.n_group \(8\) must leave at least 2 experts per group/);
    bad({ kv_lora_rank: 40 }, /model\.kv_lora_rank \(40\) must not exceed/);
    bad({ kv_lora_rank: 0 }, /model\.kv_lora_rank must be a positive integer/);
    bad({ qk_rope_head_dim: 7 }, /model\.qk_rope_head_dim must be even/);
    bad({ v_head_dim: 2.5 }, /model\.v_head_dim must be a positive integer/);
    bad({ num_key_value_heads: 1 }, /model\.num_key_value_heads \(1\) must equal/);
    bad({ scoring_func: 'softmax' }, /model\.scoring_func "softmax" is not supported; supported: sigmoid/);
    bad({ topk_method: 'greedy' }, /model\.topk_method "greedy" is not supported; supported: noaux_tc/);
    bad({ num_nextn_predict_layers: 2 }, /model\.num_nextn_predict_layers must be 0 or 1/);
    expect(() => validateConfig({ ...DS, model_type: 'llama' } as ModelConfig)).toThrow(/belong to model_type deepseek_v3/);
  });
});
