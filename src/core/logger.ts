/** @deprecated internal re-export: import from `src/contracts/logger.ts`. */
export { silentLogger, type Logger } from '../contracts/logger.js';
