// `r1 doctor`: what this machine can compute with. Backends (available or why not), the WebGPU
// adapters Dawn finds (software or not), the matrix-product path on WebAssembly (the machine's
// OpenBLAS or XNNPACK, and how to get the faster one), rollout engines, CPU cores and memory;
// --json for scripts.
import type { Command } from 'commander';
import { createRequire } from 'node:module';
import { availableParallelism, cpus, freemem, totalmem } from 'node:os';

const require = createRequire(import.meta.url);

export type BackendStatus = { backend: string; package: string; available: boolean; why?: string };
export type Doctor = {
  node: string;
  platform: string;
  cpu: { model: string; cores: number };
  memory: { total_gb: number; free_gb: number };
  backends: BackendStatus[];
  auto: string;
  /** Matrix products on the wasm backend: which path runs, and why not BLAS when it does not. */
  matmul: { path: 'blas' | 'xnnpack'; library?: string; config?: string; threads?: number; why?: string };
  adapters: { name: string; vendor: string; architecture: string; description: string; via: string; software: boolean }[];
  rollout_engines: { engine: string; available: boolean; why?: string }[];
};

function installed(pkg: string): boolean {
  try {
    require.resolve(pkg);
    return true;
  } catch {
    return false;
  }
}

export async function doctor(): Promise<Doctor> {
  const { PROVIDERS, loadError } = await import('../../engine/backend.ts');
  const { probeWebGPU, webgpuMissing } = await import('../../engine/webgpu.ts');
  const probe = await probeWebGPU(true);
  const backends: BackendStatus[] = [];
  for (const p of PROVIDERS) {
    if (p.name === 'webgpu') {
      const hw = webgpuMissing(probe, false);
      backends.push({ backend: 'webgpu', package: `${p.pkg} + webgpu`, available: hw === null, ...(hw && { why: hw }) });
      continue;
    }
    if (!installed(p.pkg)) {
      backends.push({ backend: p.name, package: p.pkg, available: false, why: `not installed (npm install ${p.pkg})` });
      continue;
    }
    const err = loadError(p.pkg);
    backends.push({ backend: p.name, package: p.pkg, available: err === null, ...(err && { why: `installed but does not load: ${err}` }) });
  }
  const first = backends.find((b) => b.available);
  const matmul = await matmulStatus();
  const llama = installed('node-llama-cpp');
  return {
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    cpu: { model: cpus()[0]?.model.trim() ?? 'unknown', cores: availableParallelism() },
    memory: { total_gb: +(totalmem() / 2 ** 30).toFixed(1), free_gb: +(freemem() / 2 ** 30).toFixed(1) },
    backends,
    auto: first ? first.backend : 'none',
    matmul,
    adapters: probe.adapters.map((a) => ({
      name: a.name,
      vendor: a.vendor,
      architecture: a.architecture,
      description: a.description,
      via: a.via,
      software: a.software,
    })),
    rollout_engines: [
      { engine: 'tfjs', available: true },
      {
        engine: 'llama.cpp',
        available: llama,
        ...(!llama && { why: 'node-llama-cpp is not installed (npm install node-llama-cpp@3.21.1)' }),
      },
    ],
  };
}

/** The path R1_MATMUL (default auto) resolves to here, without starting a backend. */
async function matmulStatus(): Promise<Doctor['matmul']> {
  const { BLAS_INSTALL_HINT, MATMUL_ENV, loadBlas } = await import('../../engine/kernels/blas.ts');
  const choice = process.env[MATMUL_ENV] ?? 'auto';
  const s = loadBlas();
  if (choice === 'xnnpack')
    return { path: 'xnnpack', why: `${MATMUL_ENV}=xnnpack${s.loaded ? ` (BLAS would load: ${s.blas.library})` : ''}` };
  if (s.loaded) return { path: 'blas', library: s.blas.library, config: s.blas.config, threads: s.blas.threads };
  return { path: 'xnnpack', why: s.reason.includes(BLAS_INSTALL_HINT) ? s.reason : `${s.reason}; ${BLAS_INSTALL_HINT}` };
}

function formatMatmul(m: Doctor['matmul']): string {
  return m.path === 'blas'
    ? `  blas: ${m.library} (${m.config}), ${m.threads} thread${m.threads === 1 ? '' : 's'} per JS thread (R1_BLAS_THREADS); R1_MATMUL=xnnpack to compare`
    : `  xnnpack (WebAssembly SIMD): ${m.why}`;
}

export function formatDoctor(d: Doctor): string {
  const lines = [
    `node ${d.node} on ${d.platform}; CPU ${d.cpu.model}, ${d.cpu.cores} cores; memory ${d.memory.total_gb} GB (${d.memory.free_gb} GB free)`,
    'backends (in the order auto tries them):',
    ...d.backends.map((b) => `  ${b.available ? 'yes' : 'no '} ${b.backend.padEnd(10)} ${b.package}${b.why ? ` - ${b.why}` : ''}`),
    `  auto picks: ${d.auto}`,
    'matrix products on wasm:',
    formatMatmul(d.matmul),
    'WebGPU adapters:',
    ...(d.adapters.length
      ? d.adapters.map(
          (a) =>
            `  ${a.name}${a.vendor ? ` (${a.vendor})` : ''} via ${a.via === 'default' ? 'Vulkan/Metal/D3D12' : 'OpenGL ES'}, ${a.software ? 'software (used only with allow_software_gpu: true)' : 'hardware'}${a.description ? `: ${a.description}` : ''}`,
        )
      : ['  none']),
    'rollout engines:',
    ...d.rollout_engines.map((e) => `  ${e.available ? 'yes' : 'no '} ${e.engine}${e.why ? ` - ${e.why}` : ''}`),
  ];
  return lines.join('\n') + '\n';
}

export function register(program: Command): void {
  program
    .command('doctor')
    .description('what this machine can compute with: backends (and why not), WebGPU adapters, rollout engines, CPU cores, memory')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const d = await doctor();
      process.stdout.write(o.json ? JSON.stringify(d, null, 2) + '\n' : formatDoctor(d));
    });
}
