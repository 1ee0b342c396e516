// Types for distributed-rate-limiter/fastify (a store for @fastify/rate-limit).
import type { DistributedRateLimiter, LimiterOptions } from '../index';
import type { WindowKind } from './express-rate-limit';

export interface FastifyStoreOwnOptions {
  /** How `max` per `timeWindow` is decided (default 'auto': SLIDING up to 1000, else GCRA). */
  kind?: WindowKind;
}

export type FastifyStoreOptions = FastifyStoreOwnOptions & (LimiterOptions | { limiter: DistributedRateLimiter });

/** What @fastify/rate-limit gets from a store per request. */
export interface FastifyStoreResult {
  current: number;
  ttl: number;
}

export declare class FastifyRateLimitStore {
  incr(key: string, cb: (err: Error | null, res: FastifyStoreResult | null) => void, timeWindow: number, max: number): void;
  read(key: string, cb: (err: Error | null, res: FastifyStoreResult | null) => void, timeWindow: number, max: number): void;
  child(routeOptions: object): FastifyRateLimitStore;
}

/** The class @fastify/rate-limit's `store` option takes, bound to one limiter. */
export interface FastifyStoreClass {
  new (pluginOptions: object): FastifyRateLimitStore;
  readonly limiter: DistributedRateLimiter;
  /** Closes the connection made for this store (none when given a limiter or a client). */
  close(): Promise<void>;
}

export declare function fastifyStore(options?: FastifyStoreOptions): FastifyStoreClass;
