// Types for distributed-rate-limiter/express-rate-limit (a Store for express-rate-limit 7 and 8).
import type { Store, Options, ClientRateLimitInfo, IncrementResponse } from 'express-rate-limit';
import type { DistributedRateLimiter, LimiterOptions } from '../index';

/** What a peer's "N per window" becomes: 'auto' is SLIDING when N <= 1000 and the window <= 2^32 - 1 ms, else GCRA. */
export type WindowKind = 'auto' | 'sliding' | 'gcra';

export interface StoreOwnOptions {
  /** How express-rate-limit's `limit` per `windowMs` is decided (default 'auto'). */
  kind?: WindowKind;
  /** The policy, instead of express-rate-limit's (needed when its `limit` is a function). */
  limit?: number;
  windowMs?: number;
}

/** The limiter's own options (a limiter is made and closed by shutdown()), or a limiter of yours. */
export type StoreOptions = StoreOwnOptions & (LimiterOptions | { limiter: DistributedRateLimiter });

export declare class DistributedRateLimiterStore implements Store {
  constructor(options?: StoreOptions);
  /** `<limiter prefix>erl:`: every key of this store starts with it. */
  readonly prefix: string;
  readonly localKeys: false;
  readonly limiter: DistributedRateLimiter;
  init(options: Options): void;
  increment(key: string): Promise<IncrementResponse>;
  decrement(key: string): Promise<void>;
  get(key: string): Promise<ClientRateLimitInfo | undefined>;
  resetKey(key: string): Promise<void>;
  /** SCAN on every master, then a reset per key of this store: an admin call. */
  resetAll(): Promise<void>;
  shutdown(): Promise<void>;
}
