// Plain-JavaScript entry for `import ... from 'r1kit'`: loads the TypeScript sources through tsx.
import { register } from 'tsx/esm/api';

register();
export * from '../src/index.ts';
