"""One command to the node that owns a key, over the user's own redis-py connection pools,
within a deadline, with no retries.

Why not `client.execute_command`: redis-py 8 retries by default (a retried RL.ALLOW counts
twice, and a dead server costs seconds of backoff) and its socket timeout is the user's, not
this call's. So each call takes a connection from the pool of the owning node (standalone:
the client's pool; cluster: the pool of the node redis-py's slot table names for the key,
which is what `COMMAND` key positions would pick, so no MOVED round trip), sends once, and
reads with the remaining time. Reaching a server that is not connected yet may block
inside redis-py's connect and handshake for the user's timeouts, so that part runs on a
helper thread and the caller stops waiting at its deadline. At most CONNECTS_IN_FLIGHT such
threads exist (on a frozen server they stay blocked until it resumes or the user's socket
timeout fires); past that a caller waits for one only until its own deadline.

Waiting for a connection (a pool at its max_connections, or every connect slot taken) is
overload, not an outage: the caller waits within its deadline and then gets PoolBusy, which
the engine does not count against Redis.
"""

import inspect
import threading
import time

import redis
from redis.cluster import RedisCluster
from redis.connection import Connection
from redis.exceptions import AskError, MaxConnectionsError, MovedError

from .redispy import PoolBusy

CONNECTS_IN_FLIGHT = 16
# redis-py 6+ reads a reply with a per-call timeout; 5.x only waits with can_read(timeout).
_READ_TAKES_TIMEOUT = "timeout" in inspect.signature(Connection.read_response).parameters


def initialize(nodes_manager, failed_node):
    """redis-py's topology refresh, asking the node that just failed last (redis-py >= 6
    takes last_failed_node_name; older versions ask in their own order)."""
    try:
        return nodes_manager.initialize(last_failed_node_name=failed_node)
    except TypeError:
        return nodes_manager.initialize()


class Transport:
    def __init__(self, client):
        self.client = client
        self.cluster = isinstance(client, RedisCluster)
        self._connecting = threading.Semaphore(CONNECTS_IN_FLIGHT)
        self.refresh = False  # cluster: re-read the slot table before the next call
        self._refreshing = False
        self._refresh_lock = threading.Lock()
        self.last_node = None  # cluster: the node of the latest call, asked last on a refresh

    def _pool_for(self, key):
        if not self.cluster:
            return self.client.connection_pool
        if self.refresh:
            self._refresh_in_background()
        node = self.client.get_node_from_key(key)
        self.last_node = node.name
        return self.client.get_redis_connection(node).connection_pool

    def _refresh_in_background(self):
        """Re-reads the slot table (after a failure: a failover may have moved the key's
        slots) on a helper thread: redis-py asks the startup nodes in turn, with the user's
        socket timeout for each, and one of them may be the frozen master. Calls keep using
        the old table (and failing fast through the breaker) until it is done."""
        with self._refresh_lock:
            if self._refreshing:
                return
            self._refreshing, self.refresh = True, False

        failed = self.last_node

        def run():
            try:
                initialize(self.client.nodes_manager, failed)
            except Exception:
                self.refresh = True  # the next call tries again
            finally:
                self._refreshing = False

        threading.Thread(target=run, daemon=True, name="rate-limiter-cluster-refresh").start()

    def call(self, key, args, timeout_s):
        """The raw reply of `args` from the owner of `key`; raises redis errors as they come
        (TimeoutError past the deadline)."""
        deadline = time.monotonic() + timeout_s
        try:
            return self._call_once(self._pool_for(key), args, deadline)
        except MovedError as e:
            # A slot moved (resharding, failover): patch redis-py's table and go once more.
            self.client.nodes_manager.move_slot(e)
            return self._call_once(self._pool_for(key), args, deadline)
        except AskError:
            return self.client.execute_command(*args)  # mid-migration: redis-py does ASKING
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            if self.cluster:
                self.refresh = True
            raise
        except ValueError as e:
            # "I/O operation on closed file": redis-py's topology refresh disconnected the
            # node's pool (disconnect_startup_nodes_pools) while this call was using it.
            self.refresh = self.cluster
            raise redis.ConnectionError(f"connection closed during the call: {e}") from e

    def _call_once(self, pool, args, deadline):
        conn = self._acquire(pool, deadline)
        ok = False
        try:
            conn.send_command(*args)
            left = deadline - time.monotonic()
            if left <= 0:
                raise redis.TimeoutError("rate limit check timed out")
            if _READ_TAKES_TIMEOUT:
                reply = conn.read_response(timeout=left)
            else:  # older redis-py: wait for the reply's first bytes, then read it
                if not conn.can_read(timeout=left):
                    raise redis.TimeoutError("rate limit check timed out")
                reply = conn.read_response()
            ok = True
            return reply
        except redis.ResponseError:
            ok = True  # an answer: the connection is in a clean state
            raise
        finally:
            if not ok:
                conn.disconnect()
            pool.release(conn)

    def _acquire(self, pool, deadline):
        """A connection of `pool`, waiting (within the deadline) while the pool is full."""
        pause = 0.0005
        while True:
            try:
                return self._acquire_once(pool, deadline)
            except MaxConnectionsError:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise PoolBusy("every pooled connection stayed in use until the deadline") from None
                time.sleep(min(pause, left))
                pause = min(pause * 2, 0.005)

    def _acquire_once(self, pool, deadline):
        idle = getattr(pool, "_available_connections", None)
        if idle and getattr(idle[-1], "_sock", None) is not None:
            return pool.get_connection()  # connected already: no blocking I/O
        if not self._connecting.acquire(timeout=max(deadline - time.monotonic(), 0)):
            raise PoolBusy(f"{CONNECTS_IN_FLIGHT} connections to Redis were being established until the deadline")
        box = {"abandoned": False}
        handoff = threading.Lock()
        done = threading.Event()

        def connect():
            try:
                box["conn"] = pool.get_connection()
            except (redis.RedisError, OSError, MaxConnectionsError) as e:  # handed to the caller
                box["err"] = e
            except Exception as e:  # e.g. the socket closed under it (a cluster refresh's disconnect)
                box["err"] = redis.ConnectionError(f"connecting failed: {e!r}")
            finally:
                self._connecting.release()
                with handoff:
                    done.set()
                    if box["abandoned"] and "conn" in box:
                        pool.release(box["conn"])

        threading.Thread(target=connect, daemon=True, name="rate-limiter-connect").start()
        if not done.wait(max(deadline - time.monotonic(), 0)):
            with handoff:
                box["abandoned"] = True
                if done.is_set() and "conn" in box:  # finished just now: keep it usable
                    pool.release(box["conn"])
            raise redis.TimeoutError("connecting to Redis timed out")
        if "err" in box:
            raise box["err"]
        return box["conn"]
