"""The test library: what the integration tests share (test files import this, payload.py,
resp.py and server.py, never each other). Command wrappers, key state, polling, raw
replies, a master with a synced replica, and the wording each server flavour uses."""

import time
from contextlib import contextmanager

import redis

from payload import MAX_LIMIT, MAX_TAT_MS, MAX_WINDOW_MS, sealed
from resp import raw_call
from server import FLAVOUR, VERSION

HOUR = 3_600_000  # ms: a window no test outlives, so answers cannot change during it
DAY = 24 * HOUR  # ms
# RL.THROTTLE / RL.PEEK reply fields, in RESP2 order.
FIELDS = ("allowed", "limit", "remaining", "retry_after_ms", "reset_after_ms")

# What a server says or does where servers differ (none of it is the module's): name ->
# [(flavour, from version, value)]; the server under test (server.FLAVOUR, VERSION) gets the
# value of the last entry of its flavour whose version it has reached. Checked on every server
# of the matrix (scripts/servers.sh): Redis 7.0.15, 7.2.4, 7.4.1, 8.2.3, Valkey 8.0.1, 8.1.8
# and 9.1.2.
WORDING = {
    # NOPERM for a key outside the user's patterns, called directly.
    "noperm_key": [("redis", (7, 0), "no permissions to access one of the keys"),
                   ("redis", (7, 2), "No permissions to access a key"),
                   ("valkey", (7, 2), "No permissions to access a key")],
    # ... and from a script.
    "noperm_key_in_script": [("redis", (7, 0), "can't access at least one of the keys"),
                             ("redis", (7, 2), "No permissions to access a key"),
                             ("valkey", (7, 2), "No permissions to access a key")],
    # A command the user may not run, from a script ({command} in lower case).
    "noperm_command_in_script": [("redis", (7, 0), "can't run this command"),
                                 ("redis", (7, 2), "no permissions to run the '{command}' command"),
                                 ("valkey", (7, 2), "no permissions to run the '{command}' command")],
    # The log line of a replica refusing a command from its master.
    "replica_refused": [("redis", (7, 0), "This replica is sending an error to its master"),
                        ("valkey", (7, 2), "This replica is sending an error to its primary")],
    # The fix a server suggests for a truncated AOF.
    "check_aof_fix": [("redis", (7, 0), "redis-check-aof --fix"),
                      ("valkey", (7, 2), "valkey-check-aof --fix")],
    # The magic an RDB file (and an AOF's RDB preamble) starts with (Valkey 8.0 and 8.1 still
    # write REDIS).
    "rdb_magic": [("redis", (7, 0), b"REDIS"), ("valkey", (7, 2), b"REDIS"), ("valkey", (9, 0), b"VALKEY")],
    # Whether CONFIG SET can change sanitize-dump-payload (Valkey 9 has no such setting: it
    # refuses CONFIG SET of it and ignores the redis.conf line, so there is one mode to test).
    "sanitize_dump_payload_settable": [("redis", (7, 0), True), ("valkey", (7, 2), True),
                                       ("valkey", (9, 0), False)],
    # What loading an AOF with an rl.apply line of the wrong arity does. The AOF loader of
    # Redis 7.0-8.2 and Valkey 8.0 checks no arity: the handler gets the short line and refuses
    # it (logged, loading goes on; a core command such as SET with no value aborts them).
    # Valkey 8.1+ checks the arity of every AOF line and refuses to load the file.
    "aof_wrong_arity": [("redis", (7, 0), "skipped"), ("valkey", (7, 2), "skipped"),
                        ("valkey", (8, 1), "refused")],
    # Whether module commands can have ACL categories (RedisModule_SetCommandACLCategories).
    "acl_categories": [("redis", (7, 0), False), ("redis", (7, 2), True), ("valkey", (7, 2), True)],
    # Whether a module can add a category of its own, @ratelimit (RedisModule_AddACLCategory).
    "module_acl_category": [("redis", (7, 0), False), ("redis", (7, 4), True),
                            ("valkey", (8, 0), True)],
    # Whether ACL CAT lists module commands under their categories (the grants work either
    # way): not on Redis 7.2.4 and 7.4.1 nor Valkey 8.0.1, yes on Redis 8.2.3 and Valkey 8.1.8+.
    "acl_cat_lists_module_commands": [("redis", (7, 0), False), ("redis", (8, 0), True),
                                      ("valkey", (7, 2), False), ("valkey", (8, 1), True)],
}


def says(name, **fields):
    """WORDING[name] for the server under test (str values formatted with `fields`)."""
    found = [value for flavour, since, value in WORDING[name] if flavour == FLAVOUR and VERSION >= since]
    assert found, f"no known {name!r} for {FLAVOUR} {VERSION}: add it to helpers.WORDING"
    value = found[-1]
    return value.format(**fields) if isinstance(value, str) else value


# Masters start a full sync at once instead of waiting for more replicas (7.0 waits 5 s).
MASTER = {"repl_diskless_sync_delay": 0}


def digest(c, key):
    return c.execute_command("DEBUG", "DIGEST-VALUE", key)[0]


def pexpiretime(c, key):
    return c.execute_command("PEXPIRETIME", key)


def all_keys(c):
    return sorted(c.scan_iter(count=1000))


def snapshot(c, keys=None, chunk=1000):
    """{key: (value digest, absolute expiry in ms or -1/-2)} of `keys` (default: every key),
    pipelined `chunk` keys at a time (DEBUG DIGEST-VALUE ignores expiries); a missing key
    digests as zeros."""
    keys = all_keys(c) if keys is None else list(keys)
    out = {}
    for i in range(0, len(keys), chunk):
        part = keys[i:i + chunk]
        p = c.pipeline(transaction=False)
        p.execute_command("DEBUG", "DIGEST-VALUE", *part)
        for k in part:
            p.execute_command("PEXPIRETIME", k)
        digests, *expiries = p.execute()
        out.update(zip(part, zip(digests, expiries)))
    return out


def used_memory(c):
    return c.info("memory")["used_memory"]


def lowest_memory(c, seconds):
    """The lowest used_memory seen over `seconds` (client buffers shrink over time)."""
    deadline, lowest = time.monotonic() + seconds, used_memory(c)
    while time.monotonic() < deadline:
        time.sleep(0.1)
        lowest = min(lowest, used_memory(c))
    return lowest


def server_ms(c):
    """The server's clock, in Unix ms."""
    return ms(c.time())


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


@contextmanager
def active_expiry_paused(c):
    """Redis's active expiry off for the block (DEBUG SET-ACTIVE-EXPIRE), so that keys with
    short TTLs made in it are all still there at its end however slow the machine is; keys
    nothing touches are removed only after it."""
    c.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", 0)
    try:
        yield
    finally:
        c.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", 1)


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


def allow(c, key, *opts):
    """RL.ALLOW's reply as sent: 1/0 (RESP2) or True/False (RESP3)."""
    return c.execute_command("RL.ALLOW", key, *opts)


def config(c, key, *args):
    """RL.CONFIG, which must answer OK; returns the reply."""
    reply = c.execute_command("RL.CONFIG", key, *args)
    assert reply in (b"OK", "OK", True), reply
    return reply


def verdict(reply):
    """An RL.THROTTLE/RL.PEEK reply as a dict, its shape checked for the protocol."""
    if isinstance(reply, dict):  # RESP3: a map with the names, in order
        assert [k.decode() for k in reply] == list(FIELDS)
        return {k.decode(): v for k, v in reply.items()}
    assert isinstance(reply, list) and len(reply) == 5, reply
    assert all(type(v) is int for v in reply), reply
    return dict(zip(FIELDS, reply))


def throttle(c, key, *opts, command="RL.THROTTLE"):
    """RL.THROTTLE (or RL.PEEK) as a dict; checks the reply's shape for the protocol."""
    return verdict(c.execute_command(command, key, *opts))


def peek(c, key, *opts):
    return throttle(c, key, *opts, command="RL.PEEK")


def rl_info(port, key, auth=None, protocol=2, text=False):
    """RL.INFO as a dict (None for nil), read over a plain socket without trusting the
    reply's declared length (which must still be right); raises the error reply. Keys and
    values are bytes as sent, or str with `text`."""
    reply, declared, sent = raw_call(port, "RL.INFO", key, auth=auth, protocol=protocol)
    if isinstance(reply, redis.ResponseError):
        raise reply
    assert declared == sent, f"RL.INFO {key!r} announced {declared} elements and sent {sent}"
    if reply is None:
        return None
    if protocol == 2:
        assert isinstance(reply, list), reply
        reply = dict(zip(reply[::2], reply[1::2]))
    else:
        assert isinstance(reply, dict), reply
    if text:
        return {k.decode(): v.decode() if isinstance(v, bytes) else v for k, v in reply.items()}
    return reply


def command_stats(c, command):
    """INFO commandstats of `command` (lower case, e.g. "rl.apply"): calls, failed_calls..."""
    return c.info("commandstats").get(f"cmdstat_{command}", {})


def calls(c, command):
    """How many times `command` ran and succeeded on this server."""
    stats = command_stats(c, command)
    return stats.get("calls", 0) - stats.get("failed_calls", 0)


def ms(t):
    """A TIME reply (seconds, microseconds) in Unix ms."""
    seconds, micros = t
    return seconds * 1000 + micros // 1000


def bracketed(c, *command):
    """Runs `command` between two TIME calls in one pipeline: (before, reply, after), the
    server having read its clock for the command at an instant in [before, after] ms."""
    p = c.pipeline(transaction=False)
    p.time()
    p.execute_command(*command)
    p.time()
    t0, reply, t1 = p.execute()
    return ms(t0), reply, ms(t1)


def rl_stats(c):
    return c.info("rl")


def pipelined(c, commands, chunk=2000, raise_on_error=True):
    """The replies to `commands`, sent in pipelines of `chunk` (errors as values unless
    `raise_on_error`)."""
    commands, replies = list(commands), []
    for i in range(0, len(commands), chunk):
        p = c.pipeline(transaction=False)
        for args in commands[i:i + chunk]:
            p.execute_command(*args)
        replies += p.execute(raise_on_error=raise_on_error)
    return replies


def at_once(c, *commands):
    """The replies to `commands` run in one MULTI: at one instant of the server's clock, so
    that no refill can land between them however busy the machine is."""
    p = c.pipeline(transaction=True)
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


# --- AOF files ----------------------------------------------------------------------------


def aof_files(server):
    """The AOF files named by the manifest: [(name, type 'b'/'i', bytes)]."""
    d = server.dir / "appendonlydir"
    files = []
    for line in (d / "appendonly.aof.manifest").read_text().splitlines():
        fields = line.split()
        info = dict(zip(fields[::2], fields[1::2]))
        files.append((info["file"], info["type"], (d / info["file"]).read_bytes()))
    return files


def all_aof_bytes(server):
    d = server.dir / "appendonlydir"
    return b"".join(p.read_bytes() for p in sorted(d.iterdir()))


def rewrite_aof(c):
    """BGREWRITEAOF, waiting until the rewrite has finished and the manifest is switched."""
    before = c.info("persistence")["aof_rewrites"]
    c.bgrewriteaof()

    def done():
        p = c.info("persistence")
        return (p["aof_rewrites"] > before and p["aof_rewrite_in_progress"] == 0
                and p["aof_rewrite_scheduled"] == 0 and p)

    p = wait_until(done, what="BGREWRITEAOF to finish")
    assert p["aof_last_bgrewrite_status"] == "ok"


# --- payload fields a command could never produce (payload.build_dump frames them) ---------


PAYLOAD_TAT_MS = 1_800_000_000_000  # a plausible TAT, far enough in the future not to matter
USAGE_OK = [PAYLOAD_TAT_MS, 0, 10, 0]
CONFIGURED_OK = [PAYLOAD_TAT_MS, 0, 10, 1, 10, HOUR, 10, 0, 0]

FORGED = {
    # tat_ms frac den kind
    "frac-not-below-den": [PAYLOAD_TAT_MS, 7, 7, 0],
    "den-zero": [PAYLOAD_TAT_MS, 0, 0, 0],
    "den-above-max-limit": [PAYLOAD_TAT_MS, 0, MAX_LIMIT + 1, 0],
    "tat-beyond-2^60": [MAX_TAT_MS + 1, 0, 1, 0],
    "tat-u64-max": [2**64 - 1, 0, 1, 0],
    "unknown-kind": [PAYLOAD_TAT_MS, 0, 10, 2],
    "kind-missing": [PAYLOAD_TAT_MS, 0, 10],
    "extra-field-after-usage": USAGE_OK + [5],
    # ... kind=1, limit window_ms burst idle_ms flags
    "limit-zero": [PAYLOAD_TAT_MS, 0, 10, 1, 0, HOUR, 10, 0, 0],
    "limit-above-max": [PAYLOAD_TAT_MS, 0, 10, 1, MAX_LIMIT + 1, HOUR, 10, 0, 0],
    "window-zero": [PAYLOAD_TAT_MS, 0, 10, 1, 10, 0, 10, 0, 0],
    "window-above-max": [PAYLOAD_TAT_MS, 0, 10, 1, 10, MAX_WINDOW_MS + 1, 10, 0, 0],
    "burst-zero": [PAYLOAD_TAT_MS, 0, 10, 1, 10, HOUR, 0, 0, 0],
    "burst-above-max": [PAYLOAD_TAT_MS, 0, 10, 1, 10, HOUR, MAX_LIMIT + 1, 0, 0],
    "drain-too-long": [PAYLOAD_TAT_MS, 0, 1, 1, 1, MAX_WINDOW_MS, 1000, 0, 0],
    "idle-above-max": [PAYLOAD_TAT_MS, 0, 10, 1, 10, HOUR, 10, MAX_WINDOW_MS + 1, 0],
    "unknown-flag": [PAYLOAD_TAT_MS, 0, 10, 1, 10, HOUR, 10, 0, 2],  # bit 0 is SHADOW; bit 1 is unknown
    "policy-cut-short": CONFIGURED_OK[:6],
    "extra-field-after-policy": CONFIGURED_OK + [0],
}
