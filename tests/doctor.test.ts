// `r1 doctor` (what this machine can compute with) and the error for `backend: webgpu` where no
// adapter fits, given before any stage runs.
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { doctor, formatDoctor } from '../src/cli/commands/doctor.ts';
import { webgpuMissing, type WebGPUProbe } from '../src/engine/webgpu.ts';
import { runR1 } from './cli-run.ts';

const r1 = (...args: string[]) => runR1(args);

describe('r1 doctor', () => {
  it('says which path runs matrix products on wasm, and how to get OpenBLAS when it is XNNPACK', async () => {
    const { loadBlas } = await import('../src/engine/kernels/blas.ts');
    const d = await doctor();
    const text = formatDoctor(d);
    if (loadBlas().loaded && process.env.R1_MATMUL !== 'xnnpack') {
      expect(d.matmul.path).toBe('blas');
      expect(text).toMatch(/matrix products on wasm:\n  blas: \S*libopenblas/);
    } else {
      expect(d.matmul.path).toBe('xnnpack');
      expect(text).toMatch(/matrix products on wasm:\n  xnnpack/);
      if (process.env.R1_MATMUL !== 'xnnpack') expect(d.matmul.why).toMatch(/apt-get install libopenblas0-pthread/);
    }
  });

  it('lists every backend in auto order, available or why not, and what auto picks', async () => {
    const d = await doctor();
    expect(d.backends.map((b) => b.backend)).toEqual(['tensorflow', 'webgpu', 'tensorflow', 'wasm', 'cpu']);
    expect(d.backends.map((b) => b.package)).toContain('@tensorflow/tfjs-node-gpu');
    for (const b of d.backends) if (!b.available) expect(b.why, b.package).toMatch(/\w/);
    expect(d.backends.find((b) => b.backend === 'wasm')!.available).toBe(true);
    expect(d.backends.find((b) => b.backend === 'cpu')!.available).toBe(true);
    expect(d.auto).toBe(d.backends.find((b) => b.available)!.backend);
    // A software adapter never makes webgpu available to auto.
    const webgpu = d.backends.find((b) => b.backend === 'webgpu')!;
    if (d.adapters.length && d.adapters.every((a) => a.software)) {
      expect(webgpu.available).toBe(false);
      expect(webgpu.why).toMatch(/allow_software_gpu/);
    }
    for (const a of d.adapters) expect(typeof a.software).toBe('boolean');
    expect(d.rollout_engines.find((e) => e.engine === 'tfjs')!.available).toBe(true);
    const llama = d.rollout_engines.find((e) => e.engine === 'llama.cpp')!;
    if (!llama.available) expect(llama.why).toMatch(/node-llama-cpp@3\.21\.1/);
    expect(d.cpu.cores).toBeGreaterThan(0);
    expect(d.memory.total_gb).toBeGreaterThan(0);
    expect(formatDoctor(d)).toMatch(/auto picks: /);
  }, 60_000);

  it('--json prints the same report as JSON; plain text otherwise', async () => {
    const json = await r1('doctor', '--json');
    expect(json.code).toBe(0);
    const d = JSON.parse(json.stdout);
    expect(d.backends).toHaveLength(5);
    expect(d).toHaveProperty('adapters');
    expect(d).toHaveProperty('rollout_engines');
    const text = await r1('doctor');
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/backends \(in the order auto tries them\)/);
    expect(text.stdout).toMatch(/rollout engines:/);
  }, 60_000);
});

describe('backend: webgpu where no adapter fits', () => {
  const none: WebGPUProbe = { packages: true, adapters: [] };
  const soft: WebGPUProbe = {
    packages: true,
    adapters: [{ via: 'opengles', name: 'llvmpipe', vendor: '', architecture: '', description: 'Mesa', software: true }],
  };
  const hard: WebGPUProbe = {
    packages: true,
    adapters: [{ via: 'default', name: 'RTX', vendor: 'nvidia', architecture: '', description: '', software: false }],
  };

  it('says what is missing and how to get it', () => {
    expect(webgpuMissing(none, false)).toMatch(/no WebGPU adapter.*Vulkan.*apt-get install/);
    expect(webgpuMissing(soft, false)).toMatch(/only the software adapter 'llvmpipe'.*allow_software_gpu: true/);
    expect(webgpuMissing(soft, true)).toBeNull();
    expect(webgpuMissing(hard, false)).toBeNull();
    expect(webgpuMissing({ packages: false, packageError: 'Cannot find package webgpu', adapters: [] }, true)).toMatch(/npm install/);
  });

  it('r1 run exits 2 with that message before any stage runs', async () => {
    const saved = process.env.R1_ALLOW_SOFTWARE_GPU;
    delete process.env.R1_ALLOW_SOFTWARE_GPU;
    try {
      const dir = mkdtempSync(join(tmpdir(), 'r1-webgpu-'));
      writeFileSync(join(dir, 'corpus.jsonl'), '{"text": "abc"}\n');
      writeFileSync(
        join(dir, 'r.yaml'),
        [
          'name: needs-gpu',
          'backend: webgpu',
          'output_dir: runs',
          'model: { vocab_size: 0, hidden_size: 32, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1, intermediate_size: 64 }',
          'tokenizer: { train: { datasets: [corpus.jsonl], vocab_size: 270 } }',
          'stages:',
          '  - { name: pretrain, type: pretrain, datasets: [corpus.jsonl], max_steps: 1, seq_length: 8 }',
          '',
        ].join('\n'),
      );
      const r = await r1('run', join(dir, 'r.yaml'));
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/backend 'webgpu' is not available: /);
      expect(r.stderr).toMatch(/allow_software_gpu|no WebGPU adapter/);
      expect(existsSync(join(dir, 'runs', 'needs-gpu', 'pretrain'))).toBe(false);
    } finally {
      if (saved !== undefined) process.env.R1_ALLOW_SOFTWARE_GPU = saved;
    }
  }, 60_000);
});
