import { Counter, Histogram, type Registry } from 'prom-client';

/** Seed buckets for database queries, in seconds (1 ms .. 500 ms). */
export const DB_DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5];

/** `cache_hits_total` / `cache_misses_total{cache_name,operation}`. */
export class CacheMetrics {
  readonly hits: Counter<string>;
  readonly misses: Counter<string>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.hits = new Counter({
      name: 'cache_hits_total',
      help: 'Cache hits',
      labelNames: ['cache_name', 'operation'],
      registers,
    });
    this.misses = new Counter({
      name: 'cache_misses_total',
      help: 'Cache misses',
      labelNames: ['cache_name', 'operation'],
      registers,
    });
  }

  hit(cache: string, operation = 'get'): void {
    this.hits.inc({ cache_name: cache, operation });
  }

  miss(cache: string, operation = 'get'): void {
    this.misses.inc({ cache_name: cache, operation });
  }

  /** Records a hit when `lookup` resolves to something other than undefined/null, else a miss. */
  async track<T>(cache: string, operation: string, lookup: () => Promise<T>): Promise<T> {
    const value = await lookup();
    if (value === undefined || value === null) this.miss(cache, operation);
    else this.hit(cache, operation);
    return value;
  }
}

/** `db_query_duration_seconds{service,operation,table}`. */
export class DbMetrics {
  readonly duration: Histogram<string>;

  constructor(
    registry: Registry,
    private readonly serviceName: string,
  ) {
    this.duration = new Histogram({
      name: 'db_query_duration_seconds',
      help: 'Database query duration',
      labelNames: ['service', 'operation', 'table'],
      buckets: DB_DURATION_BUCKETS,
      registers: [registry],
    });
  }

  /** Times `query` (failed queries too) under `operation` (select, insert, ...) and `table`. */
  async time<T>(operation: string, table: string, query: () => Promise<T>): Promise<T> {
    const end = this.duration.startTimer({ service: this.serviceName, operation, table });
    try {
      return await query();
    } finally {
      end();
    }
  }
}
