// Strided box copy over the TF.js WebAssembly heap (imported memory; byte offsets): the wasm
// backend's own Slice first copies its whole input out of the heap (readSync) for every call.

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
