// Row-wise pieces of causal attention for when the machine's BLAS does its matrix products
// (src/engine/kernels/attention-wasm.ts): sgemm writes a head's scaled scores [T, S] to scratch
// space, these turn them into probabilities (forward, or recomputed from the saved log-sum-exp for
// the backward pass) and into the gradient of the scores. Query t sits at position S - T + t and
// sees keys 0..S-T+t; probabilities past that are written as zeros, so the full products that
// follow stay causal. Arguments named like tensors are byte offsets in the TF.js heap.

import { exp4, logf } from './_simd';

@inline function hmax(a: v128): f32 {
  return max(max(f32x4.extract_lane(a, 0), f32x4.extract_lane(a, 1)), max(f32x4.extract_lane(a, 2), f32x4.extract_lane(a, 3)));
}

@inline function hsum(a: v128): f32 {
  const t = f32x4.add(a, v128.shuffle<f32>(a, a, 2, 3, 0, 1));
  return f32x4.extract_lane(t, 0) + f32x4.extract_lane(t, 1);
}

@inline function exp1(x: f32): f32 {
  return f32x4.extract_lane(exp4(f32x4.splat(x)), 0);
}

/** Zeros floats n..S-1 of a row. */
@inline function zeroTail(row: usize, n: i32, S: i32): void {
  for (let j = n; j < S; j++) store<f32>(row + (<usize>j << 2), 0);
}

/** In place over sc [T, S] (scaled scores): each row becomes its causal softmax, zeros after;
 * lse[t] (floats, contiguous) gets the row's log-sum-exp. */
export function causalSoftmax(sc: usize, lse: usize, T: i32, S: i32): void {
  for (let t = 0; t < T; t++) {
    const row = sc + ((<usize>t * <usize>S) << 2), n = S - T + t + 1, n4 = n & ~3;
    let mv = f32x4.splat(-Infinity);
    let j = 0;
    for (; j < n4; j += 4) mv = f32x4.max(mv, v128.load(row + (<usize>j << 2)));
    let m = hmax(mv);
    for (; j < n; j++) m = max(m, load<f32>(row + (<usize>j << 2)));
    const mm = f32x4.splat(m);
    let lv = f32x4.splat(0);
    for (j = 0; j < n4; j += 4) {
      const p = exp4(f32x4.sub(v128.load(row + (<usize>j << 2)), mm));
      v128.store(row + (<usize>j << 2), p);
      lv = f32x4.add(lv, p);
    }
    let l = hsum(lv);
    for (; j < n; j++) {
      const p = exp1(load<f32>(row + (<usize>j << 2)) - m);
      store<f32>(row + (<usize>j << 2), p);
      l += p;
    }
    const inv = f32x4.splat(1 / l);
    for (j = 0; j < n4; j += 4) v128.store(row + (<usize>j << 2), f32x4.mul(v128.load(row + (<usize>j << 2)), inv));
    for (; j < n; j++) store<f32>(row + (<usize>j << 2), load<f32>(row + (<usize>j << 2)) / l);
    zeroTail(row, n, S);
    store<f32>(lse + (<usize>t << 2), m + logf(l));
  }
}

/** In place over sc [T, S] (scaled scores): probabilities exp(score - lse[t]), zeros after each
 * row's last visible key. */
export function causalProbs(sc: usize, lse: usize, T: i32, S: i32): void {
  for (let t = 0; t < T; t++) {
    const row = sc + ((<usize>t * <usize>S) << 2), n = S - T + t + 1, n4 = n & ~3;
    const l = load<f32>(lse + (<usize>t << 2)), ll = f32x4.splat(l);
    let j = 0;
    for (; j < n4; j += 4) v128.store(row + (<usize>j << 2), exp4(f32x4.sub(v128.load(row + (<usize>j << 2)), ll)));
    for (; j < n; j++) store<f32>(row + (<usize>j << 2), exp1(load<f32>(row + (<usize>j << 2)) - l));
    zeroTail(row, n, S);
  }
}

/** In place over dp [T, S] (gradient of the probabilities p [T, S]): the gradient of the scores,
 * p * (dp - delta_t), delta_t = dout_t . out_t over D floats (rows `ld` floats apart); zeros after
 * each row's last visible key. D a multiple of 4. */
export function softmaxGrad(p: usize, dp: usize, dout: usize, out: usize, T: i32, S: i32, D: i32, ld: i32): void {
  const nb = <usize>D << 2;
  for (let t = 0; t < T; t++) {
    const off = (<usize>t * <usize>ld) << 2;
    let dv = f32x4.splat(0);
    for (let o: usize = 0; o < nb; o += 16) dv = f32x4.add(dv, f32x4.mul(v128.load(dout + off + o), v128.load(out + off + o)));
    const delta = hsum(dv), dd = f32x4.splat(delta);
    const pr = p + ((<usize>t * <usize>S) << 2), dr = dp + ((<usize>t * <usize>S) << 2), n = S - T + t + 1, n4 = n & ~3;
    let j = 0;
    for (; j < n4; j += 4) {
      const at = <usize>j << 2;
      v128.store(dr + at, f32x4.mul(v128.load(pr + at), f32x4.sub(v128.load(dr + at), dd)));
    }
    for (; j < n; j++) store<f32>(dr + (<usize>j << 2), load<f32>(pr + (<usize>j << 2)) * (load<f32>(dr + (<usize>j << 2)) - delta));
    zeroTail(dr, n, S);
  }
}
