// Types for distributed-rate-limiter (hand-written; the package is plain JavaScript).
import { EventEmitter } from 'events';

/** An integer: a safe-integer Number, a BigInt, or a string of digits. */
export type Int = number | bigint | string;

export interface Policy {
  /** Requests per window, 1..10^9. */
  limit: Int;
  /** The window in ms, 1..10^12. */
  windowMs: Int;
  /** The bucket's capacity, 1..10^9 (default: limit). */
  burst?: Int;
}

export interface ConfigurePolicy extends Policy {
  /** Forget the key after this many ms without an allowed request (default: never). */
  idleMs?: Int;
  /** Observe only: would-be denials are allowed and counted by the module. */
  shadow?: boolean;
}

export interface CheckOptions extends Partial<Policy> {
  /** The request's weight in requests, 1..10^9 (default 1). */
  cost?: Int;
}

export type Path = 'redis' | 'lua' | 'local' | 'failedOpen' | 'failedClosed';

export interface RateLimitHeaders {
  RateLimit: string;
  'RateLimit-Policy': string;
  /** Only when denied and the request can pass later. */
  'Retry-After'?: string;
}

export interface Verdict {
  allowed: boolean;
  /** The bucket's capacity (the policy's burst). */
  limit: number;
  /** Cost-1 requests that would pass right now. */
  remaining: number;
  /** Ms until this request would pass; -1 when allowed, or never (cost > burst). */
  retryAfterMs: number;
  /** Ms until the bucket is empty again. */
  resetAfterMs: number;
  headers: RateLimitHeaders;
  /** Who decided. */
  path: Path;
}

export interface Info {
  source: 'stored' | 'default' | 'none';
  limit: number | null;
  windowMs: number | null;
  burst: number | null;
  idleMs: number | null;
  shadow: boolean | null;
  scalePercent: number;
  remaining: number | null;
  resetAfterMs: number;
}

export interface Stats {
  redis: number;
  lua: number;
  local: number;
  failedOpen: number;
  failedClosed: number;
  /** Transport failures (timeouts, connection errors, unavailable servers). */
  errors: number;
  timeouts: number;
  state: 'closed' | 'open' | 'half_open';
  backend: 'module' | 'lua';
  localKeys: number;
  lastError: string | null;
}

/** An ioredis Redis/Cluster or a node-redis client/cluster (told apart at run time). */
export type RedisClientLike = { call(...args: any[]): any } | { sendCommand(...args: any[]): any };

export interface LimiterOptions {
  /** The connection to use (default: REDIS_URL or 127.0.0.1:6379, via ioredis). */
  client?: RedisClientLike;
  /** Prepended to every client id to make the key (default ''). */
  prefix?: string;
  /** What a check answers when Redis does not (default 'local'). */
  onError?: 'allow' | 'deny' | 'local';
  /** Fraction of each limit and burst the local limiter enforces, in (0, 1] (default 1). */
  localShare?: number;
  /** Per call, in ms (default 50). */
  timeoutMs?: number;
  /** While a new client has not connected yet (no answer, no failure so far), a call may wait this long for it (default 1000). */
  connectTimeoutMs?: number;
  /** Consecutive failures that open the circuit (default 3). */
  breakerFailures?: number;
  /** Ms the circuit stays open before one call probes Redis (default 1000). */
  breakerCooldownMs?: number;
  /** Called with 'degraded' when the circuit opens and 'recovered' when it closes. */
  onStateChange?: (event: 'degraded' | 'recovered', stats: Stats) => void;
  /** The local limiter's clock, Unix ms (tests). */
  now?: () => number | bigint;
}

export interface StateEvent {
  error: Error | null;
  stats: Stats;
}

export declare class DistributedRateLimiter extends EventEmitter {
  constructor(options?: LimiterOptions);
  constructor(client: RedisClientLike, options?: LimiterOptions);
  configureRateLimit(clientId: string | Buffer, policy: ConfigurePolicy): Promise<void>;
  isAllowed(clientId: string | Buffer, options?: CheckOptions): Promise<boolean>;
  throttle(clientId: string | Buffer, options?: CheckOptions): Promise<Verdict>;
  peek(clientId: string | Buffer, options?: CheckOptions): Promise<Verdict>;
  /** Resolves the backlog forgotten, in ms. */
  reset(clientId: string | Buffer): Promise<number>;
  info(clientId: string | Buffer): Promise<Info | null>;
  stats(): Stats;
  /** Closes the connection if the limiter opened it. */
  close(): Promise<void>;
  on(event: 'degraded' | 'recovered', listener: (e: StateEvent) => void): this;
}

/** Bad input, raised before anything is sent; the message is the module's. */
export declare class RateLimitArgumentError extends TypeError {}

export declare class RateLimitTimeoutError extends Error {}

export interface LocalVerdict {
  allowed: boolean;
  limit: bigint;
  remaining: bigint;
  retryAfterMs: bigint;
  resetAfterMs: bigint;
}

/** The in-process GCRA (exact integers). Policies' fields as BigInt: {limit, windowMs, burst}. */
export declare class LocalLimiter {
  constructor(options?: { now?: () => bigint });
  check(key: string | Buffer, policy: { limit: bigint; windowMs: bigint; burst: bigint }, cost: bigint, peek?: boolean): LocalVerdict;
  reset(key: string | Buffer): bigint;
  clear(): void;
  readonly size: number;
}

export interface MiddlewareOptions extends CheckOptions {
  /** The client id of a request (default: the client IP, IPv6 grouped by /64). */
  key?: (req: any) => string | Buffer | Promise<string | Buffer>;
  /** Status when denied (default 429). */
  statusCode?: number;
  /** Body when denied. */
  message?: string;
}

/** Express middleware: RateLimit headers on every response, 429 (+ Retry-After) when denied. */
export declare function rateLimit(limiter: DistributedRateLimiter, options?: MiddlewareOptions): (req: any, res: any, next: (err?: unknown) => void) => Promise<void>;

/** `ip:a.b.c.d`, or `ip:x:x:x:x::/64` for IPv6. */
export declare function ipKey(address: string | undefined): string;

/** The Redis Cluster slot of a key. */
export declare function keySlot(key: string | Buffer): number;
