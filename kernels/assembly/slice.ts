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
