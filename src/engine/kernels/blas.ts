// The machine's BLAS (OpenBLAS, Debian's libopenblas0-pthread) for matrix products on the wasm
// backend: XNNPACK on 128-bit WebAssembly SIMD tops out near 17 GFLOP/s a thread, a native sgemm
// (AVX2/AVX-512) runs several times that. The library is reached through koffi (an optional npm
// dependency with prebuilt binaries) and called with pointers straight into the TF.js WebAssembly
// heap: no copy in or out. Where koffi or the library is missing, matrix products stay on XNNPACK.
//
// Threads: OpenBLAS keeps one thread count for the whole process, shared by the main thread and
// every worker thread (gradient and rollout workers load the same library). r1kit parallelises
// by data across its own worker threads, so each loader sets it to one: every JS thread runs its
// sgemm calls on itself, and N workers use N cores, not N x cores. R1_BLAS_THREADS overrides it
// (for the main thread alone, e.g. a benchmark without workers).
import { existsSync } from 'node:fs';
import { UserError } from '../../errors.ts';
import { type Koffi, loadKoffi } from '../ffi.ts';

/** Environment variable choosing the matrix-product path: `auto` (BLAS where it loads, the
 * default), `blas` (fail when it does not load) or `xnnpack` (TF.js's own, for A/B runs).
 * Worker threads read it too, so they follow the main thread. */
export const MATMUL_ENV = 'R1_MATMUL';
export const MATMUL_CHOICES = ['auto', 'blas', 'xnnpack'] as const;
export type MatmulChoice = (typeof MATMUL_CHOICES)[number];
/** Overrides the OpenBLAS thread count (default 1: see the file comment). */
export const BLAS_THREADS_ENV = 'R1_BLAS_THREADS';
/** Path of a BLAS library with the CBLAS interface to use instead of the search below. */
export const BLAS_LIB_ENV = 'R1_BLAS_LIB';

export const BLAS_INSTALL_HINT = 'apt-get install libopenblas0-pthread (Debian/Ubuntu)';

const ROW_MAJOR = 101,
  NO_TRANS = 111,
  TRANS = 112;

type Sgemm = (
  order: number,
  transA: number,
  transB: number,
  M: number,
  N: number,
  K: number,
  alpha: number,
  a: number,
  lda: number,
  b: number,
  ldb: number,
  beta: number,
  c: number,
  ldc: number,
) => void;

export type Blas = {
  /** The library file loaded. */
  library: string;
  /** OpenBLAS's build description (architecture kernel, thread limit). */
  config: string;
  threads: number;
  sgemm: Sgemm;
  /** Native address of an ArrayBuffer's first byte (the wasm heap's base). */
  addressOf(buffer: ArrayBufferLike): number;
};

export type BlasStatus = { loaded: true; blas: Blas } | { loaded: false; reason: string };

const MULTIARCH: Record<string, string> = {
  x64: 'x86_64-linux-gnu',
  arm64: 'aarch64-linux-gnu',
  ppc64: 'powerpc64le-linux-gnu',
  s390x: 's390x-linux-gnu',
};

/** Library files tried in order: R1_BLAS_LIB, Debian's pthread OpenBLAS, then by soname. */
export function blasCandidates(): string[] {
  const own = process.env[BLAS_LIB_ENV];
  if (own) return [own];
  const arch = MULTIARCH[process.arch];
  const debian = arch ? [`/usr/lib/${arch}/openblas-pthread/libopenblas.so.0`, `/usr/lib/${arch}/libopenblas.so.0`] : [];
  return [...debian.filter((p) => existsSync(p)), 'libopenblas.so.0', 'libopenblas.dylib'];
}

let status: BlasStatus | null = null;

/** Loads koffi and the BLAS library, once per thread; why not when it cannot. */
export function loadBlas(): BlasStatus {
  if (status) return status;
  const ffi = loadKoffi();
  if (!('koffi' in ffi)) return (status = { loaded: false, reason: ffi.reason });
  const { koffi } = ffi;
  const failures: string[] = [];
  for (const library of blasCandidates()) {
    let lib: ReturnType<Koffi['load']>;
    try {
      lib = koffi.load(library);
    } catch (e) {
      failures.push(`${library}: ${(e as Error).message.split('\n')[0]}`);
      continue;
    }
    try {
      const sgemm = lib.func(
        'void cblas_sgemm(int, int, int, int, int, int, float, uintptr_t, int, uintptr_t, int, float, uintptr_t, int)',
      ) as Sgemm;
      // memmove(p, p, 0) returns p: the address koffi passes for an ArrayBuffer, which is its data
      // in place. Resolved through the BLAS library's handle, which reaches the C library it links.
      const memmove = lib.func('uintptr_t memmove(void *, void *, size_t)') as (
        a: ArrayBufferLike,
        b: ArrayBufferLike,
        n: number,
      ) => number | bigint;
      let config = 'unknown BLAS',
        threads = 1;
      try {
        const setThreads = lib.func('void openblas_set_num_threads(int)') as (n: number) => void;
        threads = Math.max(1, Math.floor(Number(process.env[BLAS_THREADS_ENV] ?? 1)) || 1);
        setThreads(threads);
        config = String((lib.func('const char *openblas_get_config(void)') as () => string)());
      } catch {
        // A BLAS other than OpenBLAS (given by R1_BLAS_LIB): its own threading applies.
      }
      return (status = {
        loaded: true,
        blas: { library, config, threads, sgemm, addressOf: (buffer) => Number(memmove(buffer, buffer, 0)) },
      });
    } catch (e) {
      failures.push(`${library}: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  return (status = { loaded: false, reason: `no BLAS library loads (${failures.join('; ')}); ${BLAS_INSTALL_HINT}` });
}

/** The path matrix products take on the wasm backend: the environment's choice (R1_MATMUL),
 * resolved against what loads. `blas` asked by name and missing is an error saying how to get it. */
export function resolveMatmul(choice: string = process.env[MATMUL_ENV] ?? 'auto'): 'blas' | 'xnnpack' {
  if (!(MATMUL_CHOICES as readonly string[]).includes(choice)) {
    throw new UserError(`${MATMUL_ENV}=${choice} is not a matrix-product path; valid: ${MATMUL_CHOICES.join(', ')}`);
  }
  if (choice === 'xnnpack') return 'xnnpack';
  const s = loadBlas();
  if (s.loaded) return 'blas';
  if (choice === 'blas') throw new UserError(`${MATMUL_ENV}=blas but ${s.reason}`);
  return 'xnnpack';
}

/** C = op(A) op(B) for `batch` row-major matrices at byte offsets of one heap (base: its address):
 * op(A) is M x K (A stored K x M when transA), op(B) K x N; aStride, bStride: floats between
 * consecutive matrices (0 broadcasts one matrix); C is dense [batch, M, N]. */
export function sgemmBatch(
  blas: Blas,
  base: number,
  a: number,
  b: number,
  c: number,
  batch: number,
  M: number,
  N: number,
  K: number,
  transA: boolean,
  transB: boolean,
  aStride: number,
  bStride: number,
): void {
  const lda = transA ? M : K,
    ldb = transB ? K : N;
  const ta = transA ? TRANS : NO_TRANS,
    tb = transB ? TRANS : NO_TRANS;
  for (let i = 0; i < batch; i++) {
    blas.sgemm(
      ROW_MAJOR,
      ta,
      tb,
      M,
      N,
      K,
      1,
      base + a + 4 * i * aStride,
      lda,
      base + b + 4 * i * bStride,
      ldb,
      0,
      base + c + 4 * i * M * N,
      N,
    );
  }
}

/** One strided product with explicit leading dimensions (floats), alpha and beta: for kernels
 * that multiply blocks of larger tensors in place (attention heads). */
export function sgemmStrided(
  blas: Blas,
  base: number,
  transA: boolean,
  transB: boolean,
  M: number,
  N: number,
  K: number,
  alpha: number,
  a: number,
  lda: number,
  b: number,
  ldb: number,
  beta: number,
  c: number,
  ldc: number,
): void {
  blas.sgemm(
    ROW_MAJOR,
    transA ? TRANS : NO_TRANS,
    transB ? TRANS : NO_TRANS,
    M,
    N,
    K,
    alpha,
    base + a,
    lda,
    base + b,
    ldb,
    beta,
    base + c,
    ldc,
  );
}
