// Compiled (not run) by test/types.test.js: the shipped index.d.ts describes the API as used.
import { DistributedRateLimiter, rateLimit, RateLimitArgumentError, Verdict, Stats, LocalLimiter, keySlot, ipKey } from 'distributed-rate-limiter';
import IoRedis from 'ioredis';

async function main(): Promise<void> {
  const rateLimiter = new DistributedRateLimiter();
  await rateLimiter.configureRateLimit('user123', { limit: 10, windowMs: 60000 });
  const ok: boolean = await rateLimiter.isAllowed('user123');
  const v: Verdict = await rateLimiter.throttle('user123', { cost: 2, limit: 10, windowMs: 1000, burst: 20 });
  const retry: number = v.retryAfterMs;
  const header: string | undefined = v.headers['Retry-After'];
  const s: Stats = rateLimiter.stats();
  const withClient = new DistributedRateLimiter(new IoRedis(), { onError: 'deny', timeoutMs: 20, localShare: 0.25, prefix: 'rl:' });
  withClient.on('degraded', (e) => console.log(e.stats.state));
  const mw = rateLimit(withClient, { key: (req) => String(req.headers['x-api-key']), limit: 100, windowMs: 60000 });
  const local = new LocalLimiter({ now: () => 0n });
  const lv = local.check('k', { limit: 1n, windowMs: 1000n, burst: 1n }, 1n);
  const slot: number = keySlot('{user}:x');
  console.log(ok, retry, header, s.failedOpen, mw, lv.allowed, slot, ipKey('::1'), new RateLimitArgumentError('x').message);
  // @ts-expect-error onError takes one of three words
  new DistributedRateLimiter({ onError: 'maybe' });
}
main();
