// Compiled (not run) by test/types.test.js: the shipped index.d.ts describes the API as used.
import { DistributedRateLimiter, InvalidArgument, ForeignKey, Decision, Stats, LocalLimiter, keySlot, ipKey, ReserveDecision, LeaseDecision, Denied } from 'distributed-rate-limiter';
import { rateLimit } from 'distributed-rate-limiter/express';
import IoRedis from 'ioredis';
import { RateLimiterDRL, RateLimiterRes } from 'distributed-rate-limiter/rate-limiter-flexible';
import { DistributedRateLimiterStore } from 'distributed-rate-limiter/express-rate-limit';
import { fastifyStore } from 'distributed-rate-limiter/fastify';
import { DistributedThrottlerStorage } from 'distributed-rate-limiter/nestjs';

async function main(): Promise<void> {
  const rateLimiter = new DistributedRateLimiter('redis://127.0.0.1:6379', { timeoutMs: 50 });
  await rateLimiter.ready();
  await rateLimiter.configureRateLimit('user123', { limit: 10, windowMs: 60000 });
  await rateLimiter.configureRateLimit('api', [{ limit: 10, windowMs: 1000 }, { limit: 1000, windowMs: 86400000, kind: 'sliding' }]);
  const ok: boolean = await rateLimiter.isAllowed('user123');
  const v: Decision = await rateLimiter.throttle('user123', { cost: 2, limit: 10, windowMs: 1000, burst: 20 });
  const w: Decision = await rateLimiter.waitUntilAllowed('user123', { timeoutMs: 500 });
  const binding: number = v.binding;
  const header: string | undefined = v.headers['Retry-After'];
  const s: Stats = rateLimiter.stats();
  const withClient = new DistributedRateLimiter(new IoRedis(), { onError: 'deny', localShare: 0.25, prefix: 'rl:', denyCacheMaxMs: 0 });
  withClient.on('degraded', (e) => console.log(e.stats.state));
  const mw = rateLimit(withClient, { name: 'login', key: (req) => req.headers['x-api-key'], skip: () => false, limit: 100, windowMs: 60000 });
  const local = new LocalLimiter({ now: () => 0n });
  const lv = local.check('k', { limit: 1n, windowMs: 1000n, burst: 1n }, 1n);
  local.configure('c', { limit: 2n, windowMs: 1000n, burst: 2n });
  const stored = local.check('c', null, 1n);
  const li = local.info('c');
  const left: bigint | null = li === null ? null : li.remaining;
  const slot: number = keySlot('{user}:x');
  await rateLimiter.configureRateLimit('login', { limit: 5, windowMs: 60000, penaltyMs: 1000, penaltyMaxMs: 60000 });
  await rateLimiter.configureRateLimit('tenant', [{ limit: 100, windowMs: 60000 }, { limit: 2, windowMs: 30000, kind: 'concurrency' }]);
  const r: ReserveDecision = await rateLimiter.reserve('tokens', 500, { holdMs: 60000, limit: 10000, windowMs: 60000 });
  const charged: number = await rateLimiter.settle('tokens', r.reservation, 420);
  const given: number = await rateLimiter.refund('user123', 1);
  await rateLimiter.block('login', 60000);
  const wasBlocked: boolean = await rateLimiter.unblock('login');
  const l: LeaseDecision = await rateLimiter.acquire('tenant', { cost: 1 });
  const renewed: boolean = await rateLimiter.renew('tenant', l.lease, 30000);
  const released: boolean = await rateLimiter.release('tenant', l.lease);
  const out: number | LeaseDecision = await rateLimiter.withLease('tenant', async (d) => d.remaining, { rejectOnDeny: false });
  const leased = rateLimit(rateLimiter, { name: 'jobs', lease: true });
  const lr = local.check('k', { limits: [{ kind: 'concurrency', limit: 2n, windowMs: 1000n, burst: 2n }] }, 1n, 'acquire');
  console.log(charged, given, wasBlocked, renewed, released, out, leased, lr.id, new Denied(l).decision.allowed);
  console.log(ok, w.path, binding, header, s.failedOpen, s.everConnected, mw, lv.allowed, stored.allowed, left, slot, ipKey('::1'), new InvalidArgument('x').message, ForeignKey.name);
  const flexible = new RateLimiterDRL({ storeClient: new IoRedis(), points: 10, duration: 1, blockDuration: 60 });
  const res: RateLimiterRes = await flexible.consume('u1', 2);
  const held: RateLimiterRes | null = await flexible.get('u1');
  const FastifyStore = fastifyStore({ limiter: rateLimiter, kind: 'gcra' });
  await FastifyStore.close();
  const storage = new DistributedThrottlerStorage({ url: 'redis://127.0.0.1:6379' });
  const rec = await storage.increment('k', 60000, 10, 60000, 'default');
  console.log(rec.isBlocked, rec.timeToBlockExpire);
  const erl = new DistributedRateLimiterStore({ url: 'redis://127.0.0.1:6379', kind: 'sliding' });
  console.log(res.msBeforeNext, res.remainingPoints, held, await flexible.delete('u1'), erl.prefix);
  // @ts-expect-error onError takes one of three words
  new DistributedRateLimiter({ onError: 'maybe' });
}
main();
