#!/usr/bin/env node
// What the Node client costs (issue 12): client-observed latency of isAllowed against the raw
// RL.ALLOW on the same ioredis connection (target: under 10% added to p50), the Lua fallback
// against the module in server time per call, and the local limiter's time per decision.
//   node bench/clients_node.js [--calls N]     (RL_MODULE: the module, as for the tests)
// Needs `npm ci` in clients/node. Starts its own redis-servers on free ports; about 30 s.

const path = require('path');
const NODE_DIR = path.join(__dirname, '..', 'clients', 'node');
const IoRedis = require(path.join(NODE_DIR, 'node_modules', 'ioredis'));
const { DistributedRateLimiter, LocalLimiter } = require(NODE_DIR);
const policyOf = require(path.join(NODE_DIR, 'src', 'policy'));
const { Server } = require(path.join(NODE_DIR, 'test', 'servers'));

const arg = process.argv.indexOf('--calls');
const CALLS = arg > 0 ? Number(process.argv[arg + 1]) : 40000;
const KEYS = 1000;
const POLICY = { limit: 1_000_000, windowMs: 1000 }; // everything passes: same work every call

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function summary(ns) {
  const s = Float64Array.from(ns).sort();
  return { p50: percentile(s, 50) / 1000, p99: percentile(s, 99) / 1000 };
}

/** The raw command and the client call by call, alternately, so that noise hits both alike. */
async function latency(raw, rl) {
  const rawNs = [];
  const clientNs = [];
  for (let k = 0; k < CALLS; k++) {
    const key = k % KEYS;
    let t0 = process.hrtime.bigint();
    await raw.call('RL.ALLOW', `bench:${key}`);
    rawNs.push(Number(process.hrtime.bigint() - t0));
    t0 = process.hrtime.bigint();
    await rl.isAllowed(`${key}`);
    clientNs.push(Number(process.hrtime.bigint() - t0));
  }
  return { raw: summary(rawNs), client: summary(clientNs) };
}

async function serverUsecPerCall(conn, command) {
  const line = (await conn.info('commandstats')).split('\n').find((l) => l.startsWith(`cmdstat_${command}:`));
  return line ? Number(/usec_per_call=([\d.]+)/.exec(line)[1]) : NaN;
}

async function serverSide(module) {
  const server = await new Server({ module }).start();
  const conn = new IoRedis({ port: server.port, protocol: 2 });
  // denyCacheMaxMs 0: isAllowed sends RL.ALLOW, like for like with the raw command (with the
  // deny cache on, the default, it sends RL.THROTTLE to learn a denial's retry time).
  const rl = new DistributedRateLimiter(conn, { timeoutMs: 5000, prefix: 'bench:', denyCacheMaxMs: 0 });
  try {
    for (let i = 0; i < KEYS; i++) await rl.configureRateLimit(`${i}`, POLICY);
    for (let i = 0; i < 2000; i++) await rl.isAllowed(`${i % KEYS}`); // warm-up
    const out = { server };
    if (module) out.latency = await latency(conn, rl);
    await conn.config('RESETSTAT');
    for (let i = 0; i < 10000; i++) await rl.isAllowed(`${i % KEYS}`);
    out.usec = await serverUsecPerCall(conn, module ? 'rl.allow' : 'evalsha');
    return out;
  } finally {
    conn.disconnect();
    await server.stop();
  }
}

function localNsPerDecision() {
  let now = 1_764_000_000_000n;
  const local = new LocalLimiter({ now: () => now });
  const pol = policyOf.policy({ limit: 100, windowMs: 1000 });
  const keys = Array.from({ length: KEYS }, (_, i) => `k${i}`);
  const n = 1_000_000;
  for (let i = 0; i < 100_000; i++) local.check(keys[i % KEYS], pol, 1n);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    if ((i & 1023) === 0) now += 1n;
    local.check(keys[i % KEYS], pol, 1n);
  }
  return Number(process.hrtime.bigint() - t0) / n;
}

async function main() {
  console.log(`node ${process.version}, ${CALLS} calls of each kind, alternating, ${KEYS} keys, ioredis (RESP2), one connection, loopback`);
  const mod = await serverSide(true);
  const lua = await serverSide(false);
  const { raw, client } = mod.latency;
  const added = (client.p50 / raw.p50 - 1) * 100;
  console.log('client-observed latency, us        p50      p99');
  console.log(`  raw RL.ALLOW (ioredis call)   ${raw.p50.toFixed(1).padStart(7)}  ${raw.p99.toFixed(1).padStart(7)}`);
  console.log(`  isAllowed (this client)       ${client.p50.toFixed(1).padStart(7)}  ${client.p99.toFixed(1).padStart(7)}`);
  console.log(`  added to p50: ${added.toFixed(1)}% (target < 10%)`);
  console.log('server time per call, us (INFO commandstats usec_per_call)');
  console.log(`  module RL.ALLOW               ${mod.usec.toFixed(2)}`);
  console.log(`  Lua fallback (EVALSHA)        ${lua.usec.toFixed(2)}  (${(lua.usec / mod.usec).toFixed(1)}x the module)`);
  console.log(`local limiter: ${localNsPerDecision().toFixed(0)} ns per decision (BigInt GCRA, ${KEYS} keys)`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
