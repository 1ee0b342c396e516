'use strict';
// A cluster failover (3 masters + 3 replicas, node timeout 1 s): a master is killed while
// checks for its keys keep coming. No check waits longer than the timeout plus a margin,
// 'local' admits at most its share while the slot has no master, and checks return to Redis
// (on the promoted replica) once the cluster has failed over.

const test = require('node:test');
const assert = require('node:assert/strict');
const IoRedis = require('ioredis');
const { DistributedRateLimiter, keySlot } = require('../src');
const { startCluster, sleep } = require('./servers');
const { CLUSTER, close } = require('./clients');

const TIMEOUT_MS = 50;
const MARGIN_MS = 250;
const POLICY = { limit: 10, windowMs: 60000 };

/** The master port owning `key`, per CLUSTER SLOTS asked of `node`. */
async function ownerOf(node, key) {
  const slot = keySlot(key);
  for (const [from, to, master] of await node.cluster('SLOTS')) if (slot >= from && slot <= to) return master[1];
  return null;
}

test('cluster failover, onError local: bounded checks, the share, then the promoted replica', async (t) => {
  const cluster = await startCluster({ masters: 3, replicas: 1, nodeTimeoutMs: 1000 });
  const probes = [];
  try {
    const variants = [CLUSTER['ioredis Cluster RESP2'], CLUSTER['node-redis cluster RESP3']];
    for (const [i, make] of variants.entries()) {
      await t.test(i === 0 ? 'ioredis Cluster' : 'node-redis cluster', async () => {
        const alive = cluster.servers.filter((s) => s.proc.exitCode === null && !s.proc.signalCode);
        const probe = new IoRedis({ port: alive[0].port, protocol: 2 });
        probes.push(probe);
        const client = await make(alive.map((s) => s.port));
        const rl = new DistributedRateLimiter(client, { timeoutMs: TIMEOUT_MS, breakerCooldownMs: 300, localShare: 0.5 });
        const events = [];
        rl.on('degraded', () => events.push('degraded'));
        rl.on('recovered', () => events.push('recovered'));
        try {
          const key = `failover:${i}`;
          assert.equal((await rl.throttle(key, POLICY)).path, 'redis');
          const port = await ownerOf(probe, rl.key(key)); // the limiter's prefix is part of the key
          const victim = cluster.servers.find((s) => s.port === port);
          await victim.kill();

          let admitted = 0;
          let slowest = 0;
          let backAfter = null;
          const t0 = Date.now();
          while (Date.now() - t0 < 20000) {
            const c0 = performance.now();
            const v = await rl.throttle(key, POLICY);
            slowest = Math.max(slowest, performance.now() - c0);
            if (v.path === 'redis') {
              backAfter = Date.now() - t0;
              break;
            }
            assert.equal(v.path, 'local');
            if (v.allowed) admitted++;
            await sleep(10);
          }
          assert.ok(backAfter !== null, 'checks returned to Redis after the failover');
          assert.ok(slowest <= TIMEOUT_MS + MARGIN_MS, `a check waited ${slowest.toFixed(0)} ms`);
          assert.ok(admitted <= 5 + 1, `local admitted ${admitted}, share 5 (+1 per 12 s)`);
          assert.deepEqual(events, ['degraded', 'recovered']);
          t.diagnostic(`back to Redis ${backAfter} ms after the kill; ${admitted} admitted locally meanwhile`);
        } finally {
          await close(client);
        }
      });
    }
  } finally {
    probes.forEach((p) => p.disconnect());
    await cluster.stop();
  }
});
