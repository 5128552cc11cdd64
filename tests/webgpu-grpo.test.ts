// A short GRPO run on backend webgpu learns (the reward rises): tests/fixtures/rl/rl.yaml's pretrain
// and GRPO stages with backend: webgpu. On the software adapter it takes a few minutes, so it runs
// only with R1_WEBGPU_SLOW=1 (scripts/gpu-check.sh sets it); the fast equality checks are in
// webgpu-backend.test.ts.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/engine/backend.ts';
import { probeWebGPU, softwareAllowedByEnv, webgpuMissing } from '../src/engine/webgpu.ts';
import { readMetrics } from '../src/metrics/logger.ts';
import { runRecipe } from '../src/pipeline/run.ts';
import { loadRecipe } from '../src/recipe/index.ts';

const slow = process.env.R1_WEBGPU_SLOW === '1';
const missing = slow ? webgpuMissing(await probeWebGPU(true), true) : 'R1_WEBGPU_SLOW is not 1';
if (slow && missing) console.warn(`webgpu GRPO test skipped: ${missing}`);
const quiet = { log: () => {}, progressStream: Object.assign(new Writable({ write: (_c, _e, cb) => cb() }), { isTTY: false }) };
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

afterAll(async () => {
  if (slow) await initBackend('wasm');
});

describe.skipIf(missing !== null)('GRPO on backend webgpu', () => {
  it('raises the reward', async () => {
    const runs = mkdtempSync(join(tmpdir(), 'r1-webgpu-grpo-'));
    try {
      const recipe = loadRecipe(resolve('tests/fixtures/rl/rl.yaml'), { set: [`output_dir=${runs}`] });
      recipe.name = 'rl-micro-webgpu';
      recipe.backend = 'webgpu';
      recipe.allow_software_gpu = softwareAllowedByEnv() || true;
      recipe.stages = recipe.stages.slice(0, 2);
      for (const s of recipe.stages) (s as { train_workers?: number }).train_workers = 1;
      const { runDir, manifest } = await runRecipe(recipe, quiet);
      expect(manifest.backend).toBe('webgpu');
      const rewards = readMetrics(join(runDir, 'grpo', 'metrics.jsonl')).map((r) => r.reward as number);
      console.log(`webgpu GRPO reward: first 3 ${mean(rewards.slice(0, 3)).toFixed(3)} -> last 3 ${mean(rewards.slice(-3)).toFixed(3)}`);
      expect(mean(rewards.slice(-3))).toBeGreaterThan(mean(rewards.slice(0, 3)) + 0.2);
    } finally {
      rmSync(runs, { recursive: true, force: true });
    }
  }, 600_000);
});
