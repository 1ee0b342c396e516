'use strict';
// The four ways a user hands us a standalone connection: ioredis and node-redis, each
// speaking RESP2 or RESP3. Each maker returns a connected client.

const IoRedis = require('ioredis');
const { createClient, createCluster } = require('redis');

const STANDALONE = {
  'ioredis RESP2': async (port) => {
    const c = new IoRedis({ port, protocol: 2, lazyConnect: true });
    await c.connect();
    return c;
  },
  'ioredis RESP3': async (port) => {
    const c = new IoRedis({ port, protocol: 3, lazyConnect: true });
    await c.connect();
    return c;
  },
  'ioredis RESP3, maps as objects': async (port) => {
    const c = new IoRedis({ port, protocol: 3, replyMapping: 'resp3', lazyConnect: true });
    await c.connect();
    return c;
  },
  'node-redis RESP2': async (port) => {
    const c = createClient({ socket: { port, host: '127.0.0.1' }, RESP: 2 });
    c.on('error', () => {});
    await c.connect();
    return c;
  },
  'node-redis RESP3': async (port) => {
    const c = createClient({ socket: { port, host: '127.0.0.1' }, RESP: 3 });
    c.on('error', () => {});
    await c.connect();
    return c;
  },
};

const CLUSTER = {
  'ioredis Cluster RESP2': async (ports) => {
    const c = new IoRedis.Cluster(ports.map((port) => ({ host: '127.0.0.1', port })), { redisOptions: { protocol: 2 }, lazyConnect: true });
    await c.connect();
    return c;
  },
  'ioredis Cluster RESP3': async (ports) => {
    const c = new IoRedis.Cluster(ports.map((port) => ({ host: '127.0.0.1', port })), { redisOptions: { protocol: 3 }, lazyConnect: true });
    await c.connect();
    return c;
  },
  'node-redis cluster RESP2': async (ports) => {
    const c = createCluster({ rootNodes: ports.map((port) => ({ socket: { host: '127.0.0.1', port } })), RESP: 2 });
    c.on('error', () => {});
    await c.connect();
    return c;
  },
  'node-redis cluster RESP3': async (ports) => {
    const c = createCluster({ rootNodes: ports.map((port) => ({ socket: { host: '127.0.0.1', port } })), RESP: 3 });
    c.on('error', () => {});
    await c.connect();
    return c;
  },
};

/** Closes any of them. */
async function close(c) {
  if (typeof c.disconnect === 'function' && typeof c.status === 'string') return c.disconnect();
  if (typeof c.destroy === 'function') return c.destroy();
  return c.disconnect();
}

module.exports = { STANDALONE, CLUSTER, close };
