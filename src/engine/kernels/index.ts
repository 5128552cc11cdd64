/** Kernel patches for the WebAssembly backend; filled in by the kernels work. */
export function installWasmPatches(): void {}
