// Batched matrix product C[i] = A[i] B[i] with WebAssembly SIMD, over the TF.js WebAssembly heap
// (imported memory; arguments are byte offsets). A: [M, K], B: [K, N], C: [M, N], all row-major;
// aStride, bStride: floats between batch items (0 broadcasts one matrix over the batch).
// Register tile: 4 rows x 8 columns of C, so each loaded B vector feeds four multiply-adds.

@inline function tile4x8(a: usize, b: usize, c: usize, K: i32, ka: usize, nb: usize): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  for (let k = 0; k < K; k++) {
    const bp = b + <usize>k * nb, ap = a + (<usize>k << 2);
    const b0 = v128.load(bp), b1 = v128.load(bp, 16);
    const a0 = f32x4.splat(load<f32>(ap)), a1 = f32x4.splat(load<f32>(ap + ka));
    const a2 = f32x4.splat(load<f32>(ap + 2 * ka)), a3 = f32x4.splat(load<f32>(ap + 3 * ka));
    c00 = f32x4.add(c00, f32x4.mul(a0, b0)); c01 = f32x4.add(c01, f32x4.mul(a0, b1));
    c10 = f32x4.add(c10, f32x4.mul(a1, b0)); c11 = f32x4.add(c11, f32x4.mul(a1, b1));
    c20 = f32x4.add(c20, f32x4.mul(a2, b0)); c21 = f32x4.add(c21, f32x4.mul(a2, b1));
    c30 = f32x4.add(c30, f32x4.mul(a3, b0)); c31 = f32x4.add(c31, f32x4.mul(a3, b1));
  }
  v128.store(c, c00); v128.store(c, c01, 16);
  v128.store(c + nb, c10); v128.store(c + nb, c11, 16);
  v128.store(c + 2 * nb, c20); v128.store(c + 2 * nb, c21, 16);
  v128.store(c + 3 * nb, c30); v128.store(c + 3 * nb, c31, 16);
}

@inline function tile1x8(a: usize, b: usize, c: usize, K: i32, nb: usize): void {
  let c0 = f32x4.splat(0), c1 = f32x4.splat(0);
  for (let k = 0; k < K; k++) {
    const bp = b + <usize>k * nb;
    const a0 = f32x4.splat(load<f32>(a + (<usize>k << 2)));
    c0 = f32x4.add(c0, f32x4.mul(a0, v128.load(bp)));
    c1 = f32x4.add(c1, f32x4.mul(a0, v128.load(bp, 16)));
  }
  v128.store(c, c0); v128.store(c, c1, 16);
}

function matmul(a: usize, b: usize, c: usize, M: i32, K: i32, N: i32): void {
  const ka = <usize>K << 2, nb = <usize>N << 2, N8 = N & ~7, M4 = M & ~3;
  for (let n = 0; n < N8; n += 8) {
    const bn = b + (<usize>n << 2);
    let i = 0;
    for (; i < M4; i += 4) tile4x8(a + <usize>i * ka, bn, c + <usize>i * nb + (<usize>n << 2), K, ka, nb);
    for (; i < M; i++) tile1x8(a + <usize>i * ka, bn, c + <usize>i * nb + (<usize>n << 2), K, nb);
  }
  // Leftover columns (N not a multiple of 8): plain dot products.
  for (let i = 0; i < M; i++) {
    for (let n = N8; n < N; n++) {
      let s: f32 = 0;
      for (let k = 0; k < K; k++) s += load<f32>(a + <usize>i * ka + (<usize>k << 2)) * load<f32>(b + <usize>k * nb + (<usize>n << 2));
      store<f32>(c + <usize>i * nb + (<usize>n << 2), s);
    }
  }
}

export function bmm(a: usize, b: usize, c: usize, batch: i32, M: i32, K: i32, N: i32, aStride: i32, bStride: i32): void {
  for (let i = 0; i < batch; i++) {
    matmul(a + (<usize>(i * aStride) << 2), b + (<usize>(i * bStride) << 2), c + (<usize>(i * M * N) << 2), M, K, N);
  }
}
