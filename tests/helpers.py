"""Small helpers shared by the integration tests: key state, polling, raw replies, and a
master with a synced replica."""

import time

from payload import sealed

HOUR = 3_600_000  # ms: a window no test outlives
# RL.THROTTLE / RL.PEEK reply fields, in RESP2 order.
FIELDS = ("allowed", "limit", "remaining", "retry_after_ms", "reset_after_ms")

# Masters start a full sync at once instead of waiting for more replicas (7.0 waits 5 s).
MASTER = {"repl_diskless_sync_delay": 0}


def digest(c, key):
    return c.execute_command("DEBUG", "DIGEST-VALUE", key)[0]


def pexpiretime(c, key):
    return c.execute_command("PEXPIRETIME", key)


def all_keys(c):
    return sorted(c.scan_iter(count=1000))


def snapshot(c, keys=None):
    """Each key's value digest and absolute expiry (DEBUG DIGEST-VALUE ignores expiries)."""
    return {k: (digest(c, k), pexpiretime(c, k)) for k in (all_keys(c) if keys is None else keys)}


def server_ms(c):
    """The server's clock, in Unix ms."""
    seconds, micros = c.time()
    return seconds * 1000 + micros // 1000


def wait_until(predicate, timeout=30.0, what="condition", interval=0.02):
    """Polls `predicate` every `interval` s until it returns a truthy value, or fails after
    `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def raw_command(r, *args):
    """Sends a command past redis-py's reply parsers (its COMMAND parser breaks on these)."""
    conn = r.connection_pool.get_connection()
    try:
        conn.send_command(*args)
        return conn.read_response()
    finally:
        r.connection_pool.release(conn)


def pairs(flat):
    """A flat [name, value, ...] reply (or a RESP3 map) as a dict."""
    if isinstance(flat, dict):
        return flat
    return dict(zip(flat[::2], flat[1::2]))


def wait_synced(replica):
    """Waits until the replica's link is up and its initial sync has been loaded."""
    c = replica.client()

    def synced():
        info = c.info("replication")
        return (info.get("role") == "slave" and info.get("master_link_status") == "up"
                and info.get("master_sync_in_progress") == 0)

    wait_until(synced, timeout=60, what="the replica to finish its sync")


def attach(replica, master):
    replica.client().replicaof("127.0.0.1", master.port)
    wait_synced(replica)


def start_pair(servers, master=None, replica=None):
    """A master and a replica of it, synced; `master`/`replica`: redis.conf overrides."""
    m = servers("master", **{**MASTER, **(master or {})})
    r = servers("replica", **(replica or {}))
    attach(r, m)
    return m, r


def replicated(master_client):
    """WAIT until the one replica has acknowledged every write made so far (WAIT 1 5000,
    repeated for a while in case the machine is very slow)."""
    wait_until(lambda: master_client.wait(1, 5000) == 1, timeout=60,
               what="the replica to acknowledge the writes")


def config(c, key, *args):
    assert c.execute_command("RL.CONFIG", key, *args) in (b"OK", "OK", True)


def throttle(c, key, *opts):
    reply = c.execute_command("RL.THROTTLE", key, *opts)
    if isinstance(reply, dict):
        return {k.decode(): v for k, v in reply.items()}
    return dict(zip(FIELDS, reply))


def rl_stats(c):
    return c.info("rl")


def pipelined(c, commands):
    p = c.pipeline(transaction=False)
    for args in commands:
        p.execute_command(*args)
    return p.execute()


def configured_payload(c, limit, window_ms, *options, flags=b"\x00"):
    """DUMP of a key configured with `limit window_ms options`, its stored flags field (the
    last one: opcode 2 = unsigned, value, then the EOF opcode 0) set to `flags`."""
    template = b"__template__"
    config(c, template, limit, window_ms, *options)
    body = c.dump(template)[:-8]
    c.delete(template)
    value, version = body[:-2], body[-2:]
    assert value.endswith(b"\x02\x00\x00"), value
    return sealed(value[:-3] + b"\x02" + flags + b"\x00" + version)


def restore_shadow(c, key, limit, window_ms, *options):
    """Creates `key` with a SHADOW policy through RESTORE (the RDB loader knows the flag),
    whatever RL.CONFIG's parser accepts."""
    assert c.restore(key, 0, configured_payload(c, limit, window_ms, *options, flags=b"\x01"))


def subscribe(server, pattern):
    p = server.client().pubsub()
    p.psubscribe(pattern)
    wait_until(lambda: (m := p.get_message(timeout=0.1)) and m["type"] == "psubscribe",
               what="the subscription")
    return p


def events_until(p, sentinel, timeout=15):
    """(channel, data) of every event received before the one whose data is `sentinel`,
    which the test triggers last: everything triggered before it has arrived by then."""
    got, deadline = [], time.monotonic() + timeout
    while True:
        m = p.get_message(timeout=0.1)
        if m and m["type"] == "pmessage":
            if m["data"] == sentinel:
                return got
            got.append((m["channel"], m["data"]))
        assert time.monotonic() < deadline, f"the sentinel event never came; got {got}"
