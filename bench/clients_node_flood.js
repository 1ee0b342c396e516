#!/usr/bin/env node
// A flood on a denied key (issue 18, "Why" 14): one limiter instance hammers one key that is
// over its limit (1 per minute) for SECONDS seconds, one check after another, with the deny
// cache on (the default, denyCacheMaxMs 1000) and off (0). Reports the calls Redis received
// (INFO commandstats, RL.THROTTLE) and the client-observed p50/p99 per check.
//   node bench/clients_node_flood.js [--seconds S]   (RL_MODULE: the module, as for the tests)
// Needs `npm ci` in clients/node. Starts its own redis-server on a free port; about 2*S s.

const path = require('path');
const { execFileSync } = require('child_process');
const NODE_DIR = path.join(__dirname, '..', 'clients', 'node');
const IoRedis = require(path.join(NODE_DIR, 'node_modules', 'ioredis'));
const { DistributedRateLimiter } = require(NODE_DIR);
const { Server } = require(path.join(NODE_DIR, 'test', 'servers'));

const arg = process.argv.indexOf('--seconds');
const SECONDS = arg > 0 ? Number(process.argv[arg + 1]) : 10;

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function throttleCalls(info) {
  const m = /cmdstat_rl\.throttle:calls=(\d+)/.exec(info);
  return m ? Number(m[1]) : 0;
}

async function flood(port, denyCacheMaxMs) {
  const conn = new IoRedis({ port, protocol: 2 });
  const rl = new DistributedRateLimiter(conn, { timeoutMs: 1000, denyCacheMaxMs, prefix: `flood${denyCacheMaxMs}:` });
  try {
    await rl.configureRateLimit('spammer', { limit: 1, windowMs: 60000 });
    await rl.throttle('spammer'); // the one allowed request; every later one is denied
    await rl.throttle('spammer'); // learns whether the module takes WITHPOLICY
    await conn.config('RESETSTAT');
    const ns = [];
    const until = process.hrtime.bigint() + BigInt(SECONDS) * 1_000_000_000n;
    let allowed = 0;
    for (;;) {
      const t0 = process.hrtime.bigint();
      if (t0 >= until) break;
      const v = await rl.throttle('spammer');
      ns.push(Number(process.hrtime.bigint() - t0));
      if (v.allowed) allowed++;
    }
    const received = throttleCalls(await conn.info('commandstats'));
    const sorted = Float64Array.from(ns).sort();
    return { checks: ns.length, allowed, received, p50: percentile(sorted, 50) / 1000, p99: percentile(sorted, 99) / 1000, cached: rl.stats().cached };
  } finally {
    conn.disconnect();
  }
}

async function main() {
  const server = await new Server().start();
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: __dirname, encoding: 'utf8' }).trim();
    const rows = [];
    for (const ms of [1000, 0]) rows.push([ms, await flood(server.port, ms)]);
    console.log(`Flood on one denied key, ${SECONDS} s per run, one instance, checks back to back (commit ${commit}, ${new Date().toISOString().slice(0, 10)}, Node ${process.version}):\n`);
    console.log('| denyCacheMaxMs | checks | Redis calls received (RL.THROTTLE) | checks per Redis call | p50 µs | p99 µs |');
    console.log('| --- | --- | --- | --- | --- | --- |');
    for (const [ms, r] of rows) {
      console.log(`| ${ms}${ms ? '' : ' (off)'} | ${r.checks} | ${r.received} | ${(r.checks / Math.max(r.received, 1)).toFixed(0)} | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} |`);
      if (r.allowed) console.log(`(allowed ${r.allowed}: the key was not denied throughout)`);
    }
  } finally {
    await server.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
