// Worker threads do not inherit the parent's TypeScript loader on Node 20: register it, then load
// the real worker and hand its task function to piscina.
import { register } from 'tsx/esm/api';

register();
const worker = await import('./js-worker.ts');
export default worker.default;
