// Types for distributed-rate-limiter (hand-written; the package is plain JavaScript).
import { EventEmitter } from 'events';

/** An integer: a safe-integer Number, a BigInt, or a string of digits. */
export type Int = number | bigint | string;

/**
 * One limit. GCRA (the default): `limit` per `windowMs` on average, bursts up to `burst`.
 * SLIDING: at most `limit` in any `windowMs`. CONCURRENCY: at most `limit` leases held at
 * once (by cost), each living `windowMs` unless released or renewed (acquire/release).
 */
export interface Limit {
  /** Requests per window, 1..10^9 (SLIDING, CONCURRENCY: 1..1000). */
  limit: Int;
  /** The window in ms, 1..10^12 (SLIDING, CONCURRENCY: up to 4294967295; CONCURRENCY: a lease's life). */
  windowMs: Int;
  /** GCRA only: the bucket's capacity, 1..10^9 (default: limit). */
  burst?: Int;
  kind?: 'gcra' | 'sliding' | 'concurrency';
}

/** One limit, or 1 to 4 decided all-or-nothing. */
export type Policy = Limit | Limit[];

/** Opt-in penalties: a denial blocks the key for penaltyMs, doubling within a window of the last block, up to penaltyMaxMs. */
export interface PenaltyOptions {
  /** 1..10^12 ms. */
  penaltyMs?: Int;
  /** penaltyMs..10^12 ms (default penaltyMs: no escalation). */
  penaltyMaxMs?: Int;
}

export interface ConfigureOptions extends PenaltyOptions {
  /** Forget the key after this many ms without an allowed request (default: never). */
  idleMs?: Int;
  /** Observe only: would-be denials are allowed and counted by the module. */
  shadow?: boolean;
}

export type ConfigurePolicy = (Limit & ConfigureOptions) | Limit[] | ({ limits: Limit[] } & ConfigureOptions);

/** An inline policy (for keys without a stored one). */
export type InlinePolicy = (Partial<Limit> & PenaltyOptions) | ({ limits: Limit[] } & PenaltyOptions);

/** A check's options: an inline policy and a cost. */
export type CheckOptions = ({ cost?: Int } & InlinePolicy) | Limit[];

/** reserve()'s options: the hold's life (1..86400000 ms, default 300000) and an inline policy. */
export type ReserveOptions = { holdMs?: Int } & InlinePolicy;

/** withLease()'s options: acquire's, and whether a denial rejects (with Denied) instead of resolving. */
export type LeaseOptions = ({ cost?: Int } & InlinePolicy) & { rejectOnDeny?: boolean };

/** A reservation or lease id: a Number from Redis, or 'L<n>' from the local limiter. */
export type GrantId = number | string;

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

/** reserve()'s decision: `reservation` is the id to settle(), null when denied (or when no reservation could be taken). */
export interface ReserveDecision extends Decision {
  reservation: GrantId | null;
}

/** acquire()'s decision: `lease` is the id to release(), null when denied (or when no lease could be taken). */
export interface LeaseDecision extends Decision {
  lease: GrantId | null;
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
  kind?: 'gcra' | 'sliding' | 'concurrency';
  limits?: { kind: 'gcra' | 'sliding' | 'concurrency'; limit: number; windowMs: number; burst: number; remaining: number; resetAfterMs: number; held?: number; nextExpiryMs?: number | null }[];
  /** Ms to the block's end (0: not blocked); a server older than issue 19 does not tell. */
  blockedMs?: number;
  penaltyLevel?: number;
  /** The stored PENALTY's ms and max ms, null without one. */
  penaltyMs?: number | null;
  penaltyMaxMs?: number | null;
  /** Open holds, and the sum of their estimates. */
  holds?: number;
  held?: number;
  /** Ms until the earliest open hold expires, null if none. */
  nextHoldExpiryMs?: number | null;
  /** Leases held (issue 20). */
  leases?: number;
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
  /**
   * OpenTelemetry (clients/README.md, "OpenTelemetry"): omitted, recorded when @opentelemetry/api
   * is installed and a meter or tracer provider is set globally; false, off; or the providers.
   */
  telemetry?: false | { meterProvider?: unknown; tracerProvider?: unknown };
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
  /** Gives back n units (1..10^9) on every rate limit; resolves the most any limit gave back. */
  refund(clientId: string | Buffer, n: Int, options?: InlinePolicy): Promise<number>;
  /** Decided like throttle at cost `estimate`; when allowed, holds it until settled or holdMs passes. */
  reserve(clientId: string | Buffer, estimate: Int, options?: ReserveOptions): Promise<ReserveDecision>;
  /** Settles to the actual cost (0..10^9): resolves units charged (> 0) or refunded (< 0); 0 for a null reservation. */
  settle(clientId: string | Buffer, reservation: GrantId | null, actual: Int): Promise<number>;
  /** Blocks the key for ms (1..10^12): every check is denied until then. */
  block(clientId: string | Buffer, ms: Int): Promise<void>;
  /** Ends the block and its penalty level: true if the key was blocked. */
  unblock(clientId: string | Buffer): Promise<boolean>;
  /** Takes a lease on a key with a CONCURRENCY limit (all or nothing with its other limits). */
  acquire(clientId: string | Buffer, options?: CheckOptions): Promise<LeaseDecision>;
  /** Gives a lease back: true if it was held (false: expired, released, never issued, or null). */
  release(clientId: string | Buffer, lease: GrantId | null): Promise<boolean>;
  /** A held lease then expires ms (1..4294967295) from now: true if it was held. */
  renew(clientId: string | Buffer, lease: GrantId | null, ms: Int): Promise<boolean>;
  /** Runs fn under a lease, always released: fn's value, or the denied decision (Denied with rejectOnDeny). */
  withLease<T>(clientId: string | Buffer, fn: (decision: LeaseDecision) => T | Promise<T>, options?: LeaseOptions): Promise<T | LeaseDecision>;
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
/** A denial raised as an error where asked for (withLease's rejectOnDeny). */
export declare class Denied extends RateLimitError {
  constructor(decision: Decision);
  decision: Decision;
}
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
  /** The reservation or lease taken (mode 'reserve' or 'acquire'), else null. */
  id: bigint | null;
}

export interface LocalLimit {
  kind: 'gcra' | 'sliding' | 'concurrency';
  limit: bigint;
  windowMs: bigint;
  burst: bigint;
}

export type LocalPolicy = { limits: readonly LocalLimit[]; penalty?: { ms: bigint; maxMs: bigint } | null } | { limit: bigint; windowMs: bigint; burst: bigint };

/** The in-process limiter (exact integers): GCRA, SLIDING, CONCURRENCY and sets, refunds, reservations and penalties, as the module decides. */
export declare class LocalLimiter {
  constructor(options?: { now?: () => bigint; maxKeys?: number });
  /** Stores `policy` for `key` as RL.CONFIG does: it beats the policy a check brings; the usage is carried to it as of now. */
  configure(key: string, policy: LocalPolicy): void;
  /** mode: 'throttle' (or false), 'peek' (or true), 'reserve' (cost = the estimate) or 'acquire'. `policy` null: the configured one. */
  check(key: string, policy: LocalPolicy | null, cost: bigint, mode?: boolean | 'throttle' | 'peek' | 'reserve' | 'acquire', options?: { shadow?: boolean; holdMs?: bigint }): LocalDecision;
  refund(key: string, policy: LocalPolicy, n: bigint): bigint;
  settle(key: string, id: bigint, actual: bigint): bigint;
  release(key: string, id: bigint): bigint;
  renew(key: string, id: bigint, ms: bigint): bigint;
  block(key: string, ms: bigint): void;
  unblock(key: string): bigint;
  reset(key: string): bigint;
  /** What RL.INFO tells of the key (remaining null without a configured policy), or null for none. */
  info(key: string): { remaining: bigint | null; resetAfterMs: bigint; blockedMs: bigint; penaltyLevel: number; holds: number; held: bigint; nextHoldExpiryMs: bigint | null; leases: number } | null;
  clear(): void;
  readonly size: number;
}

/** `ip:a.b.c.d`, or `ip:<RFC 5952 network>/64` for IPv6. */
export declare function ipKey(address: string | undefined): string;

/** The Redis Cluster slot of a key. */
export declare function keySlot(key: string | Buffer): number;
