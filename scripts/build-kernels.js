// Builds the WebAssembly SIMD kernels (AssemblyScript sources in kernels/assembly) at install time.
// Runs as the `prepare` script of `npm install` / `npm ci`; nothing prebuilt is committed.
import { existsSync, readdirSync, mkdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'kernels', 'assembly');
const out = join(root, 'kernels', 'build');
if (!existsSync(src)) process.exit(0);
mkdirSync(out, { recursive: true });
const asc = join(root, 'node_modules', 'assemblyscript', 'bin', 'asc.js');
if (!existsSync(asc)) {
  console.warn('build-kernels: assemblyscript is not installed (a production install); kernels not built');
  process.exit(0);
}
for (const file of readdirSync(src).filter((f) => f.endsWith('.ts') && !f.startsWith('_'))) {
  const name = file.replace(/\.ts$/, '');
  execFileSync(
    process.execPath,
    [asc, join(src, file), '-o', join(out, `${name}.wasm`), '-O3', '--runtime', 'stub', '--enable', 'simd', '--noAssert', '--initialMemory', '1'],
    { stdio: 'inherit' },
  );
}
