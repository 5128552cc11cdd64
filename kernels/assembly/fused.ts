// Fused RMSNorm, rotary-embedding and SwiGLU kernels (forward and backward) with WebAssembly SIMD,
// over the TF.js WebAssembly heap (imported memory; arguments are byte offsets). Each replaces
// three to six TF.js ops, whose fixed cost dominates at the small shapes of decoding.

import { exp4 } from './_simd';

/** y = x * rstd * g per row of x [N, C]; rstd[n] = 1 / sqrt(mean(x[n]^2) + eps). */
export function rmsNorm(x: usize, g: usize, y: usize, rstd: usize, N: i32, C: i32, eps: f32): void {
  const C4 = C & ~3, rb = <usize>C << 2;
  for (let n = 0; n < N; n++) {
    const xr = x + <usize>n * rb, yr = y + <usize>n * rb;
    let acc = f32x4.splat(0);
    let c = 0;
    for (; c < C4; c += 4) {
      const v = v128.load(xr + (<usize>c << 2));
      acc = f32x4.add(acc, f32x4.mul(v, v));
    }
    let ss = f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1) + f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3);
    for (; c < C; c++) ss += load<f32>(xr + (<usize>c << 2)) * load<f32>(xr + (<usize>c << 2));
    const r: f32 = 1 / Mathf.sqrt(ss / <f32>C + eps);
    store<f32>(rstd + (<usize>n << 2), r);
    const rv = f32x4.splat(r);
    for (c = 0; c < C4; c += 4) {
      const o = <usize>c << 2;
      v128.store(yr + o, f32x4.mul(f32x4.mul(v128.load(xr + o), rv), v128.load(g + o)));
    }
    for (; c < C; c++) store<f32>(yr + (<usize>c << 2), load<f32>(xr + (<usize>c << 2)) * r * load<f32>(g + (<usize>c << 2)));
  }
}

/** Gradients of rmsNorm: with xh = x * rstd and gd = dy * g,
 * dx = rstd * (gd - xh * mean(gd * xh)) per row, dg = sum over rows of dy * xh. */
export function rmsNormGrad(x: usize, g: usize, rstd: usize, dy: usize, dx: usize, dg: usize, N: i32, C: i32): void {
  const C4 = C & ~3, rb = <usize>C << 2;
  memory.fill(dg, 0, rb);
  for (let n = 0; n < N; n++) {
    const xr = x + <usize>n * rb, dyr = dy + <usize>n * rb, dxr = dx + <usize>n * rb;
    const r = load<f32>(rstd + (<usize>n << 2)), rv = f32x4.splat(r);
    let acc = f32x4.splat(0);
    let c = 0;
    for (; c < C4; c += 4) {
      const o = <usize>c << 2;
      const xh = f32x4.mul(v128.load(xr + o), rv), d = v128.load(dyr + o);
      acc = f32x4.add(acc, f32x4.mul(f32x4.mul(d, v128.load(g + o)), xh));
      v128.store(dg + o, f32x4.add(v128.load(dg + o), f32x4.mul(d, xh)));
    }
    let dot = f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1) + f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3);
    for (; c < C; c++) {
      const o = <usize>c << 2;
      const xh = load<f32>(xr + o) * r, d = load<f32>(dyr + o);
      dot += d * load<f32>(g + o) * xh;
      store<f32>(dg + o, load<f32>(dg + o) + d * xh);
    }
    const mean = dot / <f32>C, mv = f32x4.splat(mean);
    for (c = 0; c < C4; c += 4) {
      const o = <usize>c << 2;
      const xh = f32x4.mul(v128.load(xr + o), rv);
      v128.store(dxr + o, f32x4.mul(rv, f32x4.sub(f32x4.mul(v128.load(dyr + o), v128.load(g + o)), f32x4.mul(xh, mv))));
    }
    for (; c < C; c++) {
      const o = <usize>c << 2;
      store<f32>(dxr + o, r * (load<f32>(dyr + o) * load<f32>(g + o) - load<f32>(xr + o) * r * mean));
    }
  }
}

/** Rotary embedding, rotate-half convention, on x [B, T, Hx, D] with cos, sin [T, D]; h = D/2:
 *   forward:  y[i] = x[i] c[i] - x[i+h] s[i],      y[i+h] = x[i+h] c[i+h] + x[i] s[i+h]
 *   backward: y[i] = x[i] c[i] + x[i+h] s[i+h],    y[i+h] = x[i+h] c[i+h] - x[i] s[i]  (x = dy)
 * D/2 must be a multiple of 4. */
export function rope(x: usize, cos: usize, sin: usize, y: usize, B: i32, T: i32, Hx: i32, D: i32, backward: bool): void {
  const hb = <usize>D << 1; // bytes of half a row
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const cr = cos + (<usize>(t * D) << 2), sr = sin + (<usize>(t * D) << 2);
      for (let hx = 0; hx < Hx; hx++) {
        const off = (<usize>(((b * T + t) * Hx + hx) * D)) << 2;
        const xr = x + off, yr = y + off;
        for (let o: usize = 0; o < hb; o += 16) {
          const x1 = v128.load(xr + o), x2 = v128.load(xr + hb + o);
          const c1 = v128.load(cr + o), c2 = v128.load(cr + hb + o);
          const s1 = v128.load(sr + o), s2 = v128.load(sr + hb + o);
          if (backward) {
            v128.store(yr + o, f32x4.add(f32x4.mul(x1, c1), f32x4.mul(x2, s2)));
            v128.store(yr + hb + o, f32x4.sub(f32x4.mul(x2, c2), f32x4.mul(x1, s1)));
          } else {
            v128.store(yr + o, f32x4.sub(f32x4.mul(x1, c1), f32x4.mul(x2, s1)));
            v128.store(yr + hb + o, f32x4.add(f32x4.mul(x2, c2), f32x4.mul(x1, s2)));
          }
        }
      }
    }
  }
}

@inline function sigmoid4(x: v128): v128 {
  return f32x4.div(f32x4.splat(1), f32x4.add(f32x4.splat(1), exp4(f32x4.neg(x))));
}

/** SwiGLU on x [N, 2F] = [gate | up] per row: y [N, F] = silu(gate) * up. F must be a multiple of 4. */
export function swiglu(x: usize, y: usize, N: i32, F: i32): void {
  const fb = <usize>F << 2;
  for (let n = 0; n < N; n++) {
    const g = x + <usize>n * 2 * fb, u = g + fb, yr = y + <usize>n * fb;
    for (let o: usize = 0; o < fb; o += 16) {
      const gv = v128.load(g + o);
      v128.store(yr + o, f32x4.mul(f32x4.mul(gv, sigmoid4(gv)), v128.load(u + o)));
    }
  }
}

/** Gradient of swiglu: with s = sigmoid(gate), d gate = dy * up * s * (1 + gate * (1 - s)) and
 * d up = dy * gate * s, written side by side into dx [N, 2F]. */
export function swigluGrad(x: usize, dy: usize, dx: usize, N: i32, F: i32): void {
  const fb = <usize>F << 2, one = f32x4.splat(1);
  for (let n = 0; n < N; n++) {
    const g = x + <usize>n * 2 * fb, u = g + fb, d = dy + <usize>n * fb, dg = dx + <usize>n * 2 * fb, du = dg + fb;
    for (let o: usize = 0; o < fb; o += 16) {
      const gv = v128.load(g + o), s = sigmoid4(gv), dv = v128.load(d + o);
      v128.store(du + o, f32x4.mul(dv, f32x4.mul(gv, s)));
      const ds = f32x4.mul(s, f32x4.add(one, f32x4.mul(gv, f32x4.sub(one, s))));
      v128.store(dg + o, f32x4.mul(f32x4.mul(dv, v128.load(u + o)), ds));
    }
  }
}

/** exp over the full float range on 4 lanes: exp4 is accurate inside [-87.3, 88.3] (where it
 * clamps); outside, exp(x) = exp(x - s) * e^s with s = 1 above (overflowing to +Infinity past
 * 88.72, as exp does) and s = -20 below (subnormal results, then 0; exp(-Infinity) = 0). NaN stays NaN. */
@inline function expFull4(x: v128): v128 {
  const hi = f32x4.gt(x, f32x4.splat(88.3)), lo = f32x4.lt(x, f32x4.splat(-87.3));
  const shift = v128.bitselect(f32x4.splat(1), v128.bitselect(f32x4.splat(-20), f32x4.splat(0), lo), hi);
  const factor = v128.bitselect(f32x4.splat(2.7182817), v128.bitselect(f32x4.splat(2.0611537e-9), f32x4.splat(1), lo), hi);
  return f32x4.mul(exp4(f32x4.sub(x, shift)), factor);
}

/** y = exp(x) elementwise over n floats (the wasm backend's Exp calls the C library once per
 * element, ~50x the cost of a multiply). */
export function expElementwise(x: usize, y: usize, n: i32): void {
  const n4 = n & ~3, end4 = <usize>n4 << 2;
  for (let o: usize = 0; o < end4; o += 16) v128.store(y + o, expFull4(v128.load(x + o)));
  for (let i = n4; i < n; i++) store<f32>(y + (<usize>i << 2), f32x4.extract_lane(expFull4(f32x4.splat(load<f32>(x + (<usize>i << 2)))), 0));
}
