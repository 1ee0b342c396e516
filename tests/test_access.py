"""Who may do what: ACL key patterns and command rules hold for every RL.* command (their
key specs: RL.PEEK and RL.INFO read, the others read and write), and RL.APPLY, the one
command that plants a state without deciding anything, is accepted from nowhere but the
master link (and the AOF): not from a client with every permission, a script, a
transaction or a replica's clients. A replication stream that does carry impossible
RL.APPLY lines is refused line by line by the replica.
"""

import re
import socket
import threading
import time

import pytest
import redis

from helpers import HOUR, rl_info, says
from resp import Incomplete, encode, parse, raw_call
NOPERM = redis.exceptions.NoPermissionError
INTERNAL_ONLY = "RL.APPLY is internal"
KEYED = [["RL.ALLOW"], ["RL.ALLOW", "LIMIT", 5, "WINDOW", HOUR], ["RL.THROTTLE", "COST", 1],
         ["RL.PEEK"], ["RL.CONFIG", 1, 1000], ["RL.CONFIG", 1, 1000, "IDLE", 5], ["RL.RESET"],
         ["RL.APPLY", 1, 0, 1, 0], ["RL.APPLY", 1, 0, 1, 0, "POLICY", 1, 1000, 1, 0, 0]]


def with_key(call, key):
    return [call[0], key, *call[1:]]


def digests(c, keys):
    return dict(zip(keys, c.execute_command("DEBUG", "DIGEST-VALUE", *keys)))


@pytest.fixture
def data(r):
    """Keys the restricted users must not reach: ratelimit keys of both kinds outside rl:*,
    a string, and the users' own rl:* keys."""
    r.execute_command("RL.CONFIG", "other:cfg", 10, HOUR)
    r.execute_command("RL.ALLOW", "other:cfg")
    r.execute_command("RL.ALLOW", "other:use", "LIMIT", 10, "WINDOW", HOUR)
    r.set("other:string", "v")
    r.execute_command("RL.CONFIG", "rl:own", 10, HOUR)
    keys = ["other:cfg", "other:use", "other:string", "rl:own"]
    before = digests(r, keys)
    yield r, before
    for user in r.acl_users():
        if user != "default":
            r.acl_deluser(user)


def user(server, r, name, *rules):
    r.execute_command("ACL", "SETUSER", name, "reset", "on", "nopass", *rules)
    return server.client(username=name, password="x")


def test_a_key_pattern_user_reaches_no_other_key_through_any_rl_command(server, data):
    """`~rl:* +@all`: every keyed RL.* call on a key outside rl:* (a ratelimit key, a string,
    an absent key), alone, in a script or in a transaction, gets NOPERM and changes
    nothing; RL.INFO too. Its own rl:* keys work."""
    r, before = data
    u = user(server, r, "pat", "~rl:*", "+@all")
    auth = ("pat", "x")
    for key in ("other:cfg", "other:use", "other:string", "other:absent"):
        for call in KEYED:
            with pytest.raises(NOPERM):
                u.execute_command(*with_key(call, key))
        reply, _, _ = raw_call(server.port, "RL.INFO", key, auth=auth)
        assert str(reply).startswith("NOPERM"), reply
        with pytest.raises(redis.ResponseError, match=re.escape(says("noperm_key_in_script"))):
            u.eval("return redis.call('RL.ALLOW', ARGV[1], 'LIMIT', 1, 'WINDOW', 1000)", 0, key)
        with pytest.raises(NOPERM):
            u.eval("return redis.call('RL.CONFIG', KEYS[1], 1, 1000)", 1, key)
        tx = u.pipeline(transaction=True)
        tx.execute_command("RL.RESET", key)
        with pytest.raises((redis.ResponseError, NOPERM)):
            tx.execute()
    assert digests(r, list(before)) == before
    assert r.exists("other:absent") == 0
    # Its own keys: every command but RL.APPLY.
    assert u.execute_command("RL.CONFIG", "rl:mine", 3, HOUR) == b"OK"
    assert u.execute_command("RL.ALLOW", "rl:mine") == 1
    assert u.execute_command("RL.THROTTLE", "rl:mine")[:3] == [1, 3, 1]
    assert u.execute_command("RL.PEEK", "rl:mine")[:3] == [1, 3, 0]
    assert rl_info(server.port, "rl:mine", auth=auth)[b"limit"] == 3
    assert u.execute_command("RL.RESET", "rl:mine") > 0
    with pytest.raises(redis.ResponseError, match=INTERNAL_ONLY):
        u.execute_command("RL.APPLY", "rl:mine", 1, 0, 1, 0)


def test_rl_top_does_not_reveal_keys_outside_the_callers_key_patterns(server, data):
    """RL.TOP is keyless, so ACL key patterns do not guard it: it must filter its list
    itself. (Found by this file on an earlier build, where a `~rl:* +@all` user saw
    `secret:1`; fixed in 7bbff97.)"""
    r, _ = data
    for _ in range(5):
        r.execute_command("RL.ALLOW", "secret:1", "LIMIT", 1, "WINDOW", HOUR)
        r.execute_command("RL.ALLOW", "rl:1", "LIMIT", 1, "WINDOW", HOUR)
    assert {b"secret:1", b"rl:1"} <= {e[0] for e in r.execute_command("RL.TOP", 128)}
    u = user(server, r, "pat", "~rl:*", "+@all")
    listed = [e[0] for e in u.execute_command("RL.TOP", 128)]
    assert b"rl:1" in listed and all(k.startswith(b"rl:") for k in listed), listed


def test_a_user_granted_only_rl_allow_and_rl_peek_cannot_change_policies(server, data):
    """`~* +rl.allow +rl.peek` (and +eval, +multi, +exec to try the side doors): RL.CONFIG,
    RL.RESET, RL.THROTTLE, RL.APPLY, RL.TOP and RL.INFO are refused with NOPERM, directly,
    from a script and in a transaction; the stored policies are untouched. RL.ALLOW and
    RL.PEEK work."""
    r, before = data
    u = user(server, r, "app", "~*", "+rl.allow", "+rl.peek", "+eval", "+multi", "+exec")
    refused = [["RL.CONFIG", "other:cfg", 1000, 1000], ["RL.RESET", "other:cfg"],
               ["RL.THROTTLE", "other:cfg"], ["RL.APPLY", "other:cfg", 1, 0, 1, 0],
               ["RL.TOP"], ["RL.INFO", "other:cfg"]]
    for call in refused:
        with pytest.raises(NOPERM, match=f"no permissions to run the '{call[0].lower()}' command"):
            u.execute_command(*call)
        with pytest.raises(redis.ResponseError, match=re.escape(says("noperm_command_in_script", command=call[0].lower()))):
            u.eval("return redis.call(unpack(ARGV))", 0, *call)
        tx = u.pipeline(transaction=True)
        tx.execute_command(*call)
        with pytest.raises((redis.ResponseError, NOPERM)):
            tx.execute()
    assert digests(r, list(before)) == before
    assert u.execute_command("RL.ALLOW", "other:cfg") == 1
    assert u.execute_command("RL.PEEK", "other:cfg")[1] == 10
    assert rl_info(server.port, "other:cfg")[b"limit"] == 10  # the policy is as configured


def test_a_read_only_key_pattern_allows_rl_peek_and_rl_info_but_no_write(server, data):
    """`%R~rl:* +@all`: RL.PEEK and RL.INFO (read-only key specs) work on rl:* keys;
    RL.ALLOW, RL.THROTTLE, RL.CONFIG and RL.RESET (read-write) get NOPERM and change
    nothing."""
    r, before = data
    u = user(server, r, "reader", "%R~rl:*", "+@all")
    assert u.execute_command("RL.PEEK", "rl:own")[:3] == [1, 10, 9]
    assert rl_info(server.port, "rl:own", auth=("reader", "x"))[b"source"] == b"stored"
    for call in (["RL.ALLOW", "rl:own"], ["RL.THROTTLE", "rl:own"], ["RL.CONFIG", "rl:own", 1, 1],
                 ["RL.RESET", "rl:own"], ["RL.ALLOW", "rl:new", "LIMIT", 1, "WINDOW", 1000]):
        with pytest.raises(NOPERM, match=re.escape(says("noperm_key"))):
            u.execute_command(*call)
    assert digests(r, list(before)) == before and r.exists("rl:new") == 0


def test_rl_apply_is_refused_to_a_client_with_every_permission(r):
    """The default user (all commands, all keys) cannot plant a state with RL.APPLY: not
    directly, not from EVAL, a function, or MULTI/EXEC; neither on a new key nor over an
    existing one."""
    r.execute_command("RL.CONFIG", "k", 10, HOUR)
    before = digests(r, ["k"])
    r.function_load("#!lua name=plant\nredis.register_function('plant', function(keys, args) "
                    "return redis.call('RL.APPLY', keys[1], unpack(args)) end)", replace=True)
    for key in ("k", "new"):
        for args in ([1, 0, 1, 0], [1, 0, 1, 0, "POLICY", 1000, 1, 1000, 0, 0]):
            with pytest.raises(redis.ResponseError, match=INTERNAL_ONLY):
                r.execute_command("RL.APPLY", key, *args)
            with pytest.raises(redis.ResponseError, match=INTERNAL_ONLY):
                r.eval("return redis.call('RL.APPLY', KEYS[1], unpack(ARGV))", 1, key, *args)
            with pytest.raises(redis.ResponseError, match=INTERNAL_ONLY):
                r.fcall("plant", 1, key, *args)
            tx = r.pipeline(transaction=True)
            tx.execute_command("RL.APPLY", key, *args)
            (reply,) = tx.execute(raise_on_error=False)
            assert INTERNAL_ONLY in str(reply)
    assert digests(r, ["k"]) == before and r.exists("new") == 0
    r.function_delete("plant")


def test_rl_apply_is_refused_to_a_replicas_clients(servers):
    """On a replica, RL.APPLY from its own clients is refused: READONLY by default, and the
    module's error when the replica is writable. Only its master link may send it."""
    master = servers("master", repl_diskless_sync_delay=0)
    replica = servers("replica")
    m, c = master.client(), replica.client()
    c.replicaof("127.0.0.1", master.port)
    m.execute_command("RL.CONFIG", "k", 10, HOUR)
    deadline = time.monotonic() + 60
    while m.wait(1, 1000) < 1 or not c.exists("k"):
        assert time.monotonic() < deadline, "replica did not sync"
    before = digests(c, ["k"])
    with pytest.raises(redis.exceptions.ReadOnlyError):
        c.execute_command("RL.APPLY", "k", 1, 0, 1, 0)
    c.config_set("replica-read-only", "no")
    for key in ("k", "new"):
        with pytest.raises(redis.ResponseError, match=INTERNAL_ONLY):
            c.execute_command("RL.APPLY", key, 1, 0, 1, 0, "POLICY", 1, 1, 1, 0, 0)
    assert digests(c, ["k"]) == before == digests(m, ["k"]) and c.exists("new") == 0


# --- a replication stream from a master that lies -----------------------------------------


def read_command(conn, buf):
    """One RESP array command from `conn` (with leftover `buf`): (args, rest)."""
    while True:
        try:
            args, i = parse(buf)
            return args, buf[i:]
        except Incomplete:
            chunk = conn.recv(4096)
            assert chunk, "the replica hung up"
            buf += chunk


class FakeMaster:
    """A master that answers a replica's handshake, sends `rdb` as a full sync, then the
    commands in `stream`, and reads (ignores) the replica's acknowledgements."""

    def __init__(self, rdb, stream):
        self.rdb, self.stream = rdb, stream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(60)
        self.port = self.listener.getsockname()[1]
        self.error, self.done = None, threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        try:
            conn, _ = self.listener.accept()
            with conn:
                conn.settimeout(60)
                buf = b""
                while True:
                    args, buf = read_command(conn, buf)
                    name = args[0].upper()
                    if name in (b"PSYNC", b"SYNC"):
                        break
                    conn.sendall(b"+PONG\r\n" if name == b"PING" else b"+OK\r\n")
                conn.sendall(b"+FULLRESYNC " + b"f" * 40 + b" 0\r\n")
                conn.sendall(b"$%d\r\n" % len(self.rdb) + self.rdb)
                conn.sendall(encode("SELECT", 0) + self.stream)
                conn.settimeout(0.5)
                while not self.done.is_set():
                    try:
                        if not conn.recv(4096):
                            return
                    except socket.timeout:
                        pass
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = e

    def close(self):
        self.done.set()
        self.thread.join(10)
        self.listener.close()


NOW = int(time.time() * 1000) + 30 * 24 * HOUR
EXP = NOW + HOUR
# RL.APPLY key state [POLICY ...], state = <tat_ms>[+<frac>/<den>][@<expire_at_ms>].
LIES = {
    "frac-not-below-den": [f"{NOW}+7/7@{EXP}"],
    "den-zero": [f"{NOW}+1/0@{EXP}"],
    "negative": [f"-1@{EXP}"],
    "tat-beyond-2^60": [f"{2**60 + 1}@{EXP}"],
    "burst-zero": [f"{NOW}@{EXP}", "POLICY", 10, HOUR, 0, 0, 0],
    "unknown-flag": [f"{NOW}@{EXP}", "POLICY", 10, HOUR, 10, 0, 4],
    "too-few": [],
}


def test_a_replica_refuses_impossible_rl_apply_from_its_master_link(servers, tmp_path):
    """A master that sends impossible RL.APPLY states: the replica refuses each one (logged
    as CRITICAL with the module's error), keeps serving, and applies the valid state that
    follows them. Nothing impossible is planted, even over an existing key."""
    donor = servers("donor")
    d = donor.client()
    d.execute_command("RL.CONFIG", "existing", 10, HOUR)
    before = digests(d, ["existing"])
    d.save()
    rdb = (donor.dir / "dump.rdb").read_bytes()
    donor.stop()
    stream = b"".join(encode("RL.APPLY", f"lie:{case}", *args) for case, args in LIES.items())
    stream += encode("RL.APPLY", "existing", f"{NOW}+1/0@{EXP}") + encode("RL.APPLY", "valid", f"{NOW}@{EXP}")
    master = FakeMaster(rdb, stream)
    try:
        replica = servers("replica")
        c = replica.client()
        c.replicaof("127.0.0.1", master.port)
        deadline = time.monotonic() + 60
        while not c.exists("valid"):
            assert master.error is None, master.error
            assert time.monotonic() < deadline, f"stream not applied; log:\n{replica.log[-2000:]}"
            time.sleep(0.05)
        assert c.ping() and sorted(c.scan_iter()) == [b"existing", b"valid"]
        assert digests(c, ["existing"]) == before
        assert c.execute_command("PEXPIRETIME", "valid") == EXP
        refused = [line for line in replica.log.splitlines()
                   if says("replica_refused") in line]
        assert len(refused) == len(LIES) + 1 and all("'rl.apply'" in x for x in refused), refused
    finally:
        master.close()
