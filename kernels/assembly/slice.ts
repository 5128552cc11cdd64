// Strided box copy and row gather over the TF.js WebAssembly heap (imported memory; byte offsets):
// the wasm backend's Slice copies its whole input out of the heap per call, its Gather is generic.

/** Copies an [n0, n1, n2] grid of contiguous runs of `run` bytes, starting at x with byte strides
 * s0, s1, s2, into out back to back. */
export function copyBox(x: usize, out: usize, n0: i32, n1: i32, n2: i32, run: usize, s0: usize, s1: usize, s2: usize): void {
  let o = out;
  for (let i0 = 0; i0 < n0; i0++) {
    for (let i1 = 0; i1 < n1; i1++) {
      let src = x + <usize>i0 * s0 + <usize>i1 * s1;
      for (let i2 = 0; i2 < n2; i2++, src += s2, o += run) memory.copy(o, src, run);
    }
  }
}

/** Gather of rows: out[b, o, i] = x[b, o, idx[b, i]] where each element is a `row`-byte run;
 * x is [batch, outer, dim, row], idx is int32 [batch, n]. Indices are checked by the caller. */
export function gatherRows(x: usize, idx: usize, out: usize, batch: i32, outer: i32, dim: i32, n: i32, row: usize): void {
  let o = out;
  for (let b = 0; b < batch; b++) {
    const ib = idx + (<usize>(b * n) << 2);
    for (let j = 0; j < outer; j++) {
      const base = x + <usize>((b * outer + j) * dim) * row;
      for (let i = 0; i < n; i++, o += row) memory.copy(o, base + <usize>load<i32>(ib + (<usize>i << 2)) * row, row);
    }
  }
}

/** out[b] = x[b]^T for x [batch, R, C] of 4-byte elements: 4 x 4 blocks transposed in registers. */
export function transpose(x: usize, out: usize, batch: i32, R: i32, C: i32): void {
  const R4 = R & ~3, C4 = C & ~3, xr = <usize>C << 2, orow = <usize>R << 2;
  for (let b = 0; b < batch; b++) {
    const xb = x + (<usize>(b * R * C) << 2), ob = out + (<usize>(b * R * C) << 2);
    for (let r = 0; r < R4; r += 4) {
      const x0 = xb + <usize>r * xr;
      for (let c = 0; c < C4; c += 4) {
        const p = x0 + (<usize>c << 2);
        const a0 = v128.load(p), a1 = v128.load(p + xr), a2 = v128.load(p + 2 * xr), a3 = v128.load(p + 3 * xr);
        const t0 = v128.shuffle<f32>(a0, a1, 0, 4, 1, 5), t1 = v128.shuffle<f32>(a2, a3, 0, 4, 1, 5);
        const t2 = v128.shuffle<f32>(a0, a1, 2, 6, 3, 7), t3 = v128.shuffle<f32>(a2, a3, 2, 6, 3, 7);
        const q = ob + <usize>c * orow + (<usize>r << 2);
        v128.store(q, v128.shuffle<f32>(t0, t1, 0, 1, 4, 5));
        v128.store(q + orow, v128.shuffle<f32>(t0, t1, 2, 3, 6, 7));
        v128.store(q + 2 * orow, v128.shuffle<f32>(t2, t3, 0, 1, 4, 5));
        v128.store(q + 3 * orow, v128.shuffle<f32>(t2, t3, 2, 3, 6, 7));
      }
      for (let c = C4; c < C; c++) {
        for (let i = 0; i < 4; i++) store<u32>(ob + ((<usize>c * R + r + i) << 2), load<u32>(xb + ((<usize>(r + i) * C + c) << 2)));
      }
    }
    for (let r = R4; r < R; r++) {
      for (let c = 0; c < C; c++) store<u32>(ob + ((<usize>c * R + r) << 2), load<u32>(xb + ((<usize>r * C + c) << 2)));
    }
  }
}
