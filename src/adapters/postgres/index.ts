/**
 * `herald/postgres`: PostgreSQL support. The only folder that imports `pg`.
 * For now: a health check; a transport and stores may follow.
 */
export { postgresHealthCheck, type PostgresHealthCheckOptions } from './health.js';
