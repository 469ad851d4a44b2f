/** `herald/http`: a resilient HTTP client on the global fetch. */
export * from './client.js';
