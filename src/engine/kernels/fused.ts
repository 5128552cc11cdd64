// Fused RMSNorm, rotary embedding and SwiGLU: one op each (forward and backward) on the wasm
// backend, via kernels/assembly/fused.ts; composed of TF.js ops elsewhere (the same maths).
import * as tf from '@tensorflow/tfjs-core';
import { addr, kernelModule, type KernelArgs, type WasmBackend } from './wasm.ts';

const RMS_NORM = 'R1RmsNorm',
  RMS_NORM_GRAD = 'R1RmsNormGrad',
  ROPE = 'R1Rope',
  SWIGLU = 'R1SwiGLU',
  SWIGLU_GRAD = 'R1SwiGLUGrad';

type FusedModule = {
  rmsNorm(x: number, g: number, y: number, rstd: number, N: number, C: number, eps: number): void;
  rmsNormGrad(x: number, g: number, rstd: number, dy: number, dx: number, dg: number, N: number, C: number): void;
  rope(x: number, cos: number, sin: number, y: number, B: number, T: number, Hx: number, D: number, backward: boolean): void;
  swiglu(x: number, y: number, N: number, F: number): void;
  swigluGrad(x: number, dy: number, dx: number, N: number, F: number): void;
  expElementwise(x: number, y: number, n: number): void;
};

const mod = (backend: WasmBackend) => kernelModule<FusedModule>(backend, 'fused');
const fast = (name: string) => tf.getBackend() === 'wasm' && tf.getKernel(name, 'wasm') !== undefined;

/** x * rsqrt(mean(x^2) + eps) * g over the last axis of x (g: [C]). Differentiable in x and g. */
export function rmsNorm<T extends tf.Tensor>(x: T, g: tf.Tensor, eps: number): T {
  if (!fast(RMS_NORM) || x.dtype !== 'float32') return composedRmsNorm(x, g, eps);
  const [y, rstd] = tf.engine().runKernel(RMS_NORM, { x, g }, { eps }) as tf.Tensor[];
  rstd.dispose(); // kept by the tape when a gradient is recorded
  return y as T;
}

// The composed versions (cpu, webgpu) write their gradients out, as the fused kernels do, so a
// training step's tape keeps each op's input (and RMSNorm's per-row scale) rather than every
// intermediate of the ops autodiff would record; the maths in each gradient is stated beside it.
// With no tape recording (generation) the plain ops run, without the customGrad wrapper.

/** Whether a gradient tape is recording (a training step's forward pass). */
export const taping = (): boolean => tf.engine().isTapeOn();

/** rsqrt(mean(x^2) + eps) over the last axis, keeping it. */
const rmsScale = (x: tf.Tensor, eps: number) => tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), eps));
/** [x1, x2] -> [-x2, x1] over the last axis (sign 1), or its transpose [z2, -z1] (sign -1). */
function rotateHalf(z: tf.Tensor, sign: 1 | -1): tf.Tensor {
  const [z1, z2] = tf.split(z, 2, -1);
  return sign === 1 ? tf.concat([tf.neg(z2), z1], -1) : tf.concat([z2, tf.neg(z1)], -1);
}
const ropeOps = (x: tf.Tensor, c: tf.Tensor, s: tf.Tensor) => tf.add(tf.mul(x, c), tf.mul(rotateHalf(x, 1), s));
function swigluOps(x: tf.Tensor): tf.Tensor {
  const [gate, up] = tf.split(x, 2, 1);
  return tf.mul(tf.mul(gate, tf.sigmoid(gate)), up);
}

/** RMSNorm of composed ops. y = x r g with r = rsqrt(mean(x^2) + eps) per row; backward:
 * dg = sum over rows of dy x r; dx = r (dy g - x r mean(dy g x r)). */
function composedRmsNorm<T extends tf.Tensor>(x: T, g: tf.Tensor, eps: number): T {
  if (!taping()) return tf.tidy(() => tf.mul(tf.mul(x, rmsScale(x, eps)), g)) as T;
  const C = x.shape[x.shape.length - 1];
  const run = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xi, gi] = args as tf.Tensor[];
    const save = args[2] as tf.GradSaveFunc;
    const [y, r] = tf.tidy(() => {
      const rstd = rmsScale(xi, eps);
      return [tf.mul(tf.mul(xi, rstd), gi), rstd];
    });
    save([xi, gi, r]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, gs, rs] = saved;
        const normed = tf.mul(xs, rs),
          dNormed = tf.mul(dy, gs);
        const dx = tf.mul(rs, tf.sub(dNormed, tf.mul(normed, tf.mean(tf.mul(dNormed, normed), -1, true))));
        const dg = tf.sum(tf.reshape(tf.mul(dy, normed), [-1, C]), 0);
        return [dx, tf.reshape(dg, gs.shape)];
      },
    };
  });
  return run(x, g) as T;
}

/** Rotary embedding of composed ops: y = x c + rot(x) s with rot([x1, x2]) = [-x2, x1]. Linear in x,
 * so the backward is the transpose: dx = dy c + rot^T(dy s), rot^T([z1, z2]) = [z2, -z1]. */
function composedRope(x: tf.Tensor4D, c: tf.Tensor, s: tf.Tensor): tf.Tensor4D {
  if (!taping()) return tf.tidy(() => ropeOps(x, c, s)) as tf.Tensor4D;
  const run = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const xi = args[0] as tf.Tensor4D;
    (args[1] as tf.GradSaveFunc)([c, s]); // the tables, kept for the backward (the caller's may be freed)
    return {
      value: tf.tidy(() => ropeOps(xi, c, s)) as tf.Tensor4D,
      gradFunc: (dy: tf.Tensor, [cs, ss]: tf.Tensor[]) => tf.add(tf.mul(dy, cs), rotateHalf(tf.mul(dy, ss), -1)),
    };
  });
  return run(x) as tf.Tensor4D;
}

/** SwiGLU of composed ops on x = [gate | up]: y = silu(gate) up, silu(a) = a sigmoid(a); backward:
 * dup = dy silu(gate); dgate = dy up sigmoid(gate) (1 + gate (1 - sigmoid(gate))). */
function composedSwiglu(x: tf.Tensor2D): tf.Tensor2D {
  if (!taping()) return tf.tidy(() => swigluOps(x)) as tf.Tensor2D;
  const run = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const xi = args[0] as tf.Tensor2D;
    const save = args[1] as tf.GradSaveFunc;
    save([xi]);
    return {
      value: tf.tidy(() => swigluOps(xi)) as tf.Tensor2D,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [gate, up] = tf.split(saved[0], 2, 1);
        const sig = tf.sigmoid(gate);
        const dGate = tf.mul(tf.mul(dy, up), tf.mul(sig, tf.add(1, tf.mul(gate, tf.sub(1, sig)))));
        return tf.concat([dGate, tf.mul(dy, tf.mul(gate, sig))], 1);
      },
    };
  });
  return run(x) as tf.Tensor2D;
}

/** Rotary embedding, rotate-half convention (as Hugging Face's Llama): x * cos + [-x2, x1] * sin.
 * x: [B, T, H, D]; cos, sin: T x D values (e.g. shaped [1, T, 1, D] or [T, D]), not differentiated. */
export function rope(x: tf.Tensor4D, cos: tf.Tensor, sin: tf.Tensor): tf.Tensor4D {
  const [, T, , D] = x.shape;
  if (!fast(ROPE) || D % 8 !== 0 || x.dtype !== 'float32' || cos.size !== T * D || sin.size !== T * D) {
    return tf.tidy(() => composedRope(x, tf.reshape(cos, [1, T, 1, D]), tf.reshape(sin, [1, T, 1, D])));
  }
  return tf.engine().runKernel(ROPE, { x, cos, sin }, { backward: false }) as tf.Tensor4D;
}

/** SwiGLU's gating on the fused gate/up projection: x [N, 2F] = [gate | up] -> silu(gate) * up,
 * [N, F]. Differentiable. */
export function swiglu(x: tf.Tensor2D): tf.Tensor2D {
  const F = x.shape[1] / 2;
  if (!fast(SWIGLU) || F % 4 !== 0 || x.dtype !== 'float32') return composedSwiglu(x);
  return tf.engine().runKernel(SWIGLU, { x }) as tf.Tensor2D;
}

function rmsNormKernel({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo[] {
  const { x, g } = inputs;
  const C = x.shape[x.shape.length - 1],
    N = tf.util.sizeFromShape(x.shape) / C;
  const y = backend.makeOutput(x.shape, 'float32'),
    rstd = backend.makeOutput([N], 'float32');
  mod(backend).rmsNorm(addr(backend, x), addr(backend, g), addr(backend, y), addr(backend, rstd), N, C, attrs.eps as number);
  return [y, rstd];
}

function rmsNormGradKernel({ inputs, backend }: KernelArgs): tf.TensorInfo[] {
  const { x, g, rstd, dy } = inputs;
  const C = x.shape[x.shape.length - 1],
    N = tf.util.sizeFromShape(x.shape) / C;
  const dx = backend.makeOutput(x.shape, 'float32'),
    dg = backend.makeOutput(g.shape, 'float32');
  mod(backend).rmsNormGrad(
    addr(backend, x),
    addr(backend, g),
    addr(backend, rstd),
    addr(backend, dy),
    addr(backend, dx),
    addr(backend, dg),
    N,
    C,
  );
  return [dx, dg];
}

function ropeKernel({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const { x, cos, sin } = inputs;
  const [B, T, Hx, D] = x.shape;
  const y = backend.makeOutput(x.shape, 'float32');
  mod(backend).rope(addr(backend, x), addr(backend, cos), addr(backend, sin), addr(backend, y), B, T, Hx, D, attrs.backward as boolean);
  return y;
}

function swigluKernel({ inputs, backend }: KernelArgs): tf.TensorInfo {
  const { x } = inputs;
  const [N, F2] = x.shape;
  const y = backend.makeOutput([N, F2 / 2], 'float32');
  mod(backend).swiglu(addr(backend, x), addr(backend, y), N, F2 / 2);
  return y;
}

function swigluGradKernel({ inputs, backend }: KernelArgs): tf.TensorInfo {
  const { x, dy } = inputs;
  const [N, F2] = x.shape;
  const dx = backend.makeOutput(x.shape, 'float32');
  mod(backend).swigluGrad(addr(backend, x), addr(backend, dy), addr(backend, dx), N, F2 / 2);
  return dx;
}

/** Exp of float32 tensors as SIMD (the backend's own calls the C library per element); other
 * dtypes go to the original kernel. */
export function patchExp(original: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const { inputs, backend } = args as unknown as KernelArgs;
    const x = inputs.x;
    if (x.dtype !== 'float32') return original(args);
    const y = backend.makeOutput(x.shape, 'float32');
    const n = tf.util.sizeFromShape(x.shape);
    if (n > 0) mod(backend).expElementwise(addr(backend, x), addr(backend, y), n);
    return y;
  };
}

const kernel = (kernelName: string, f: (args: KernelArgs) => tf.TensorInfo | tf.TensorInfo[]): tf.KernelConfig => ({
  kernelName,
  backendName: 'wasm',
  kernelFunc: f as unknown as tf.KernelFunc,
});

export const fusedKernels: tf.KernelConfig[] = [
  kernel(RMS_NORM, rmsNormKernel),
  kernel(RMS_NORM_GRAD, rmsNormGradKernel),
  kernel(ROPE, ropeKernel),
  kernel(SWIGLU, swigluKernel),
  kernel(SWIGLU_GRAD, swigluGradKernel),
];

export const fusedGradients: tf.GradConfig[] = [
  {
    kernelName: RMS_NORM,
    inputsToSave: ['x', 'g'],
    outputsToSave: [false, true],
    gradFunc: (dys, saved) => {
      const [x, g, rstd] = saved;
      const dy = (dys as tf.Tensor[])[0]; // rstd is an output only for this backward pass
      const [dx, dg] = tf.engine().runKernel(RMS_NORM_GRAD, { x, g, rstd, dy }) as tf.Tensor[];
      return { x: () => dx, g: () => dg };
    },
  },
  {
    kernelName: ROPE,
    inputsToSave: ['cos', 'sin'],
    gradFunc: (dy, saved) => {
      const [cos, sin] = saved;
      return {
        x: () => tf.engine().runKernel(ROPE, { x: dy as tf.Tensor, cos, sin }, { backward: true }) as tf.Tensor,
        cos: () => tf.zerosLike(cos),
        sin: () => tf.zerosLike(sin),
      };
    },
  },
  {
    kernelName: SWIGLU,
    inputsToSave: ['x'],
    gradFunc: (dy, saved) => ({ x: () => tf.engine().runKernel(SWIGLU_GRAD, { x: saved[0], dy: dy as tf.Tensor }) as tf.Tensor }),
  },
];
