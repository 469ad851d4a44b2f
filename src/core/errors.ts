/**
 * @deprecated internal re-export: import from `src/contracts/errors.ts`. Kept so modules written
 * against the old path keep compiling while branches merge; removed afterwards.
 */
export * from '../contracts/errors.js';
