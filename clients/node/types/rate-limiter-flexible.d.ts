// Types for distributed-rate-limiter/rate-limiter-flexible (RateLimiterDRL, RateLimiterRedis's options and methods).
import type { RateLimiterRes as PeerRes, RateLimiterCompatibleAbstract } from 'rate-limiter-flexible';
import type { DistributedRateLimiter, LimiterOptions } from '../index';
import type { WindowKind } from './express-rate-limit';

/** rate-limiter-flexible's RateLimiterRes (its own class when the peer is installed). */
export type RateLimiterRes = PeerRes;
export declare const RateLimiterRes: typeof PeerRes;

/** RateLimiterRedis's options taken by RateLimiterDRL (storeClient is the limiter's `client`). */
export interface RateLimiterDRLOwnOptions {
  storeClient?: unknown;
  keyPrefix?: string;
  points: number;
  /** Seconds; 0: never expires (the longest window the module takes, 10^12 ms). */
  duration: number;
  /** Seconds a denial blocks the key (the module's PENALTY). */
  blockDuration?: number;
  /** GCRA, and an allowed consume resolves after the peer's delay. */
  execEvenly?: boolean;
  execEvenlyMinDelayMs?: number;
  /** The limiter's deny cache: must be >= points. */
  inMemoryBlockOnConsumed?: number;
  inMemoryBlockDuration?: number;
  /** Decides when Redis does not (else consume rejects with an Error). */
  insuranceLimiter?: RateLimiterCompatibleAbstract;
  /** How `points` per `duration` is decided (default 'auto': SLIDING up to 1000 points, else GCRA). */
  kind?: WindowKind;
  /** Accepted and ignored: the driver is found from the client. */
  rejectIfRedisNotReady?: boolean;
  useRedisPackage?: boolean;
  storeType?: string;
}

export type RateLimiterDRLOptions = RateLimiterDRLOwnOptions & (LimiterOptions | { limiter: DistributedRateLimiter });

export declare class RateLimiterDRL extends RateLimiterCompatibleAbstract {
  constructor(options: RateLimiterDRLOptions);
  readonly limiter: DistributedRateLimiter;
  points: number;
  duration: number;
  readonly msDuration: number;
  readonly msBlockDuration: number;
  insuranceLimiter: RateLimiterCompatibleAbstract | undefined;
  consume(key: string | number, pointsToConsume?: number, options?: { [key: string]: any }): Promise<PeerRes>;
  penalty(key: string | number, points?: number, options?: { [key: string]: any }): Promise<PeerRes>;
  reward(key: string | number, points?: number, options?: { [key: string]: any }): Promise<PeerRes>;
  get(key: string | number, options?: { [key: string]: any }): Promise<PeerRes | null>;
  block(key: string | number, secDuration: number, options?: { [key: string]: any }): Promise<PeerRes>;
  delete(key: string | number, options?: { [key: string]: any }): Promise<boolean>;
  /** Not supported: rejects with a RateLimitError saying why. */
  set(key: string | number, points: number, secDuration: number, options?: { [key: string]: any }): Promise<PeerRes>;
  getKey(key: string | number): string;
  parseKey(rlKey: string): string;
  deleteInMemoryBlockedAll(): void;
  /** Closes the connection this limiter opened (none when given a storeClient or a limiter). */
  close(): Promise<void>;
}
