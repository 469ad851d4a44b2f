/**
 * Config-driven bootstrap: load a `herald.yaml` (or JSON, or an object) with HERALD_* environment
 * overrides, validate it against one schema, and build a Herald whose drivers are imported on demand.
 */
export { loadConfig, validateConfig, ENV_MAPPING, type LoadConfigOptions } from './load.js';
export { createHeraldFromConfig, type CreateFromConfigExtras } from './create.js';
export { BackendUnreachableError, DriverMissingError } from '../backends/index.js';
export { heraldConfigSchema, type HeraldConfig, type HeraldConfigInput } from './schema.js';
export { ConfigValidationError, type ConfigIssue } from './errors.js';
