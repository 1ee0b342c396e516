// Types for distributed-rate-limiter (hand-written; the package is plain JavaScript).
import { EventEmitter } from 'events';

/** An integer: a safe-integer Number, a BigInt, or a string of digits. */
export type Int = number | bigint | string;

/** One limit. GCRA (the default): `limit` per `windowMs` on average, bursts up to `burst`. SLIDING: at most `limit` in any `windowMs`. */
export interface Limit {
  /** Requests per window, 1..10^9 (SLIDING: 1..1000). */
  limit: Int;
  /** The window in ms, 1..10^12 (SLIDING: up to 4294967295). */
  windowMs: Int;
  /** GCRA only: the bucket's capacity, 1..10^9 (default: limit). */
  burst?: Int;
  kind?: 'gcra' | 'sliding';
}

/** One limit, or 1 to 4 decided all-or-nothing. */
export type Policy = Limit | Limit[];

export interface ConfigureOptions {
  /** Forget the key after this many ms without an allowed request (default: never). */
  idleMs?: Int;
  /** Observe only: would-be denials are allowed and counted by the module. */
  shadow?: boolean;
}

export type ConfigurePolicy = (Limit & ConfigureOptions) | Limit[] | ({ limits: Limit[] } & ConfigureOptions);

/** A check's options: an inline policy (for keys without a stored one) and a cost. */
export type CheckOptions = ({ cost?: Int } & Partial<Limit>) | { cost?: Int; limits: Limit[] } | Limit[];

/** Who decided. */
export type Path = 'redis' | 'lua' | 'local' | 'cached' | 'failed_open' | 'failed_closed';

export interface RateLimitHeaders {
  RateLimit: string;
  'RateLimit-Policy': string;
  /** Only when denied and the request can pass later. */
  'Retry-After'?: string;
}

export interface Decision {
  allowed: boolean;
  /** The binding limit's capacity (GCRA: its burst; SLIDING: its limit). */
  limit: number;
  /** Cost-1 requests that would pass right now (the fewest of all limits). */
  remaining: number;
  /** Ms until this request would pass; -1 when allowed, or never (cost > capacity). */
  retryAfterMs: number;
  /** Ms until the binding limit is empty again. */
  resetAfterMs: number;
  /** 0-based index of the binding limit (0 for one limit). */
  binding: number;
  headers: RateLimitHeaders;
  path: Path;
}

/** @deprecated the 0.1 name of Decision. */
export type Verdict = Decision;

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
  kind?: 'gcra' | 'sliding';
  limits?: { kind: 'gcra' | 'sliding'; limit: number; windowMs: number; burst: number; remaining: number; resetAfterMs: number }[];
}

export interface Stats {
  redis: number;
  lua: number;
  local: number;
  /** Denials answered from the deny cache. */
  cached: number;
  failedOpen: number;
  failedClosed: number;
  /** Transport failures (timeouts, connection errors, refusals to write) that counted toward the breaker. */
  errors: number;
  timeouts: number;
  /** Policies stored again after Redis lost them. */
  reconfigured: number;
  state: 'closed' | 'open' | 'half_open';
  backend: 'module' | 'lua' | 'unknown';
  /** Whether Redis has ever answered. */
  everConnected: boolean;
  localKeys: number;
  lastError: string | null;
}

/** An ioredis Redis/Cluster or a node-redis client/cluster (told apart at run time). */
export type RedisClientLike = { call(...args: any[]): any } | { sendCommand(...args: any[]): any };

export interface Logger {
  warn(message: string): void;
  error(message: string): void;
}

export interface LimiterOptions {
  /** redis://, rediss:// or redis+cluster://host:port,host:port (default: REDIS_URL, else redis://127.0.0.1:6379). */
  url?: string;
  /** Your own connection instead of a URL. */
  client?: RedisClientLike;
  /** The library for a URL (default: ioredis if installed, else redis). */
  driver?: 'ioredis' | 'redis';
  /** Prepended to every client id to make the key, on every path (default 'rl:'). */
  prefix?: string;
  /** What a check answers when Redis does not (default 'local'). */
  onError?: 'allow' | 'deny' | 'local';
  /** Fraction of each limit the local limiter enforces, in (0, 1] (default 1). */
  localShare?: number;
  /** Per call, in ms, the first included (default 50). */
  timeoutMs?: number;
  /** ready()'s bound, and the wait of configure/reset/info for a first connection (default 1000). */
  connectTimeoutMs?: number;
  /** Consecutive failures that open the circuit (default 3). */
  breakerFailures?: number;
  /** Ms the circuit stays open before one call probes Redis (default 1000). */
  breakerCooldownMs?: number;
  /** Longest a denial is answered from memory, in ms (default 1000; 0: off). */
  denyCacheMaxMs?: number;
  /** Policies remembered to store again after Redis loses them (default 100000, LRU). */
  maxPolicies?: number;
  /** Keys the local limiter holds (default 100000, LRU). */
  localMaxKeys?: number;
  /** Where warnings go (default console). */
  logger?: Logger;
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
  constructor(url?: string, options?: LimiterOptions);
  constructor(options?: LimiterOptions);
  constructor(client: RedisClientLike, options?: LimiterOptions);
  /** Resolves once Redis answered; rejects with Unavailable when the first connection fails. */
  ready(): Promise<void>;
  configureRateLimit(clientId: string | Buffer, policy: ConfigurePolicy): Promise<void>;
  isAllowed(clientId: string | Buffer, options?: CheckOptions): Promise<boolean>;
  throttle(clientId: string | Buffer, options?: CheckOptions): Promise<Decision>;
  peek(clientId: string | Buffer, options?: CheckOptions): Promise<Decision>;
  /** Checks until allowed, sleeping each retryAfterMs, never past timeoutMs (default 10000); the last decision. */
  waitUntilAllowed(clientId: string | Buffer, options?: CheckOptions & { timeoutMs?: number }): Promise<Decision>;
  /** Resolves the backlog forgotten, in ms. */
  reset(clientId: string | Buffer): Promise<number>;
  info(clientId: string | Buffer): Promise<Info | null>;
  stats(): Stats;
  /** Closes the connection if the limiter opened it. */
  close(): Promise<void>;
  on(event: 'degraded' | 'recovered', listener: (e: StateEvent) => void): this;
}

export declare class RateLimitError extends Error {}
/** Bad options or URL at construction; `option` names it. */
export declare class ConfigurationError extends RateLimitError {
  option?: string;
}
/** A bad argument to a call, in the caller's words; nothing was sent. */
export declare class InvalidArgument extends RateLimitError {}
/** The server refused the call. */
export declare class CommandError extends RateLimitError {}
export declare class NoRateLimit extends CommandError {}
/** The key holds data this client did not create. */
export declare class ForeignKey extends CommandError {}
/** No answer in time, or the circuit is open (calls without a fallback; ready()). */
export declare class Unavailable extends RateLimitError {}
/** @deprecated use InvalidArgument. */
export declare const RateLimitArgumentError: typeof InvalidArgument;
/** @deprecated use Unavailable. */
export declare const RateLimitTimeoutError: typeof Unavailable;

export interface LocalDecision {
  allowed: boolean;
  binding: number;
  limit: bigint;
  remaining: bigint;
  retryAfterMs: bigint;
  resetAfterMs: bigint;
}

export interface LocalLimit {
  kind: 'gcra' | 'sliding';
  limit: bigint;
  windowMs: bigint;
  burst: bigint;
}

/** The in-process limiter (exact integers): GCRA, SLIDING and sets, as the module decides. */
export declare class LocalLimiter {
  constructor(options?: { now?: () => bigint; maxKeys?: number });
  check(key: string, policy: { limits: readonly LocalLimit[] } | { limit: bigint; windowMs: bigint; burst: bigint }, cost: bigint, peek?: boolean): LocalDecision;
  reset(key: string): bigint;
  clear(): void;
  readonly size: number;
}

/** `ip:a.b.c.d`, or `ip:<RFC 5952 network>/64` for IPv6. */
export declare function ipKey(address: string | undefined): string;

/** The Redis Cluster slot of a key. */
export declare function keySlot(key: string | Buffer): number;
