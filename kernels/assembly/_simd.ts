// SIMD helpers shared by the kernels (imported, not built on its own: the name starts with _).

// exp on 4 lanes (Cephes expf: range reduction to [-ln2/2, ln2/2], degree-6 polynomial),
// relative error ~1e-7; inputs clamped so 2^n stays a normal float.
@inline export function exp4(x0: v128): v128 {
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
export function logf(x: f32): f32 {
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
