'use strict';
// ioredis `Redis` and `Cluster` (v5, v6).

const { Transport, isA } = require('./base');
const { keySlot } = require('../slot');

/**
 * At most one topology refresh per this many ms, asked for when a key's master is not
 * reachable: the calls here bypass the library's own command path, where a failover is
 * normally noticed, so a dead master would otherwise stay in the slot map.
 */
const REFRESH_MIN_MS = 200;

class IoRedis extends Transport {
  connected() {
    return this.client.status === 'ready';
  }

  isReady() {
    return this.client.status === 'ready';
  }

  isDown() {
    return this.client.status === 'reconnecting' || this.client.status === 'end' || this.client.status === 'close';
  }

  isReply(err) {
    return isA(err, 'ReplyError');
  }

  /**
   * The ioredis Command itself is cancellable (its promise and reject()), as ioredis's own
   * commandTimeout uses it: no extra promise per call on the hot path.
   */
  start(key, args) {
    const Command = this.client.constructor.Command;
    if (!Command) return super.start(key, args);
    const cmd = new Command(args[0], args.slice(1), { replyEncoding: 'utf8', keyPrefix: this.client.options.keyPrefix });
    this.client.sendCommand(cmd);
    return cmd;
  }

  connect() {
    if (this.client.status === 'wait') this.client.connect().catch(() => {});
  }

  send(_key, args) {
    return this.client.call(args[0], args.slice(1));
  }
}

/**
 * ioredis Cluster: `Cluster.call` does not know where RL.* keys are (it sends to a random
 * master and follows MOVED), so the slot is computed here and the command goes to the
 * slot's master connection directly. A MOVED reply (slots moved since the last refresh) is
 * followed once and refreshes the slot map.
 */
class IoRedisCluster extends Transport {
  constructor(client) {
    super(client);
    this.refreshedAt = -Infinity;
  }

  nodeOf(key) {
    return keySlot(key);
  }

  connected() {
    return this.client.status === 'ready';
  }

  isReply(err) {
    return isA(err, 'ReplyError');
  }

  /** Asks ioredis to reload the slot map (it runs one refresh at a time). */
  refresh() {
    const now = performance.now();
    if (now - this.refreshedAt < REFRESH_MIN_MS) return;
    this.refreshedAt = now;
    this.client.refreshSlotsCache();
  }

  node(key) {
    const owners = this.client.slots[keySlot(key)];
    if (!owners || !owners[0]) return null;
    return this.client.connectionPool.getInstanceByKey(owners[0]) || null;
  }

  isReady(key) {
    if (this.client.status !== 'ready') return false;
    const node = this.node(key);
    return node !== null && node.status === 'ready';
  }

  async masters() {
    return this.client.nodes('master').map((node) => (args) => node.call(args[0], args.slice(1)));
  }

  connect(key) {
    if (this.client.status === 'wait') this.client.connect().catch(() => {});
    // The Cluster creates its node connections lazily (they connect on their first command).
    if (this.client.status !== 'ready') return;
    const node = this.node(key);
    if (node && node.status === 'wait') node.connect().catch(() => {});
    else if (!node || node.status !== 'ready') this.refresh();
  }

  async send(key, args) {
    const node = this.node(key);
    if (!node) throw new Error("no connection to the master of this key's slot");
    try {
      return await node.call(args[0], args.slice(1));
    } catch (err) {
      const moved = /^(MOVED|ASK) \d+ (\S+)/.exec(err.message || '');
      if (!moved) {
        if (!this.isReply(err) || /^(CLUSTERDOWN|TRYAGAIN|MASTERDOWN|READONLY)/.test(err.message)) this.refresh();
        throw err;
      }
      if (moved[1] === 'MOVED') this.client.refreshSlotsCache();
      const target = this.client.connectionPool.getInstanceByKey(moved[2]);
      if (!target || target.status !== 'ready') throw err;
      if (moved[1] === 'ASK') {
        const [, reply] = await Promise.all([target.call('ASKING', []), target.call(args[0], args.slice(1))]);
        return reply;
      }
      return target.call(args[0], args.slice(1));
    }
  }
}

function matches(client) {
  return Boolean(client) && typeof client.call === 'function' && typeof client.status === 'string';
}

function wrap(client) {
  return client.isCluster || client.connectionPool ? new IoRedisCluster(client) : new IoRedis(client);
}

/**
 * A client of our own for a URL (see drivers/index.js): no offline queue and no per-request
 * retries (a check that cannot be sent fails at once), reconnecting in the background.
 */
function create(IoRedisLib, target, { connectTimeoutMs }) {
  const common = { enableOfflineQueue: false, maxRetriesPerRequest: 0, connectTimeout: connectTimeoutMs };
  if (target.cluster) {
    return new IoRedisLib.Cluster(target.nodes.map((n) => ({ host: n.host, port: n.port })), {
      enableOfflineQueue: false,
      redisOptions: { ...common, username: target.username, password: target.password, tls: target.tls ? {} : undefined },
    });
  }
  return new IoRedisLib(target.url, common);
}

module.exports = { matches, wrap, create, IoRedis, IoRedisCluster };
