// Types for distributed-rate-limiter/nestjs (a ThrottlerStorage for @nestjs/throttler).
import type { ThrottlerStorage } from '@nestjs/throttler';
import type { DistributedRateLimiter, LimiterOptions } from '../index';
import type { WindowKind } from './express-rate-limit';

/** @nestjs/throttler's ThrottlerStorageRecord (times in seconds). */
export interface ThrottlerStorageRecord {
  totalHits: number;
  timeToExpire: number;
  isBlocked: boolean;
  timeToBlockExpire: number;
}

export interface ThrottlerStorageOwnOptions {
  /** How `limit` per `ttl` is decided (default 'auto': SLIDING up to 1000, else GCRA). */
  kind?: WindowKind;
}

export type DistributedThrottlerStorageOptions = ThrottlerStorageOwnOptions & (LimiterOptions | { limiter: DistributedRateLimiter });

export declare class DistributedThrottlerStorage implements ThrottlerStorage {
  constructor(options?: DistributedThrottlerStorageOptions);
  readonly limiter: DistributedRateLimiter;
  increment(key: string, ttl: number, limit: number, blockDuration: number, throttlerName: string): Promise<ThrottlerStorageRecord>;
  /** Closes the connection made here (none when given a limiter or a client). */
  onApplicationShutdown(): Promise<void>;
}
