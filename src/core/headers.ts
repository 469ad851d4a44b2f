/** @deprecated internal re-export: import from `src/contracts/headers.ts`. */
export { Headers } from '../contracts/headers.js';
