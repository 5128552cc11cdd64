// Causal grouped-query attention kernels (forward, backward, cached decode) with WebAssembly SIMD.
// The module imports the TF.js WebAssembly heap as its memory, so every argument named like a
// tensor is a byte offset of that tensor's data: no copies in or out. Layouts (floats):
//   q, out, dout, dq: [B, T, H, D];  k, v, dk, dv: [B, S, Hkv, D], batch stride kvStride;
//   lse: [B, H, T] (log-sum-exp of each query's scaled scores, saved for the backward pass).
// Query t sits at position S - T + t and sees keys 0..S-T+t. D must be a multiple of 4.
// `scratch` is caller-owned heap space of at least S + 4 floats.

// exp on 4 lanes (Cephes expf: range reduction to [-ln2/2, ln2/2], degree-6 polynomial),
// relative error ~1e-7; inputs clamped so 2^n stays a normal float.
@inline function exp4(x0: v128): v128 {
  const x1 = f32x4.max(f32x4.min(x0, f32x4.splat(88.3762626647949)), f32x4.splat(-87.3365447504));
  const fx = f32x4.nearest(f32x4.mul(x1, f32x4.splat(1.44269504088896341)));
  let x = f32x4.sub(x1, f32x4.mul(fx, f32x4.splat(0.693359375)));
  x = f32x4.sub(x, f32x4.mul(fx, f32x4.splat(-2.12194440e-4)));
  let y = f32x4.splat(1.9875691500e-4);
  y = f32x4.add(f32x4.mul(y, x), f32x4.splat(1.3981999507e-3));
  y = f32x4.add(f32x4.mul(y, x), f32x4.splat(8.3334519073e-3));
  y = f32x4.add(f32x4.mul(y, x), f32x4.splat(4.1665795894e-2));
  y = f32x4.add(f32x4.mul(y, x), f32x4.splat(1.6666665459e-1));
  y = f32x4.add(f32x4.mul(y, x), f32x4.splat(5.0000001201e-1));
  y = f32x4.add(f32x4.add(f32x4.mul(y, f32x4.mul(x, x)), x), f32x4.splat(1.0));
  const pow2n = i32x4.shl(i32x4.add(i32x4.trunc_sat_f32x4_s(fx), i32x4.splat(127)), 23);
  return f32x4.mul(y, pow2n);
}

/** Natural log of a positive normal float (z = (f-1)/(f+1) series on the mantissa). Written out
 * because Mathf.log brings lookup tables as static data, which must not exist here: this
 * module's memory is the TF.js heap. */
function logf(x: f32): f32 {
  const bits = reinterpret<i32>(x);
  let e = <f32>(((bits >> 23) & 255) - 127);
  let f = reinterpret<f32>((bits & 0x7fffff) | 0x3f800000);
  if (f > 1.41421356) {
    f *= 0.5;
    e += 1;
  }
  const z = (f - 1) / (f + 1), z2 = z * z;
  const series = z * (2 + z2 * (0.666666667 + z2 * (0.4 + z2 * (0.285714286 + z2 * 0.222222222))));
  return e * 0.693147181 + series;
}

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
  for (let o: usize = 0; o < nb; o += 16) {
    const xv = v128.load(x + o);
    a0 = f32x4.add(a0, f32x4.mul(xv, v128.load(r + o)));
    a1 = f32x4.add(a1, f32x4.mul(xv, v128.load(r + st + o)));
    a2 = f32x4.add(a2, f32x4.mul(xv, v128.load(r + 2 * st + o)));
    a3 = f32x4.add(a3, f32x4.mul(xv, v128.load(r + 3 * st + o)));
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

/** Forward pass. lse may be 0 (not stored: inference). */
export function forward(
  q: usize, k: usize, v: usize, out: usize, lse: usize, scratch: usize,
  B: i32, T: i32, S: i32, H: i32, Hkv: i32, D: i32, kvStride: i32, scale: f32,
): void {
  const rep = H / Hkv;
  const nb = <usize>D << 2, st = <usize>(Hkv * D) << 2;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const kRow = k + ((<usize>b * kvStride + <usize>(h / rep) * D) << 2);
      const vRow = v + ((<usize>b * kvStride + <usize>(h / rep) * D) << 2);
      for (let t = 0; t < T; t++) {
        const row = (<usize>((b * T + t) * H + h) * D) << 2;
        const m = attendRow(q + row, kRow, vRow, out + row, S - T + t + 1, st, nb, scale, scratch);
        if (lse) store<f32>(lse + (<usize>((b * H + h) * T + t) << 2), m);
      }
    }
  }
}

/** Backward pass (recomputes the probabilities from lse). Writes dq, dk, dv (fully). */
export function backward(
  q: usize, k: usize, v: usize, out: usize, lse: usize, dout: usize, dq: usize, dk: usize, dv: usize,
  B: i32, T: i32, S: i32, H: i32, Hkv: i32, D: i32, scale: f32,
): void {
  const rep = H / Hkv;
  const nb = <usize>D << 2, st = <usize>(Hkv * D) << 2;
  memory.fill(dk, 0, (<usize>(B * S * Hkv * D)) << 2);
  memory.fill(dv, 0, (<usize>(B * S * Hkv * D)) << 2);
  const sc = f32x4.splat(scale);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const kvOff = (<usize>(b * S * Hkv) * D + <usize>(h / rep) * D) << 2;
      for (let t = 0; t < T; t++) {
        const row = (<usize>((b * T + t) * H + h) * D) << 2;
        const qRow = q + row, doRow = dout + row, dqRow = dq + row;
        const L = f32x4.splat(load<f32>(lse + (<usize>((b * H + h) * T + t) << 2)));
        const Di = f32x4.splat(dot1(doRow, out + row, nb));
        const n = S - T + t + 1, n4 = n & ~3;
        for (let o: usize = 0; o < nb; o += 16) v128.store(dqRow + o, f32x4.splat(0));
        let j = 0;
        for (; j < n4; j += 4) {
          const off = kvOff + <usize>j * st;
          const p = exp4(f32x4.sub(f32x4.mul(dot4(qRow, k + off, st, nb), sc), L));
          const ds = f32x4.mul(f32x4.mul(p, f32x4.sub(dot4(doRow, v + off, st, nb), Di)), sc);
          const d0 = f32x4.splat(f32x4.extract_lane(ds, 0)), d1 = f32x4.splat(f32x4.extract_lane(ds, 1));
          const d2 = f32x4.splat(f32x4.extract_lane(ds, 2)), d3 = f32x4.splat(f32x4.extract_lane(ds, 3));
          const p0 = f32x4.splat(f32x4.extract_lane(p, 0)), p1 = f32x4.splat(f32x4.extract_lane(p, 1));
          const p2 = f32x4.splat(f32x4.extract_lane(p, 2)), p3 = f32x4.splat(f32x4.extract_lane(p, 3));
          const k0 = k + off, dk0 = dk + off, dv0 = dv + off;
          for (let o: usize = 0; o < nb; o += 16) {
            const qv = v128.load(qRow + o), dov = v128.load(doRow + o);
            let acc = v128.load(dqRow + o);
            acc = f32x4.add(acc, f32x4.add(f32x4.mul(d0, v128.load(k0 + o)), f32x4.mul(d1, v128.load(k0 + st + o))));
            acc = f32x4.add(acc, f32x4.add(f32x4.mul(d2, v128.load(k0 + 2 * st + o)), f32x4.mul(d3, v128.load(k0 + 3 * st + o))));
            v128.store(dqRow + o, acc);
            v128.store(dk0 + o, f32x4.add(v128.load(dk0 + o), f32x4.mul(d0, qv)));
            v128.store(dk0 + st + o, f32x4.add(v128.load(dk0 + st + o), f32x4.mul(d1, qv)));
            v128.store(dk0 + 2 * st + o, f32x4.add(v128.load(dk0 + 2 * st + o), f32x4.mul(d2, qv)));
            v128.store(dk0 + 3 * st + o, f32x4.add(v128.load(dk0 + 3 * st + o), f32x4.mul(d3, qv)));
            v128.store(dv0 + o, f32x4.add(v128.load(dv0 + o), f32x4.mul(p0, dov)));
            v128.store(dv0 + st + o, f32x4.add(v128.load(dv0 + st + o), f32x4.mul(p1, dov)));
            v128.store(dv0 + 2 * st + o, f32x4.add(v128.load(dv0 + 2 * st + o), f32x4.mul(p2, dov)));
            v128.store(dv0 + 3 * st + o, f32x4.add(v128.load(dv0 + 3 * st + o), f32x4.mul(p3, dov)));
          }
        }
        for (; j < n; j++) {
          const off = kvOff + <usize>j * st;
          const p = exp1(dot1(qRow, k + off, nb) * scale - f32x4.extract_lane(L, 0));
          const ds = f32x4.splat(p * (dot1(doRow, v + off, nb) - f32x4.extract_lane(Di, 0)) * scale);
          const pv = f32x4.splat(p);
          for (let o: usize = 0; o < nb; o += 16) {
            v128.store(dqRow + o, f32x4.add(v128.load(dqRow + o), f32x4.mul(ds, v128.load(k + off + o))));
            v128.store(dk + off + o, f32x4.add(v128.load(dk + off + o), f32x4.mul(ds, v128.load(qRow + o))));
            v128.store(dv + off + o, f32x4.add(v128.load(dv + off + o), f32x4.mul(pv, v128.load(doRow + o))));
          }
        }
      }
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
