'use strict';
// The thin layer over the user's Redis client: send one command for one key, straight to the
// node that owns the key, and say whether that can happen right now without queueing.
//
// Supported: ioredis `Redis` and `Cluster` (v5, v6), node-redis `createClient` and
// `createCluster` (v4+). Never queue while disconnected: a check that cannot be sent now
// fails at once (or after waiting, bounded by the caller's timeout, for a first connection),
// so the library's offline queue never holds a decision for seconds.

const { keySlot } = require('./slot');

/** How often a not-yet-ready connection is polled while a call waits for it, in ms. */
const READY_POLL_MS = 5;
/**
 * At most one topology refresh per this many ms, asked for when a key's master is not
 * reachable: the calls here bypass the libraries' own command paths, where a failover is
 * normally noticed, so a dead master would otherwise stay in the slot map.
 */
const REFRESH_MIN_MS = 200;

function delay(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

class Transport {
  constructor(client) {
    this.client = client;
  }

  /** True when the client is connected (for a cluster: to the cluster). */
  connected() {
    return false;
  }

  /** True when a command for `key` would go on the wire now, not into an offline queue. */
  isReady(_key) {
    return false;
  }

  /** Resolves true as soon as `key`'s node is ready, false after `ms`. */
  async whenReady(key, ms) {
    const until = performance.now() + ms;
    this.connect(key);
    while (!this.isReady(key)) {
      const left = until - performance.now();
      if (left <= 0) return false;
      await delay(Math.min(READY_POLL_MS, left));
    }
    return true;
  }

  /** Starts connecting a client (or `key`'s node) that was created lazily; never throws. */
  connect(_key) {}

  /** Calls `fn` whenever the client (re)connects. */
  onReady(fn) {
    if (typeof this.client.on === 'function') this.client.on('ready', fn);
  }

  /** Sends `args` (command name first) for `key`; resolves with the raw reply. */
  send(_key, _args) {
    throw new Error('not implemented');
  }

  /**
   * Sends like send() and returns {promise, reject(err)}: reject() settles the promise at
   * once (a timeout) whatever the server does later.
   */
  start(key, args) {
    return cancellable(this.send(key, args));
  }

  async quit() {
    await this.client.quit();
  }
}

class IoRedis extends Transport {
  connected() {
    return this.client.status === 'ready';
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

  isReady() {
    return this.client.status === 'ready';
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

  connected() {
    return this.client.status === 'ready';
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
    if (!node) throw new Error('no connection to the master of this key\'s slot');
    try {
      return await node.call(args[0], args.slice(1));
    } catch (err) {
      const moved = /^(MOVED|ASK) \d+ (\S+)/.exec(err.message || '');
      if (!moved) {
        if (err.name !== 'ReplyError' || /^(CLUSTERDOWN|TRYAGAIN|MASTERDOWN|READONLY)/.test(err.message)) this.refresh();
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

class NodeRedis extends Transport {
  connected() {
    return Boolean(this.client.isReady);
  }

  isReady() {
    return this.client.isReady;
  }

  send(_key, args) {
    return this.client.sendCommand(args);
  }

  async quit() {
    await (this.client.close ? this.client.close() : this.client.quit());
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

  /** Asks node-redis to rediscover the topology (internal API, used only when present). */
  refresh() {
    const now = performance.now();
    if (now - this.refreshedAt < REFRESH_MIN_MS) return;
    this.refreshedAt = now;
    const slots = this.client._slots || (this.client._self && this.client._self._slots);
    if (slots && typeof slots.rediscover === 'function') slots.rediscover().catch(() => {});
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

/** {promise, reject}: `promise` follows `p` unless reject() settles it first. */
function cancellable(p) {
  const c = { promise: null, reject: null };
  c.promise = new Promise((resolve, reject) => {
    c.reject = reject;
    p.then(resolve, reject);
  });
  return c;
}

/** The transport for a client object, told apart by duck typing (no import of either library). */
function wrap(client) {
  if (client && typeof client.call === 'function' && typeof client.status === 'string') {
    return client.isCluster || client.connectionPool ? new IoRedisCluster(client) : new IoRedis(client);
  }
  if (client && typeof client.sendCommand === 'function' && 'isReady' in client) {
    return 'masters' in client || typeof client.getSlotMaster === 'function'
      ? new NodeRedisCluster(client)
      : new NodeRedis(client);
  }
  throw new TypeError('client must be an ioredis Redis/Cluster or a node-redis client/cluster');
}

module.exports = { wrap, Transport, cancellable };
