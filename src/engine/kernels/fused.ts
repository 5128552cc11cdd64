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
  if (!fast(RMS_NORM) || x.dtype !== 'float32') {
    return tf.tidy(() => tf.mul(tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), eps))), g)) as T;
  }
  const [y, rstd] = tf.engine().runKernel(RMS_NORM, { x, g }, { eps }) as tf.Tensor[];
  rstd.dispose(); // kept by the tape when a gradient is recorded
  return y as T;
}

/** Rotary embedding, rotate-half convention (as Hugging Face's Llama): x * cos + [-x2, x1] * sin.
 * x: [B, T, H, D]; cos, sin: T x D values (e.g. shaped [1, T, 1, D] or [T, D]), not differentiated. */
export function rope(x: tf.Tensor4D, cos: tf.Tensor, sin: tf.Tensor): tf.Tensor4D {
  const [, T, , D] = x.shape;
  if (!fast(ROPE) || D % 8 !== 0 || x.dtype !== 'float32' || cos.size !== T * D || sin.size !== T * D) {
    return tf.tidy(() => {
      const c = tf.reshape(cos, [1, T, 1, D]),
        s = tf.reshape(sin, [1, T, 1, D]);
      const [x1, x2] = tf.split(x, 2, 3);
      return tf.add(tf.mul(x, c), tf.mul(tf.concat([tf.neg(x2), x1], 3), s)) as tf.Tensor4D;
    });
  }
  return tf.engine().runKernel(ROPE, { x, cos, sin }, { backward: false }) as tf.Tensor4D;
}

/** SwiGLU's gating on the fused gate/up projection: x [N, 2F] = [gate | up] -> silu(gate) * up,
 * [N, F]. Differentiable. */
export function swiglu(x: tf.Tensor2D): tf.Tensor2D {
  const F = x.shape[1] / 2;
  if (!fast(SWIGLU) || F % 4 !== 0 || x.dtype !== 'float32') {
    return tf.tidy(() => {
      const [gate, up] = tf.split(x, 2, 1);
      return tf.mul(tf.mul(gate, tf.sigmoid(gate)), up) as tf.Tensor2D;
    });
  }
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
