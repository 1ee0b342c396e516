'use strict';
// node-redis `createClient` and `createCluster` (v4+).

const { Transport, isA } = require('./base');
const { keySlot } = require('../slot');

/** At most one topology rediscovery per this many ms (see drivers/ioredis.js). */
const REFRESH_MIN_MS = 200;

class NodeRedis extends Transport {
  connected() {
    return Boolean(this.client.isReady);
  }

  isReady() {
    return this.client.isReady;
  }

  isDown() {
    return !this.client.isOpen;
  }

  isReply(err) {
    return isA(err, 'ErrorReply');
  }

  send(_key, args) {
    return this.client.sendCommand(args);
  }

  gracefulQuit() {
    return this.client.close ? this.client.close() : this.client.quit();
  }

  drop() {
    if (!this.client.isOpen) return;
    if (typeof this.client.destroy === 'function') this.client.destroy();
    else this.client.disconnect().catch(() => {});
  }
}

/**
 * node-redis cluster: `sendCommand(firstKey, ...)` routes by the key's slot (without the key
 * it picks a random node and redirects); readiness is that of the slot master's client.
 */
class NodeRedisCluster extends NodeRedis {
  constructor(client) {
    super(client);
    this.refreshedAt = -Infinity;
  }

  nodeOf(key) {
    return keySlot(key);
  }

  /** Asks node-redis to rediscover the topology (internal API, used only when present). */
  refresh() {
    const now = performance.now();
    if (now - this.refreshedAt < REFRESH_MIN_MS) return;
    this.refreshedAt = now;
    const slots = this.client._slots || (this.client._self && this.client._self._slots);
    if (slots && typeof slots.rediscover === 'function') slots.rediscover().catch(() => {});
  }

  async masters() {
    const clients = await Promise.all(this.client.masters.map((m) => this.client.nodeClient(m)));
    return clients.map((c) => (args) => c.sendCommand(args));
  }

  connect(key) {
    if (this.client.isOpen && !this.isReady(key)) this.refresh();
  }

  isReady(key) {
    if (!this.client.isOpen) return false;
    const shard = this.client.slots[keySlot(key)];
    const client = shard && shard.master && shard.master.client;
    return Boolean(client && client.isReady);
  }

  send(key, args) {
    return this.client.sendCommand(key, false, args).catch((err) => {
      if (!/^(ERR|WRONGTYPE|NOSCRIPT|NOPERM)/.test(err.message || '')) this.refresh();
      throw err;
    });
  }
}

function matches(client) {
  return Boolean(client) && typeof client.sendCommand === 'function' && 'isReady' in client;
}

function wrap(client) {
  return 'masters' in client || typeof client.getSlotMaster === 'function' ? new NodeRedisCluster(client) : new NodeRedis(client);
}

/** A client of our own for a URL: no offline queue; connecting starts now (node-redis needs connect()). */
function create(lib, target, { connectTimeoutMs }) {
  const socket = { connectTimeout: connectTimeoutMs, tls: target.tls || undefined };
  const client = target.cluster
    ? lib.createCluster({
      rootNodes: target.nodes.map((n) => ({ socket: { host: n.host, port: n.port, tls: target.tls || undefined } })),
      defaults: { username: target.username, password: target.password, socket, disableOfflineQueue: true },
    })
    : lib.createClient({ url: target.url, socket, disableOfflineQueue: true });
  client.on('error', () => {}); // failures surface per call (and through ready())
  client.connect().catch(() => {});
  return client;
}

module.exports = { matches, wrap, create, NodeRedis, NodeRedisCluster };
