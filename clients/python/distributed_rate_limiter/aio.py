"""The asyncio transport: one command to the node that owns a key, over the user's
`redis.asyncio.Redis` or `RedisCluster`, within a deadline, with no retries (a retried check
would count twice). Standalone: a connection from the client's pool; cluster: the node
redis-py's slot table names for the key (no MOVED round trip). Waiting for a pooled
connection is overload, not an outage: PoolBusy when it outlasts the deadline."""

import asyncio
import inspect
import time

import redis
import redis.asyncio
from redis.exceptions import MaxConnectionsError, MovedError

from .redispy import PoolBusy


class AsyncTransport:
    def __init__(self, client):
        self.client = client
        self.cluster = isinstance(client, redis.asyncio.RedisCluster)
        self.refresh = False
        self._refreshing = None  # the background refresh task
        self.last_node = None  # the node of the latest call, asked last on a refresh

    async def call(self, key, args, timeout_s):
        deadline = time.monotonic() + timeout_s
        pause = 0.0005
        while True:
            try:
                return await asyncio.wait_for(self._call(key, args), max(deadline - time.monotonic(), 0.0001))
            except MaxConnectionsError:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise PoolBusy("every pooled connection stayed in use until the deadline") from None
                await asyncio.sleep(min(pause, left))
                pause = min(pause * 2, 0.005)
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
        except (redis.ConnectionError, redis.TimeoutError, OSError) as e:
            if not isinstance(e, MaxConnectionsError):
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

    async def close(self):
        close = getattr(self.client, "aclose", None) or self.client.close
        await close()
