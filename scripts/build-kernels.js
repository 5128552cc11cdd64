// Builds the WebAssembly SIMD kernels (AssemblyScript sources in kernels/assembly) at install time.
// Runs as the `prepare` script of `npm install` / `npm ci`; nothing prebuilt is committed.
import { existsSync, readdirSync, mkdirSync, readFileSync } from 'node:fs';
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
/** True if a wasm binary has a non-empty data section (id 11). The kernels import the TF.js heap
 * as their memory, so static data would be written over live tensors at instantiation. */
function hasStaticData(bytes) {
  let i = 8;
  const leb = () => {
    let v = 0,
      shift = 0,
      b;
    do {
      b = bytes[i++];
      v |= (b & 0x7f) << shift;
      shift += 7;
    } while (b & 0x80);
    return v >>> 0;
  };
  while (i < bytes.length) {
    const id = bytes[i++],
      size = leb(),
      end = i + size;
    if (id === 11 && leb() > 0) return true;
    i = end;
  }
  return false;
}

for (const file of readdirSync(src).filter((f) => f.endsWith('.ts') && !f.startsWith('_'))) {
  const name = file.replace(/\.ts$/, '');
  execFileSync(
    process.execPath,
    [
      asc,
      join(src, file),
      '-o',
      join(out, `${name}.wasm`),
      '-O3',
      '--runtime',
      'stub',
      '--enable',
      'simd',
      '--noAssert',
      '--importMemory',
      '--initialMemory',
      '1',
      '--use',
      'abort=',
    ],
    { stdio: 'inherit' },
  );
  if (hasStaticData(readFileSync(join(out, `${name}.wasm`)))) {
    throw new Error(`build-kernels: ${file} has static data (a lookup table or string); kernels must not, they share the TF.js heap`);
  }
}
