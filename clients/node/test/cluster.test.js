'use strict';
// A real 3-master cluster: every call goes straight to the key's owner. Proof from the
// servers themselves: per node, INFO commandstats counts exactly the calls for the keys it
// owns, and no call was rejected (a MOVED redirect counts as a rejected call in Redis 7).

const test = require('node:test');
const assert = require('node:assert/strict');
const IoRedis = require('ioredis');
const { DistributedRateLimiter, keySlot } = require('../src');
const { startCluster } = require('./servers');
const { CLUSTER, close } = require('./clients');

const KEYS = Array.from({ length: 200 }, (_, i) => `client:${i}`);
const HOT_CALLS = 100;

/** {command: {calls, rejected, failed}} from INFO commandstats. */
async function commandstats(node) {
  const out = {};
  for (const line of (await node.info('commandstats')).split('\n')) {
    const m = /^cmdstat_(\S+?):calls=(\d+).*rejected_calls=(\d+),failed_calls=(\d+)/.exec(line);
    if (m) out[m[1]] = { calls: Number(m[2]), rejected: Number(m[3]), failed: Number(m[4]) };
  }
  return out;
}

/** The port owning each slot, from CLUSTER SLOTS. */
async function owners(node) {
  const bySlot = new Array(16384);
  for (const [from, to, master] of await node.cluster('SLOTS')) for (let s = from; s <= to; s++) bySlot[s] = master[1];
  return bySlot;
}

/** Runs the workload; returns the number of checks sent for each port. */
async function workload(rl, bySlot, tag) {
  const expected = new Map();
  const count = (id) => {
    const port = bySlot[keySlot(rl.key(id))]; // the limiter's prefix is part of the key
    expected.set(port, (expected.get(port) || 0) + 1);
  };
  const inline = { limit: 1000, windowMs: 1000 };
  for (const k of KEYS) {
    assert.equal(await rl.isAllowed(`${tag}:${k}`, inline), true);
    count(`${tag}:${k}`);
  }
  for (let i = 0; i < HOT_CALLS; i++) {
    await rl.isAllowed(`${tag}:hot`, inline);
    count(`${tag}:hot`);
  }
  return expected;
}

for (const backend of ['module', 'lua']) {
  test(`cluster, ${backend}: every call straight to the owning node`, async (t) => {
    const cluster = await startCluster({ module: backend === 'module' });
    const nodes = cluster.ports.map((port) => new IoRedis({ port, protocol: 2 }));
    try {
      const bySlot = await owners(nodes[0]);
      const hasLeases = (await nodes[0].call('COMMAND', 'INFO', 'RL.ACQUIRE'))[0] !== null;
      const variants = backend === 'module' ? Object.entries(CLUSTER) : Object.entries(CLUSTER).filter(([n]) => n.endsWith('RESP2'));
      for (const [name, make] of variants) {
        await t.test(name, async () => {
          const client = await make(cluster.ports);
          // No deny cache: isAllowed sends RL.ALLOW, and every call reaches a node.
          const rl = new DistributedRateLimiter(client, { timeoutMs: 2000, denyCacheMaxMs: 0 });
          try {
            await rl.configureRateLimit(`${name}:user123`, { limit: 10, windowMs: 60000 });
            const brief = [];
            for (let i = 0; i < 15; i++) brief.push(await rl.isAllowed(`${name}:user123`));
            assert.deepEqual(brief, [...Array(10).fill(true), ...Array(5).fill(false)]);

            await Promise.all(nodes.map((n) => n.config('RESETSTAT')));
            const expected = await workload(rl, bySlot, name);
            for (const [i, node] of nodes.entries()) {
              const stats = await commandstats(node);
              const want = expected.get(cluster.ports[i]) || 0;
              if (backend === 'module') {
                const s = stats['rl.allow'] || { calls: 0, rejected: 0, failed: 0 };
                assert.deepEqual(s, { calls: want, rejected: 0, failed: 0 }, `node ${cluster.ports[i]}`);
              } else {
                const sha = stats.evalsha || { calls: 0, rejected: 0, failed: 0 };
                const ev = stats.eval || { calls: 0, rejected: 0, failed: 0 };
                // NOSCRIPT (first call on a node after the script cache was emptied) fails an
                // EVALSHA, loads the script (SCRIPT LOAD) and sends EVALSHA again.
                assert.equal(sha.calls - sha.failed + ev.calls, want, `node ${cluster.ports[i]}`);
                assert.deepEqual([sha.rejected, ev.rejected, ev.failed], [0, 0, 0]);
              }
            }
            assert.deepEqual([rl.stats().errors, rl.stats()[backend === 'module' ? 'redis' : 'lua']], [0, KEYS.length + HOT_CALLS + 15]);

            if (backend === 'lua' || hasLeases) {
              // Issues 19 and 20's calls go to the key's owner like checks (keys on every node).
              const lease = [{ kind: 'concurrency', limit: 1, windowMs: 60000 }];
              for (const k of KEYS.slice(0, 30)) {
                const a = await rl.acquire(`${name}:lease:${k}`, lease);
                assert.equal(a.allowed, true);
                assert.equal((await rl.acquire(`${name}:lease:${k}`, lease)).allowed, false);
                assert.equal(await rl.release(`${name}:lease:${k}`, a.lease), true);
                const r = await rl.reserve(`${name}:tokens:${k}`, 5, { limit: 10, windowMs: 1000 });
                assert.equal(await rl.settle(`${name}:tokens:${k}`, r.reservation, 2), -3);
              }
              assert.equal(rl.stats().errors, 0);
            }

            if (name.startsWith('ioredis')) {
              // A stale slot map (as after a resharding): the node answers MOVED, the client
              // follows it once and refreshes the map.
              const key = `${name}:moved`;
              const slot = keySlot(rl.key(key));
              const owner = client.slots[slot][0];
              const other = Object.keys(client.connectionPool.nodes.master).find((k) => k !== owner);
              client.slots[slot] = [other];
              assert.equal(await rl.isAllowed(key, { limit: 5, windowMs: 1000 }), true);
              assert.equal(rl.stats().errors, 0);
              const until = Date.now() + 5000;
              while (client.slots[slot][0] !== owner && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
              assert.equal(client.slots[slot][0], owner, 'slot map refreshed');
            }
          } finally {
            await close(client);
          }
        });
      }
    } finally {
      nodes.forEach((n) => n.disconnect());
      await cluster.stop();
    }
  });
}
