// Worker threads do not inherit the TypeScript loader of their parent on Node 20: register it, then
// load the real worker.
import { register } from 'tsx/esm/api';

register();
await import('./grad-worker.ts');
