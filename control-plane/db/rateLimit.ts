// The sign-in pages' rate limiters. On one machine (SQLite) they count in
// memory, as today. With PostgreSQL the counters live in its rate_limits
// table (rate-limiter-flexible's RateLimiterPostgres over the store's pool),
// so N replicas behind a load balancer allow the rate once, not N times.
import { RateLimiterMemory, RateLimiterPostgres, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Db } from './open';

export interface RateLimit {
  /** Also the key prefix in the shared table: one per limiter. */
  keyPrefix: string;
  points: number;
  durationS: number;
}

export function createRateLimiter(db: Db, limit: RateLimit): RateLimiterAbstract {
  const base = { keyPrefix: limit.keyPrefix, points: limit.points, duration: limit.durationS };
  if (db.engine === 'sqlite') return new RateLimiterMemory(base);
  return new RateLimiterPostgres({
    ...base,
    storeClient: db.pool,
    storeType: 'pool',
    tableName: 'rate_limits',
    // Created by migration 2, so replicas starting together do not race to create it.
    tableCreated: true,
    clearExpiredByTimeout: true,
  });
}
