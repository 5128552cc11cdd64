// The public API: what `import ... from 'r1kit'` gives.
export { initBackend, BACKENDS } from './engine/backend.ts';
export type { BackendName } from './engine/backend.ts';
export { Rng } from './engine/rng.ts';
export { UserError } from './errors.ts';
