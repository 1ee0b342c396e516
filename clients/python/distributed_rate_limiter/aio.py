"""AsyncDistributedRateLimiter: the same limiter over `redis.asyncio.Redis` or
`redis.asyncio.RedisCluster` (every method is a coroutine; see client.py for the API).

The transport takes a connection from the owning node (standalone: the client's pool;
cluster: the node redis-py's slot table names for the key), sends once with no redis-py
retry, and the whole call (connect included) is bounded by asyncio.wait_for.
"""

import asyncio
import inspect
import time

import redis
import redis.asyncio
from redis.exceptions import MovedError

from .client import LUA_SHA, config_command, default_url, is_unknown_command
from .core import LUA_SOURCE, LimiterCore, Unreachable
from .errors import Unavailable


class AsyncTransport:
    def __init__(self, client):
        self.client = client
        self.cluster = isinstance(client, redis.asyncio.RedisCluster)
        self.refresh = False
        self._refreshing = None  # the background refresh task
        self.last_node = None  # the node of the latest call, asked last on a refresh

    async def call(self, key, args, timeout_s):
        try:
            return await asyncio.wait_for(self._call(key, args), timeout_s)
        except asyncio.TimeoutError:
            self.refresh = self.cluster  # a frozen master: its slots may have moved since
            raise

    def _refresh_in_background(self):
        """Re-reads the slot table in a task of its own, not bounded by a call's deadline
        (redis-py asks the startup nodes in turn, and one of them may be the frozen master);
        calls keep the old table, failing fast through the breaker, until it is done."""
        if self._refreshing is not None and not self._refreshing.done():
            return
        self.refresh = False

        failed = self.last_node

        async def run():
            try:
                try:
                    await self.client.nodes_manager.initialize(last_failed_node_name=failed)
                except TypeError:  # redis-py before 6
                    await self.client.nodes_manager.initialize()
            except Exception:
                self.refresh = True

        self._refreshing = asyncio.ensure_future(run())

    async def _call(self, key, args):
        if not self.cluster:
            return await self._standalone(args)
        rc = self.client
        if getattr(rc, "_initialize", False):  # a cluster client not used yet
            await rc.initialize()
        elif self.refresh:  # after a failure: the slot table may name a dead master
            self._refresh_in_background()
        node = rc.get_node_from_key(key)
        self.last_node = node.name
        try:
            return await node.execute_command(*args)
        except MovedError as e:
            moved = rc.nodes_manager.move_slot(e)
            if inspect.isawaitable(moved):
                await moved
            return await rc.get_node_from_key(key).execute_command(*args)
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            self.refresh = True
            raise

    async def _standalone(self, args):
        pool = self.client.connection_pool
        conn = await pool.get_connection()
        ok = False
        try:
            await conn.send_command(*args)
            reply = await conn.read_response()
            ok = True
            return reply
        except redis.ResponseError:
            ok = True
            raise
        finally:
            if not ok:
                await conn.disconnect()
            released = pool.release(conn)
            if inspect.isawaitable(released):  # a coroutine in redis-py 5.x and 8.x alike
                await released


class AsyncDistributedRateLimiter:
    """The asyncio twin of DistributedRateLimiter."""

    def __init__(self, client=None, **options):
        self.client = client if client is not None else redis.asyncio.Redis.from_url(default_url())
        self._core = LimiterCore(**options)
        self._core.lua_sha = LUA_SHA
        self._transport = AsyncTransport(self.client)

    async def configure_rate_limit(self, client_id, limit, window_ms, *, burst=None, idle_ms=None, shadow=False):
        core = self._core
        key, policy, idle, shadow = core.config_args(client_id, limit, window_ms, burst, idle_ms, shadow)
        core.remember(key, policy, shadow)
        await self._required(key, config_command(key, policy, burst, idle, shadow),
                             lambda: core.lua_args(key, *core.lua_config(policy, idle, shadow)))

    async def is_allowed(self, client_id, *, cost=1, limit=None, window_ms=None, burst=None):
        core = self._core
        req = core.request(client_id, cost, limit, window_ms, burst)
        try:
            raw, path = await self._execute(req.key, core.module_check("RL.ALLOW", req),
                                            lambda: core.lua_check("check", req))
        except Unreachable:
            return core.fallback(req).allowed
        core.stats_.decided(path)
        return core.allowed(raw)

    async def throttle(self, client_id, *, cost=1, limit=None, window_ms=None, burst=None):
        return await self._check("RL.THROTTLE", "check", True, client_id, cost, limit, window_ms, burst)

    async def peek(self, client_id, *, cost=1, limit=None, window_ms=None, burst=None):
        return await self._check("RL.PEEK", "peek", False, client_id, cost, limit, window_ms, burst)

    async def reset(self, client_id):
        key = self._core.key(client_id)
        self._core.local.reset(key)
        return int(await self._required(key, ["RL.RESET", key], lambda: self._core.lua_args(key, "reset")))

    async def info(self, client_id):
        key = self._core.key(client_id)
        raw = await self._required(key, ["RL.INFO", key], lambda: self._core.lua_args(key, "info"))
        return self._core.info_dict(raw)

    def stats(self):
        return self._core.stats()

    async def _check(self, command, op, consume, client_id, cost, limit, window_ms, burst):
        core = self._core
        req = core.request(client_id, cost, limit, window_ms, burst)
        try:
            raw, path = await self._execute(req.key, core.module_check(command, req),
                                            lambda: core.lua_check(op, req))
        except Unreachable:
            return core.fallback(req, consume)
        core.stats_.decided(path)
        return core.decision(raw, path, req)

    async def _required(self, key, module_args, lua_args):
        try:
            return (await self._execute(key, module_args, lua_args, self._core.admin_timeout_s))[0]
        except Unreachable as e:
            raise Unavailable(str(e.__cause__ or "circuit open: Redis is not asked during the cool-down")) from None

    async def _execute(self, key, module_args, lua_args, timeout_s=None):
        core = self._core
        if not core.breaker.admit():
            raise Unreachable()
        try:
            reply = await self._send(key, module_args, lua_args, timeout_s or core.timeout_s)
        except (redis.RedisError, OSError, asyncio.TimeoutError) as e:
            raise core.settle_error(e) from e
        except BaseException:
            core.breaker.abort()
            raise
        core.breaker.success()
        return reply

    async def _send(self, key, module_args, lua_args, timeout_s):
        core, t = self._core, self._transport
        deadline = time.monotonic() + timeout_s

        def left():
            return max(deadline - time.monotonic(), 0.0005)

        if core.mode != "lua":
            try:
                reply = await t.call(key, module_args, left())
                core.mode = "module"
                return reply, "redis"
            except redis.ResponseError as e:
                if not is_unknown_command(e):
                    raise
                core.mode = "lua"
        args = lua_args()
        try:
            return await t.call(key, args, left()), "lua"
        except redis.exceptions.NoScriptError:
            await t.call(key, ["SCRIPT", "LOAD", LUA_SOURCE], left())
            return await t.call(key, args, left()), "lua"
