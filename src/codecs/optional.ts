/** Codecs load their libraries (optional peers) on first use; the loader is shared with the SDK's. */
export { requireOptional } from '../backends/driver.js';
