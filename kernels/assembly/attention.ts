// Causal grouped-query attention kernels (forward, backward, cached decode) with WebAssembly SIMD.
// The module imports the TF.js WebAssembly heap as its memory, so every argument named like a
// tensor is a byte offset of that tensor's data: no copies in or out. Layouts (floats):
//   q, out, dout, dq: [B, T, H, D];  k, v, dk, dv: [B, S, Hkv, D], batch stride kvStride;
//   lse: [B, H, T] (log-sum-exp of each query's scaled scores, saved for the backward pass).
// Query t sits at position S - T + t and sees keys 0..S-T+t. D must be a multiple of 4.
// `scratch` is caller-owned heap space (sizes at each export).

import { exp4, logf } from './_simd';

@inline function exp1(x: f32): f32 {
  return f32x4.extract_lane(exp4(f32x4.splat(x)), 0);
}

/** [sum(a0), sum(a1), sum(a2), sum(a3)]: four horizontal sums with four shuffles. */
@inline function hsum4(a0: v128, a1: v128, a2: v128, a3: v128): v128 {
  const t0 = f32x4.add(v128.shuffle<f32>(a0, a1, 0, 4, 1, 5), v128.shuffle<f32>(a0, a1, 2, 6, 3, 7));
  const t1 = f32x4.add(v128.shuffle<f32>(a2, a3, 0, 4, 1, 5), v128.shuffle<f32>(a2, a3, 2, 6, 3, 7));
  return f32x4.add(v128.shuffle<f32>(t0, t1, 0, 1, 4, 5), v128.shuffle<f32>(t0, t1, 2, 3, 6, 7));
}

@inline function hsum1(a: v128): f32 {
  const t = f32x4.add(a, v128.shuffle<f32>(a, a, 2, 3, 0, 1));
  return f32x4.extract_lane(t, 0) + f32x4.extract_lane(t, 1);
}

/** Four dot products of x (D floats) with rows r, r+st, r+2st, r+3st. */
@inline function dot4(x: usize, r: usize, st: usize, nb: usize): v128 {
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  const end = x + nb, r1 = r + st - x, r2 = r + 2 * st - x, r3 = r + 3 * st - x, r0 = r - x;
  for (let p = x; p < end; p += 16) {
    const xv = v128.load(p);
    a0 = f32x4.add(a0, f32x4.mul(xv, v128.load(p + r0)));
    a1 = f32x4.add(a1, f32x4.mul(xv, v128.load(p + r1)));
    a2 = f32x4.add(a2, f32x4.mul(xv, v128.load(p + r2)));
    a3 = f32x4.add(a3, f32x4.mul(xv, v128.load(p + r3)));
  }
  return hsum4(a0, a1, a2, a3);
}

@inline function dot1(x: usize, r: usize, nb: usize): f32 {
  let a = f32x4.splat(0);
  for (let o: usize = 0; o < nb; o += 16) a = f32x4.add(a, f32x4.mul(v128.load(x + o), v128.load(r + o)));
  return hsum1(a);
}

/** One query row: scores over n keys, softmax, weighted sum of values into outRow. Returns lse. */
function attendRow(qRow: usize, kRow: usize, vRow: usize, outRow: usize, n: i32, st: usize, nb: usize, scale: f32, sc: usize): f32 {
  const n4 = n & ~3;
  let mv = f32x4.splat(-Infinity);
  let j = 0;
  for (; j < n4; j += 4) {
    const s = f32x4.mul(dot4(qRow, kRow + <usize>j * st, st, nb), f32x4.splat(scale));
    v128.store(sc + (<usize>j << 2), s);
    mv = f32x4.max(mv, s);
  }
  let m = max(max(f32x4.extract_lane(mv, 0), f32x4.extract_lane(mv, 1)), max(f32x4.extract_lane(mv, 2), f32x4.extract_lane(mv, 3)));
  for (; j < n; j++) {
    const s = dot1(qRow, kRow + <usize>j * st, nb) * scale;
    store<f32>(sc + (<usize>j << 2), s);
    m = max(m, s);
  }
  const mm = f32x4.splat(m);
  let lv = f32x4.splat(0);
  for (j = 0; j < n4; j += 4) {
    const p = exp4(f32x4.sub(v128.load(sc + (<usize>j << 2)), mm));
    v128.store(sc + (<usize>j << 2), p);
    lv = f32x4.add(lv, p);
  }
  let l = hsum1(lv);
  for (; j < n; j++) {
    const p = exp1(load<f32>(sc + (<usize>j << 2)) - m);
    store<f32>(sc + (<usize>j << 2), p);
    l += p;
  }
  // out = sum_j p_j v_j / l, four keys per pass over the row.
  for (let o: usize = 0; o < nb; o += 16) v128.store(outRow + o, f32x4.splat(0));
  for (j = 0; j < n4; j += 4) {
    const v0 = vRow + <usize>j * st;
    const p0 = f32x4.splat(load<f32>(sc + (<usize>j << 2)));
    const p1 = f32x4.splat(load<f32>(sc + (<usize>j << 2), 4));
    const p2 = f32x4.splat(load<f32>(sc + (<usize>j << 2), 8));
    const p3 = f32x4.splat(load<f32>(sc + (<usize>j << 2), 12));
    for (let o: usize = 0; o < nb; o += 16) {
      let acc = v128.load(outRow + o);
      acc = f32x4.add(acc, f32x4.add(f32x4.mul(p0, v128.load(v0 + o)), f32x4.mul(p1, v128.load(v0 + st + o))));
      acc = f32x4.add(acc, f32x4.add(f32x4.mul(p2, v128.load(v0 + 2 * st + o)), f32x4.mul(p3, v128.load(v0 + 3 * st + o))));
      v128.store(outRow + o, acc);
    }
  }
  for (; j < n; j++) {
    const v0 = vRow + <usize>j * st;
    const p0 = f32x4.splat(load<f32>(sc + (<usize>j << 2)));
    for (let o: usize = 0; o < nb; o += 16) v128.store(outRow + o, f32x4.add(v128.load(outRow + o), f32x4.mul(p0, v128.load(v0 + o))));
  }
  const inv = f32x4.splat(1 / l);
  for (let o: usize = 0; o < nb; o += 16) v128.store(outRow + o, f32x4.mul(v128.load(outRow + o), inv));
  return m + logf(l);
}

// ---- Tiled path: attention as small matrix products per (batch, head) through one register-tiled
// kernel, with probabilities in scratch. Causality limits each 4-row block's columns or inner range.

/** No limit, for gemm's offsets. */
const FREE: i32 = 1 << 29;

/** C[i, n] (+)= alpha * sum_k A(i, k) B(k, n), A(i, k) at a + i*aRs + k*aCs, B rows contiguous in n.
 * For the block of rows starting at i0 (4 rows, or 1 at the end) k runs over
 * [i0 + kLoOff, i0 + rows + kHiOff) and n over [0, i0 + rows + nHiOff), clipped to [0, K), [0, N). */
function gemm(
  a: usize, aRs: usize, aCs: usize, b: usize, bRs: usize, c: usize, cRs: usize,
  M: i32, N: i32, K: i32, kLoOff: i32, kHiOff: i32, nHiOff: i32, alpha: f32, accumulate: bool,
): void {
  const al = f32x4.splat(alpha);
  let i0 = 0;
  for (; i0 < M; i0 += 4) {
    const rows = min(4, M - i0);
    const kLo = max(0, i0 + kLoOff), kHi = min(K, i0 + rows + kHiOff), nHi = min(N, i0 + rows + nHiOff);
    const ar = a + <usize>i0 * aRs, cr = c + <usize>i0 * cRs;
    let n = 0;
    if (rows == 4) {
      for (; n + 8 <= nHi; n += 8) tile4x8(ar, aRs, aCs, b + (<usize>n << 2), bRs, cr + (<usize>n << 2), cRs, kLo, kHi, al, accumulate);
    }
    for (; n + 4 <= nHi; n += 4) {
      for (let r = 0; r < rows; r++) tile1x4(ar + <usize>r * aRs, aCs, b + (<usize>n << 2), bRs, cr + <usize>r * cRs + (<usize>n << 2), kLo, kHi, al, accumulate);
    }
    for (; n < nHi; n++) {
      for (let r = 0; r < rows; r++) {
        let s: f32 = 0;
        for (let k = kLo; k < kHi; k++) s += load<f32>(ar + <usize>r * aRs + <usize>k * aCs) * load<f32>(b + <usize>k * bRs + (<usize>n << 2));
        const p = cr + <usize>r * cRs + (<usize>n << 2);
        store<f32>(p, accumulate ? load<f32>(p) + alpha * s : alpha * s);
      }
    }
  }
}

@inline function put(p: usize, x: v128, al: v128, accumulate: bool): void {
  v128.store(p, accumulate ? f32x4.add(v128.load(p), f32x4.mul(al, x)) : f32x4.mul(al, x));
}

/** 4 x 8 block of C: each B vector loaded feeds four multiply-adds. */
@inline function tile4x8(a: usize, aRs: usize, aCs: usize, b: usize, bRs: usize, c: usize, cRs: usize, kLo: i32, kHi: i32, al: v128, accumulate: bool): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  // Pointers advance by addition: the engine does not strength-reduce k * stride in the loop.
  let bp = b + <usize>kLo * bRs, ap = a + <usize>kLo * aCs;
  const aR2 = aRs << 1, aR3 = aRs * 3;
  for (let k = kLo; k < kHi; k++, bp += bRs, ap += aCs) {
    const b0 = v128.load(bp), b1 = v128.load(bp, 16);
    const a0 = f32x4.splat(load<f32>(ap)), a1 = f32x4.splat(load<f32>(ap + aRs));
    const a2 = f32x4.splat(load<f32>(ap + aR2)), a3 = f32x4.splat(load<f32>(ap + aR3));
    c00 = f32x4.add(c00, f32x4.mul(a0, b0)); c01 = f32x4.add(c01, f32x4.mul(a0, b1));
    c10 = f32x4.add(c10, f32x4.mul(a1, b0)); c11 = f32x4.add(c11, f32x4.mul(a1, b1));
    c20 = f32x4.add(c20, f32x4.mul(a2, b0)); c21 = f32x4.add(c21, f32x4.mul(a2, b1));
    c30 = f32x4.add(c30, f32x4.mul(a3, b0)); c31 = f32x4.add(c31, f32x4.mul(a3, b1));
  }
  put(c, c00, al, accumulate); put(c + 16, c01, al, accumulate);
  put(c + cRs, c10, al, accumulate); put(c + cRs + 16, c11, al, accumulate);
  put(c + 2 * cRs, c20, al, accumulate); put(c + 2 * cRs + 16, c21, al, accumulate);
  put(c + 3 * cRs, c30, al, accumulate); put(c + 3 * cRs + 16, c31, al, accumulate);
}

@inline function tile1x4(a: usize, aCs: usize, b: usize, bRs: usize, c: usize, kLo: i32, kHi: i32, al: v128, accumulate: bool): void {
  let c0 = f32x4.splat(0);
  for (let k = kLo; k < kHi; k++) c0 = f32x4.add(c0, f32x4.mul(f32x4.splat(load<f32>(a + <usize>k * aCs)), v128.load(b + <usize>k * bRs)));
  put(c, c0, al, accumulate);
}

/** dst[d, j] = src[j * rowStride + d]: a [rows, D] block (rows strided) to [D, rows]. */
function transposeRows(src: usize, rowStride: usize, dst: usize, rows: i32, D: i32): void {
  for (let j = 0; j < rows; j++) {
    const s = src + <usize>j * rowStride;
    for (let d = 0; d < D; d++) store<f32>(dst + ((<usize>d * rows + j) << 2), load<f32>(s + (<usize>d << 2)));
  }
}

/** Row t of P [T, S] in place: scaled scores -> probabilities over its n = S-T+t+1 visible keys
 * (zeros after), either by softmax (returns the log-sum-exp) or from a saved log-sum-exp. */
function softmaxRow(p: usize, n: i32, S: i32, scale: f32, savedLse: f32, useSaved: bool): f32 {
  const n4 = n & ~3, sc = f32x4.splat(scale);
  let m: f32 = savedLse;
  if (!useSaved) {
    let mv = f32x4.splat(-Infinity);
    let j = 0;
    for (; j < n4; j += 4) mv = f32x4.max(mv, f32x4.mul(v128.load(p + (<usize>j << 2)), sc));
    m = max(max(f32x4.extract_lane(mv, 0), f32x4.extract_lane(mv, 1)), max(f32x4.extract_lane(mv, 2), f32x4.extract_lane(mv, 3)));
    for (; j < n; j++) m = max(m, load<f32>(p + (<usize>j << 2)) * scale);
  }
  const mm = f32x4.splat(m);
  let lv = f32x4.splat(0);
  let j = 0;
  for (; j < n4; j += 4) {
    const e = exp4(f32x4.sub(f32x4.mul(v128.load(p + (<usize>j << 2)), sc), mm));
    v128.store(p + (<usize>j << 2), e);
    lv = f32x4.add(lv, e);
  }
  let l = hsum1(lv);
  for (; j < n; j++) {
    const e = exp1(load<f32>(p + (<usize>j << 2)) * scale - m);
    store<f32>(p + (<usize>j << 2), e);
    l += e;
  }
  memory.fill(p + (<usize>n << 2), 0, <usize>(S - n) << 2);
  if (useSaved) return savedLse;
  const inv = f32x4.splat(1 / l);
  for (j = 0; j < n4; j += 4) v128.store(p + (<usize>j << 2), f32x4.mul(v128.load(p + (<usize>j << 2)), inv));
  for (; j < n; j++) store<f32>(p + (<usize>j << 2), load<f32>(p + (<usize>j << 2)) / l);
  return m + logf(l);
}

/** Dot products of one 32-float slab of q (in registers) with 4 rows' slabs. */
@inline function slab4(q0: v128, q1: v128, q2: v128, q3: v128, q4: v128, q5: v128, q6: v128, q7: v128, r: usize): v128 {
  let a = f32x4.add(f32x4.add(f32x4.mul(q0, v128.load(r)), f32x4.mul(q1, v128.load(r, 16))), f32x4.add(f32x4.mul(q2, v128.load(r, 32)), f32x4.mul(q3, v128.load(r, 48))));
  a = f32x4.add(a, f32x4.add(f32x4.add(f32x4.mul(q4, v128.load(r, 64)), f32x4.mul(q5, v128.load(r, 80))), f32x4.add(f32x4.mul(q6, v128.load(r, 96)), f32x4.mul(q7, v128.load(r, 112)))));
  return a;
}

/** attendRow for D a multiple of 32: each 32-float slab of q, and of the output, stays in registers
 * while the keys stream past (decoding reads each cached key once per head). */
function attendRowSlabs(qRow: usize, kRow: usize, vRow: usize, outRow: usize, n: i32, st: usize, nb: usize, scale: f32, sc: usize): f32 {
  const n4 = n & ~3;
  for (let s: usize = 0; s < nb; s += 128) {
    const q0 = v128.load(qRow + s), q1 = v128.load(qRow + s, 16), q2 = v128.load(qRow + s, 32), q3 = v128.load(qRow + s, 48);
    const q4 = v128.load(qRow + s, 64), q5 = v128.load(qRow + s, 80), q6 = v128.load(qRow + s, 96), q7 = v128.load(qRow + s, 112);
    let kp = kRow + s, sp = sc;
    let j = 0;
    for (; j < n4; j += 4, kp += 4 * st, sp += 16) {
      const d = hsum4(slab4(q0, q1, q2, q3, q4, q5, q6, q7, kp), slab4(q0, q1, q2, q3, q4, q5, q6, q7, kp + st),
        slab4(q0, q1, q2, q3, q4, q5, q6, q7, kp + 2 * st), slab4(q0, q1, q2, q3, q4, q5, q6, q7, kp + 3 * st));
      v128.store(sp, s == 0 ? d : f32x4.add(v128.load(sp), d));
    }
    for (; j < n; j++, kp += st, sp += 4) {
      const d = hsum1(slab4(q0, q1, q2, q3, q4, q5, q6, q7, kp));
      store<f32>(sp, s == 0 ? d : load<f32>(sp) + d);
    }
  }
  let mv = f32x4.splat(-Infinity);
  const sv = f32x4.splat(scale);
  let j = 0;
  for (; j < n4; j += 4) {
    const x = f32x4.mul(v128.load(sc + (<usize>j << 2)), sv);
    v128.store(sc + (<usize>j << 2), x);
    mv = f32x4.max(mv, x);
  }
  let m = max(max(f32x4.extract_lane(mv, 0), f32x4.extract_lane(mv, 1)), max(f32x4.extract_lane(mv, 2), f32x4.extract_lane(mv, 3)));
  for (; j < n; j++) {
    const x = load<f32>(sc + (<usize>j << 2)) * scale;
    store<f32>(sc + (<usize>j << 2), x);
    m = max(m, x);
  }
  const mm = f32x4.splat(m);
  let lv = f32x4.splat(0);
  for (j = 0; j < n4; j += 4) {
    const p = exp4(f32x4.sub(v128.load(sc + (<usize>j << 2)), mm));
    v128.store(sc + (<usize>j << 2), p);
    lv = f32x4.add(lv, p);
  }
  let l = hsum1(lv);
  for (; j < n; j++) {
    const p = exp1(load<f32>(sc + (<usize>j << 2)) - m);
    store<f32>(sc + (<usize>j << 2), p);
    l += p;
  }
  const inv = f32x4.splat(1 / l);
  for (let s: usize = 0; s < nb; s += 128) {
    let o0 = f32x4.splat(0), o1 = f32x4.splat(0), o2 = f32x4.splat(0), o3 = f32x4.splat(0);
    let o4 = f32x4.splat(0), o5 = f32x4.splat(0), o6 = f32x4.splat(0), o7 = f32x4.splat(0);
    let vp = vRow + s, sp = sc;
    for (let jj = 0; jj < n; jj++, vp += st, sp += 4) {
      const p = f32x4.splat(load<f32>(sp));
      o0 = f32x4.add(o0, f32x4.mul(p, v128.load(vp))); o1 = f32x4.add(o1, f32x4.mul(p, v128.load(vp, 16)));
      o2 = f32x4.add(o2, f32x4.mul(p, v128.load(vp, 32))); o3 = f32x4.add(o3, f32x4.mul(p, v128.load(vp, 48)));
      o4 = f32x4.add(o4, f32x4.mul(p, v128.load(vp, 64))); o5 = f32x4.add(o5, f32x4.mul(p, v128.load(vp, 80)));
      o6 = f32x4.add(o6, f32x4.mul(p, v128.load(vp, 96))); o7 = f32x4.add(o7, f32x4.mul(p, v128.load(vp, 112)));
    }
    const op = outRow + s;
    v128.store(op, f32x4.mul(o0, inv)); v128.store(op, f32x4.mul(o1, inv), 16);
    v128.store(op, f32x4.mul(o2, inv), 32); v128.store(op, f32x4.mul(o3, inv), 48);
    v128.store(op, f32x4.mul(o4, inv), 64); v128.store(op, f32x4.mul(o5, inv), 80);
    v128.store(op, f32x4.mul(o6, inv), 96); v128.store(op, f32x4.mul(o7, inv), 112);
  }
  return m + logf(l);
}

/** Forward pass. lse may be 0 (not stored: inference). Scratch: S*D + T*S + 4 floats. */
export function forward(
  q: usize, k: usize, v: usize, out: usize, lse: usize, scratch: usize,
  B: i32, T: i32, S: i32, H: i32, Hkv: i32, D: i32, kvStride: i32, scale: f32,
): void {
  const rep = H / Hkv, off = S - T;
  const nb = <usize>D << 2, kvRs = <usize>(Hkv * D) << 2, qRs = <usize>(H * D) << 2, sRs = <usize>S << 2;
  const kt = scratch, p = scratch + <usize>S * nb;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const kvOff = (<usize>b * kvStride + <usize>(h / rep) * D) << 2;
      const qOff = (<usize>(b * T * H + h) * D) << 2;
      if (T < 8) {
        // Decoding: a few rows; dot products straight from K beat transposing it first.
        for (let t = 0; t < T; t++) {
          const row = qOff + <usize>t * qRs;
          const m = D % 32 == 0
            ? attendRowSlabs(q + row, k + kvOff, v + kvOff, out + row, off + t + 1, kvRs, nb, scale, p)
            : attendRow(q + row, k + kvOff, v + kvOff, out + row, off + t + 1, kvRs, nb, scale, p);
          if (lse) store<f32>(lse + (<usize>((b * H + h) * T + t) << 2), m);
        }
        continue;
      }
      if (h % rep == 0) transposeRows(k + kvOff, kvRs, kt, S, D);
      gemm(q + qOff, qRs, 4, kt, sRs, p, sRs, T, S, D, -FREE, FREE, off, 1, false); // raw scores
      for (let t = 0; t < T; t++) {
        const m = softmaxRow(p + <usize>t * sRs, off + t + 1, S, scale, 0, false);
        if (lse) store<f32>(lse + (<usize>((b * H + h) * T + t) << 2), m);
      }
      gemm(p, sRs, 4, v + kvOff, kvRs, out + qOff, qRs, T, D, S, -FREE, off, FREE, 1, false); // P V
    }
  }
}

/** Backward pass from the saved log-sum-exp: writes dq, dk, dv (fully).
 * Scratch: 2*S*D + 2*T*S floats. */
export function backward(
  q: usize, k: usize, v: usize, out: usize, lse: usize, dout: usize, dq: usize, dk: usize, dv: usize, scratch: usize,
  B: i32, T: i32, S: i32, H: i32, Hkv: i32, D: i32, scale: f32,
): void {
  const rep = H / Hkv, off = S - T;
  const nb = <usize>D << 2, kvRs = <usize>(Hkv * D) << 2, qRs = <usize>(H * D) << 2, sRs = <usize>S << 2;
  const kt = scratch, vt = kt + <usize>S * nb, p = vt + <usize>S * nb, ds = p + <usize>T * sRs;
  memory.fill(dk, 0, (<usize>(B * S * Hkv * D)) << 2);
  memory.fill(dv, 0, (<usize>(B * S * Hkv * D)) << 2);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const kvOff = (<usize>(b * S * Hkv) * D + <usize>(h / rep) * D) << 2;
      const qOff = (<usize>(b * T * H + h) * D) << 2;
      if (h % rep == 0) {
        transposeRows(k + kvOff, kvRs, kt, S, D);
        transposeRows(v + kvOff, kvRs, vt, S, D);
      }
      gemm(q + qOff, qRs, 4, kt, sRs, p, sRs, T, S, D, -FREE, FREE, off, 1, false); // raw scores
      gemm(dout + qOff, qRs, 4, vt, sRs, ds, sRs, T, S, D, -FREE, FREE, off, 1, false); // dP = dO V^T
      for (let t = 0; t < T; t++) {
        const pr = p + <usize>t * sRs, dr = ds + <usize>t * sRs, n = off + t + 1, n4 = n & ~3;
        softmaxRow(pr, n, S, scale, load<f32>(lse + (<usize>((b * H + h) * T + t) << 2)), true);
        // dS = P (dP - rowsum(dO * O)), zero past the visible keys.
        const Di = f32x4.splat(dot1(dout + qOff + <usize>t * qRs, out + qOff + <usize>t * qRs, nb));
        let j = 0;
        for (; j < n4; j += 4) {
          const o = <usize>j << 2;
          v128.store(dr + o, f32x4.mul(v128.load(pr + o), f32x4.sub(v128.load(dr + o), Di)));
        }
        for (; j < n; j++) store<f32>(dr + (<usize>j << 2), load<f32>(pr + (<usize>j << 2)) * (load<f32>(dr + (<usize>j << 2)) - f32x4.extract_lane(Di, 0)));
        memory.fill(dr + (<usize>n << 2), 0, <usize>(S - n) << 2);
      }
      gemm(ds, sRs, 4, k + kvOff, kvRs, dq + qOff, qRs, T, D, S, -FREE, off, FREE, scale, false); // dQ = s dS K
      gemm(ds, 4, sRs, q + qOff, qRs, dk + kvOff, kvRs, S, D, T, -off, FREE, FREE, scale, true); // dK += s dS^T Q
      gemm(p, 4, sRs, dout + qOff, qRs, dv + kvOff, kvRs, S, D, T, -off, FREE, FREE, 1, true); // dV += P^T dO
    }
  }
}

/** Incremental decoding: writes kNew, vNew ([B, T, Hkv, D]) into the caches ([B, cap, Hkv, D]) at
 * position pos, then attends q ([B, T, H, D]) over positions 0..pos+T-1. */
export function cached(
  q: usize, kNew: usize, vNew: usize, kCache: usize, vCache: usize, out: usize, scratch: usize,
  B: i32, T: i32, H: i32, Hkv: i32, D: i32, pos: i32, cap: i32, scale: f32,
): void {
  const block = (<usize>(T * Hkv * D)) << 2;
  for (let b = 0; b < B; b++) {
    const dst = (<usize>((b * cap + pos) * Hkv * D)) << 2;
    memory.copy(kCache + dst, kNew + <usize>b * block, block);
    memory.copy(vCache + dst, vNew + <usize>b * block, block);
  }
  forward(q, kCache, vCache, out, 0, scratch, B, T, pos + T, H, Hkv, D, cap * Hkv * D, scale);
}
