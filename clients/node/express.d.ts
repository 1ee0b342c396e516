// Types for distributed-rate-limiter/express.
import { DistributedRateLimiter, CheckOptions, Decision, Limit, Int } from './index';

export interface RateLimitInfo {
  limit: number;
  used: number;
  remaining: number;
  resetTime: Date;
  /** The client id checked: `<name>:<client key>` (the limiter adds its prefix). */
  key: string;
  decision: Decision;
}

export interface MiddlewareOptions {
  /** This middleware's namespace (default: `METHOD baseUrl+route path`). Two middlewares share buckets only with the same name. */
  name?: string;
  /** The client key of a request (default: the client IP, IPv6 grouped by /64). Nothing returned: the failure policy. */
  key?: (req: any) => string | Buffer | undefined | null | Promise<string | Buffer | undefined | null>;
  /** true: the request passes uncounted. */
  skip?: (req: any, res: any) => boolean | Promise<boolean>;
  /** Answers a denied request (default: statusCode and message). */
  handler?: (req: any, res: any, next: (err?: unknown) => void, options: MiddlewareOptions & { statusCode: number; message: string }) => void;
  /** Status when denied (default 429). */
  statusCode?: number;
  /** Body when denied. */
  message?: string;
  /** true: hold a lease (acquire) for the request's length, released on the response's finish or close (a key with a CONCURRENCY limit). */
  lease?: boolean;
  cost?: number;
  limit?: Limit['limit'];
  windowMs?: Limit['windowMs'];
  burst?: Limit['burst'];
  kind?: Limit['kind'];
  limits?: Limit[];
  penaltyMs?: Int;
  penaltyMaxMs?: Int;
}

/** Express middleware: RateLimit headers on every response, 429 (+ Retry-After) when denied; sets req.rateLimit. */
export declare function rateLimit(limiter: DistributedRateLimiter, options?: MiddlewareOptions): (req: any, res: any, next: (err?: unknown) => void) => Promise<void>;

export declare function routeName(req: any): string;

export type { CheckOptions };
