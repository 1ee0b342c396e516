'use strict';
// Which driver serves a client object, and a client of our own for a URL. Both client
// libraries are optional peers: the one the application installed is found from its own
// node_modules, and a clear error names what to install when neither is there.

const ioredis = require('./ioredis');
const nodeRedis = require('./node-redis');
const { ConfigurationError } = require('../errors');

const DRIVERS = { ioredis, redis: nodeRedis };
const INSTALL = 'install a Redis client library next to it: npm install ioredis (or npm install redis), or pass your own client';

/** The transport for a client object, told apart by duck typing. */
function wrap(client) {
  if (ioredis.matches(client)) return ioredis.wrap(client);
  if (nodeRedis.matches(client)) return nodeRedis.wrap(client);
  throw new ConfigurationError('client must be an ioredis Redis/Cluster or a node-redis client/cluster', 'client');
}

function looksLikeClient(x) {
  return Boolean(x) && typeof x === 'object' && (ioredis.matches(x) || nodeRedis.matches(x));
}

/**
 * A peer library from the application's dependencies (or ours, in development): `npm install
 * ./clients/node` links this directory, and a linked package resolves from its real path.
 */
function loadPeer(name) {
  const from = [process.cwd(), ...(require.main ? require.main.paths : []), __dirname];
  for (const dir of from) {
    let file;
    try {
      file = require.resolve(name, { paths: [dir] });
    } catch {
      continue; // not installed there
    }
    return require(file);
  }
  return null;
}

/**
 * A URL as {url, tls, cluster, nodes: [{host, port}], username, password}:
 * redis://, rediss:// (TLS), redis+cluster:// and rediss+cluster:// (host:port[,host:port...]).
 */
function parseUrl(url) {
  const m = /^(rediss?)(\+cluster)?:\/\/(.*)$/i.exec(url);
  if (!m) throw new ConfigurationError(`url '${redact(url)}' is not a Redis URL: use redis://host:port, rediss://host:port or redis+cluster://host:port,host:port`, 'url');
  const tls = m[1].toLowerCase() === 'rediss';
  if (!m[2]) {
    let parsed;
    try {
      parsed = new URL(url);
    } catch {
      throw new ConfigurationError(`url '${redact(url)}' is not a valid URL`, 'url');
    }
    return { url, tls, cluster: false, nodes: [{ host: parsed.hostname || '127.0.0.1', port: Number(parsed.port || 6379) }] };
  }
  const rest = m[3];
  const at = rest.lastIndexOf('@');
  const auth = at >= 0 ? rest.slice(0, at) : '';
  const hosts = (at >= 0 ? rest.slice(at + 1) : rest).replace(/\/.*$/, '');
  const [username, password] = auth.includes(':') ? auth.split(/:(.*)/s) : [undefined, auth || undefined];
  const nodes = hosts.split(',').filter(Boolean).map((h) => {
    const hm = /^\[?([^\]]*?)\]?(?::(\d+))?$/.exec(h);
    return { host: hm[1], port: Number(hm[2] || 6379) };
  });
  if (nodes.length === 0) throw new ConfigurationError(`url '${redact(url)}' names no node`, 'url');
  return { url, tls, cluster: true, nodes, username: username ? decodeURIComponent(username) : undefined, password: password ? decodeURIComponent(password) : undefined };
}

/** A URL with its password replaced, for messages and logs. */
function redact(url) {
  return String(url).replace(/\/\/([^@/]*):([^@/]*)@/, '//$1:***@');
}

/**
 * A client of our own for `url`, with `driver` ('ioredis', 'redis', or undefined: whichever
 * is installed, ioredis first). Returns the transport.
 */
function fromUrl(url, { driver, connectTimeoutMs }) {
  const target = parseUrl(url);
  const names = driver ? [driver] : ['ioredis', 'redis'];
  for (const name of names) {
    const lib = loadPeer(name);
    if (lib) {
      const client = DRIVERS[name].create(lib, target, { connectTimeoutMs });
      return DRIVERS[name].wrap(client);
    }
  }
  throw new ConfigurationError(`DistributedRateLimiter: no ${driver || 'Redis client library'} found to connect to ${redact(url)}: ${INSTALL}`, 'driver');
}

module.exports = { wrap, fromUrl, parseUrl, redact, looksLikeClient, loadPeer };
