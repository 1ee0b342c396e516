"""Persistence of the `ratelimit` type: every way a key leaves memory and comes back (DEBUG
RELOAD, RDB, AOF with and without rewrite, a crash, DUMP/RESTORE, COPY, MIGRATE) gives back
the same state, to the digest and to the millisecond of its expiry (MIGRATE, which sends a
relative TTL: never earlier), and behaves the same; a corrupt or forged payload is refused
without harming the server.

Every policy here has an emission interval of at least 360 s, so no bucket refills during a
test however slow the machine: the number of requests a client has left is exact.
"""

from dataclasses import dataclass

import pytest
import redis
from helpers import (CONFIGURED_OK, FORGED, HOUR, USAGE_OK, all_aof_bytes, aof_files, config, digest, pexpiretime,
                     rewrite_aof, says, server_ms, snapshot)
from helpers import allow as rl_allow
from payload import OPCODE_SINT, build_dump, parse_dump


# --- helpers ---------------------------------------------------------------------------


def allow(c, key, *options):
    """RL.ALLOW as a bool, so that a run of decisions compares to [True, ..., False]."""
    return bool(rl_allow(c, key, *options))


@dataclass(frozen=True)
class Client:
    """A rate-limited client left in a known state by `populate`."""

    key: bytes
    probe: tuple  # RL.ALLOW options that decide under the key's policy
    remaining: int  # unit requests it may still make
    expires: bool  # whether the key has an expiry


def populate(c):
    """Creates one key of every kind the module makes; returns what each must still allow."""
    c.config_set("rl.default-limit", 6)
    c.config_set("rl.default-window-ms", HOUR)
    c.config_set("rl.default-burst", 0)
    clients = []

    def used(key, n, *options):
        for _ in range(n):
            assert allow(c, key, *options), key

    # Configured, no IDLE: never expires; 4 of 10 used.
    config(c, b"cfg:half", 10, HOUR)
    used(b"cfg:half", 4)
    clients.append(Client(b"cfg:half", (), 6, False))
    # Configured with BURST and IDLE, used with a COST: expires IDLE after its last request.
    config(c, b"cfg:idle", 5, HOUR, "BURST", 8, "IDLE", 2 * HOUR)
    used(b"cfg:idle", 1, "COST", 3)
    clients.append(Client(b"cfg:idle", (), 5, True))
    # Configured and exhausted; the denied call changed nothing.
    config(c, b"cfg:exhausted", 3, HOUR)
    used(b"cfg:exhausted", 3)
    assert not allow(c, b"cfg:exhausted")
    clients.append(Client(b"cfg:exhausted", (), 0, False))
    # Configured and never used: a full bucket of BURST.
    config(c, b"cfg:fresh", 7, HOUR, "BURST", 2)
    clients.append(Client(b"cfg:fresh", (), 2, False))
    # Usage first, configured afterwards: keeps its usage, loses its expiry.
    used(b"cfg:was-usage", 5, "LIMIT", 10, "WINDOW", HOUR)
    config(c, b"cfg:was-usage", 10, HOUR)
    clients.append(Client(b"cfg:was-usage", (), 5, False))
    # Usage-only keys (inline or default policy) expire when their bucket is empty again.
    inline = ("LIMIT", 10, "WINDOW", HOUR)
    used(b"use:inline", 3, *inline)
    clients.append(Client(b"use:inline", inline, 7, True))
    burst = ("LIMIT", 4, "WINDOW", HOUR, "BURST", 6)
    used(b"use:burst", 1, "COST", 5, *burst)
    clients.append(Client(b"use:burst", burst, 1, True))
    # T = 3600000/7 ms is not whole: the TAT holds a fraction (frac/den = 5/7).
    sevenths = ("LIMIT", 7, "WINDOW", HOUR)
    used(b"use:fraction", 1, *sevenths)
    clients.append(Client(b"use:fraction", sevenths, 6, True))
    pair = ("LIMIT", 2, "WINDOW", HOUR)
    used(b"use:exhausted", 2, *pair)
    assert not allow(c, b"use:exhausted", *pair)
    clients.append(Client(b"use:exhausted", pair, 0, True))
    # The default policy (6 per hour); probed later with the same policy inline, so that the
    # probe does not depend on the server's configuration after a restart.
    used(b"use:default", 2)
    clients.append(Client(b"use:default", ("LIMIT", 6, "WINDOW", HOUR), 4, True))
    # A binary, non-UTF-8 key name.
    five = ("LIMIT", 5, "WINDOW", HOUR)
    used(b"\xff\x00k", 2, *five)
    clients.append(Client(b"\xff\x00k", five, 3, True))

    now = server_ms(c)
    for cl in clients:
        assert c.type(cl.key) == b"ratelimit", cl.key
        exp = pexpiretime(c, cl.key)
        assert (exp > now) if cl.expires else (exp == -1), (cl.key, exp)
    return clients


def keys_of(clients):
    return [cl.key for cl in clients]


def assert_same_keys(c, clients):
    assert sorted(c.scan_iter(count=1000)) == sorted(keys_of(clients))


def assert_behaviour(c, clients):
    """Each client gets exactly its remaining requests, then is denied (this uses them up)."""
    for cl in clients:
        got = [allow(c, cl.key, *cl.probe) for _ in range(cl.remaining + 1)]
        assert got == [True] * cl.remaining + [False], cl.key


# --- DEBUG RELOAD, RDB and AOF -----------------------------------------------------------


def test_debug_reload_keeps_every_key_with_identical_digest_and_expiry(r):
    """DEBUG RELOAD (save + load the RDB) gives back every kind of key, binary names
    included, with the same value digest and absolute expiry, and the same behaviour."""
    clients = populate(r)
    before = snapshot(r, keys_of(clients))
    dataset = r.execute_command("DEBUG", "DIGEST")
    assert r.execute_command("DEBUG", "RELOAD") in (b"OK", "OK", True)
    assert_same_keys(r, clients)
    assert snapshot(r, keys_of(clients)) == before
    assert r.execute_command("DEBUG", "DIGEST") == dataset
    assert_behaviour(r, clients)


def test_restart_from_rdb_keeps_state_digests_and_expiries(servers):
    """A server restarted from its RDB snapshot (no AOF) loads every key with the same
    digest and expiry; exhausted clients stay denied, half-used ones keep their exact rest."""
    s = servers(appendonly="no")
    c = s.client()
    clients = populate(c)
    before = snapshot(c, keys_of(clients))
    c.save()
    s.restart()
    assert "DB loaded from disk" in s.log
    c = s.client()
    assert c.info("persistence")["rdb_last_load_keys_loaded"] == len(clients)
    assert_same_keys(c, clients)
    assert snapshot(c, keys_of(clients)) == before
    assert_behaviour(c, clients)


def test_restart_from_aof_replays_rl_apply_to_the_same_state(servers):
    """With appendonly yes the AOF records each change as RL.APPLY (never RL.ALLOW or
    RL.CONFIG, whose result depends on the clock); replaying it gives the same state."""
    s = servers(appendonly="yes", appendfsync="always")
    c = s.client()
    clients = populate(c)
    before = snapshot(c, keys_of(clients))
    aof = all_aof_bytes(s).lower()
    assert b"rl.apply" in aof
    assert b"rl.allow" not in aof and b"rl.config" not in aof
    s.restart()
    assert "DB loaded from append only file" in s.log
    c = s.client()
    assert_same_keys(c, clients)
    assert snapshot(c, keys_of(clients)) == before
    assert_behaviour(c, clients)


def test_crash_with_appendfsync_always_loses_no_allowed_request(servers):
    """After SIGKILL (no shutdown save), the AOF written with appendfsync always holds every
    allowed request: the restarted server grants nothing more than it had left."""
    s = servers(appendonly="yes", appendfsync="always")
    c = s.client()
    clients = populate(c)
    before = snapshot(c, keys_of(clients))
    s.kill()
    s.start()
    assert "DB loaded from append only file" in s.log
    c = s.client()
    assert_same_keys(c, clients)
    assert snapshot(c, keys_of(clients)) == before
    assert_behaviour(c, clients)


def test_restart_after_aof_rewrite_with_rdb_preamble_keeps_state(servers):
    """After BGREWRITEAOF with the RDB preamble, the rewritten base (an RDB) is what loads,
    and it gives back the same digests and expiries."""
    s = servers(appendonly="yes", appendfsync="always", aof_use_rdb_preamble="yes")
    c = s.client()
    clients = populate(c)
    before = snapshot(c, keys_of(clients))
    rewrite_aof(c)
    files = aof_files(s)
    base = [f for f in files if f[1] == "b"]
    assert len(base) == 1 and base[0][0].endswith(".base.rdb") and base[0][2].startswith(says("rdb_magic"))
    # Nothing changed since the rewrite: the state is all in the rewritten base.
    assert all(b"rl.apply" not in data.lower() for _, kind, data in files if kind == "i")
    assert b"rl.allow" not in all_aof_bytes(s).lower()
    s.restart()
    assert f"DB loaded from base file {base[0][0]}" in s.log
    c = s.client()
    assert_same_keys(c, clients)
    assert snapshot(c, keys_of(clients)) == before
    assert_behaviour(c, clients)


def test_restart_after_pure_aof_rewrite_replays_one_rl_apply_per_key(servers):
    """With aof-use-rdb-preamble no, the rewrite writes each key as one RL.APPLY (plus
    PEXPIREAT for the keys that expire), and loading that file gives back the same state."""
    s = servers(appendonly="yes", appendfsync="always", aof_use_rdb_preamble="no")
    c = s.client()
    clients = populate(c)
    before = snapshot(c, keys_of(clients))
    rewrite_aof(c)
    files = aof_files(s)
    base = [(name, data) for name, kind, data in files if kind == "b"]
    assert len(base) == 1 and base[0][0].endswith(".base.aof")
    text = base[0][1].lower()
    assert text.count(b"rl.apply") == len(clients)
    assert text.count(b"pexpireat") == sum(cl.expires for cl in clients)
    assert b"rl.allow" not in text and b"rl.config" not in text
    assert all(b"rl.apply" not in data.lower() for _, kind, data in files if kind == "i")
    s.restart()
    assert f"DB loaded from base file {base[0][0]}" in s.log
    c = s.client()
    assert_same_keys(c, clients)
    assert snapshot(c, keys_of(clients)) == before
    assert_behaviour(c, clients)


def test_aof_replay_keeps_a_user_ttl_on_a_configured_key_after_rl_allow(servers):
    """A TTL set by the user on a configured key (no IDLE) survives RL.ALLOW on the master;
    the AOF replay must give back the same expiry."""
    s = servers(appendonly="yes", appendfsync="always")
    c = s.client()
    config(c, b"k", 10, HOUR)
    c.pexpire(b"k", 2 * HOUR)
    assert allow(c, b"k")
    before = snapshot(c, [b"k"])
    assert before[b"k"][1] > 0
    s.restart()
    assert snapshot(s.client(), [b"k"]) == before


# --- DUMP / RESTORE, COPY, MIGRATE -------------------------------------------------------


def restore_exact(c, dst, src, payload, **kw):
    """RESTORE with src's absolute expiry (ABSTTL), or none: an exact copy of the key."""
    exp = pexpiretime(c, src)
    if exp == -1:
        return c.restore(dst, 0, payload, **kw)
    return c.restore(dst, exp, payload, absttl=True, **kw)


def test_dump_restore_round_trips_every_key(r):
    """RESTORE of each key's DUMP (with the key's own expiry as ABSTTL) makes a key with the
    same digest and expiry, that allows exactly what the original allows; using it leaves
    the original untouched. (DEBUG DIGEST-VALUE mixes in whether a key has an expiry.)"""
    clients = populate(r)
    originals = snapshot(r, keys_of(clients))
    copies = []
    for cl in clients:
        dst = b"restored:" + cl.key
        assert restore_exact(r, dst, cl.key, r.dump(cl.key))
        assert snapshot(r, [dst])[dst] == originals[cl.key], cl.key
        copies.append(Client(dst, cl.probe, cl.remaining, cl.expires))
    assert_behaviour(r, copies)
    assert snapshot(r, keys_of(clients)) == originals
    assert_behaviour(r, clients)


def test_restore_with_ttl_or_absttl_sets_that_expiry(r):
    """RESTORE key ttl sets an expiry ttl ms from now; with ABSTTL, exactly that instant;
    with 0, none. The value is the dumped one in every case."""
    clients = populate(r)
    for cl in clients:
        payload = r.dump(cl.key)
        before = server_ms(r)
        r.restore(b"ttl:" + cl.key, 600_000, payload)
        after = server_ms(r)
        assert before + 600_000 <= pexpiretime(r, b"ttl:" + cl.key) <= after + 600_000
        at = before + 5 * HOUR + 123
        r.restore(b"abs:" + cl.key, at, payload, absttl=True)
        assert pexpiretime(r, b"abs:" + cl.key) == at
        r.restore(b"none:" + cl.key, 0, payload)
        assert pexpiretime(r, b"none:" + cl.key) == -1
        assert digest(r, b"ttl:" + cl.key) == digest(r, b"abs:" + cl.key)
        # Same value: equal digests wherever the presence of an expiry is the same.
        assert digest(r, (b"abs:" if cl.expires else b"none:") + cl.key) == digest(r, cl.key)
        assert r.dump(b"ttl:" + cl.key) == r.dump(b"none:" + cl.key) == payload
    remaining = [Client(p + cl.key, cl.probe, cl.remaining, False)
                 for cl in clients for p in (b"ttl:", b"abs:", b"none:")]
    assert_behaviour(r, remaining)


def test_restore_replace_overwrites_and_busykey_without_it(r):
    """RESTORE onto an existing key fails with BUSYKEY and leaves it alone; with REPLACE the
    key (ours or a string) takes exactly the dumped value."""
    clients = populate(r)
    src = next(cl for cl in clients if cl.key == b"cfg:idle")
    payload = r.dump(src.key)
    other = b"cfg:half"
    kept = snapshot(r, [other])
    with pytest.raises(redis.ResponseError, match="BUSYKEY"):
        r.restore(other, 0, payload)
    assert snapshot(r, [other]) == kept
    r.set(b"string", b"x")
    for dst in (other, b"string"):
        assert restore_exact(r, dst, src.key, payload, replace=True)
        assert r.type(dst) == b"ratelimit"
        assert snapshot(r, [dst])[dst] == snapshot(r, [src.key])[src.key]
    assert_behaviour(r, [Client(other, (), src.remaining, True),
                         Client(b"string", (), src.remaining, True), src])


def test_copy_is_independent_and_carries_expiry(r, server):
    """COPY makes an equal value (same digest, same expiry, also into another DB); using the
    copy does not change the original, which keeps its own remaining requests."""
    clients = populate(r)
    originals = snapshot(r, keys_of(clients))
    copies = []
    for cl in clients:
        dst = b"copy:" + cl.key
        assert r.copy(cl.key, dst)
        assert snapshot(r, [dst])[dst] == originals[cl.key]
        copies.append(Client(dst, cl.probe, cl.remaining, cl.expires))
    assert_behaviour(r, copies)
    assert snapshot(r, keys_of(clients)) == originals
    # Into another database, and over an existing key with REPLACE.
    assert r.copy(b"use:inline", b"use:inline", destination_db=1)
    db1 = server.client(db=1)
    try:
        assert snapshot(db1, [b"use:inline"]) == {b"use:inline": originals[b"use:inline"]}
    finally:
        db1.close()
    assert r.copy(b"cfg:half", b"use:fraction", replace=True)
    assert digest(r, b"use:fraction") == originals[b"cfg:half"][0]
    assert pexpiretime(r, b"use:fraction") == -1
    assert snapshot(r, [b"cfg:half"]) == {b"cfg:half": originals[b"cfg:half"]}
    assert_behaviour(r, [cl for cl in clients if cl.key != b"use:fraction"])


def test_migrate_moves_state_to_another_server(r, servers):
    """MIGRATE (DUMP + RESTORE over the wire) recreates every key on another server with the
    same digest and behaviour; expiries travel as a TTL, so they land at the same instant
    or a few ms later, never earlier."""
    clients = populate(r)
    before = snapshot(r, keys_of(clients))
    target = servers("target")
    t = target.client()
    assert r.migrate("127.0.0.1", target.port, keys_of(clients), 0, 10_000) in (b"OK", "OK", True)
    assert r.dbsize() == 0
    assert_same_keys(t, clients)
    after = snapshot(t, keys_of(clients))
    for key, (dig, exp) in before.items():
        assert after[key][0] == dig, key
        if exp == -1:
            assert after[key][1] == -1, key
        else:
            assert exp <= after[key][1] <= exp + 30_000, key
    assert_behaviour(t, clients)


# --- corrupt and forged payloads ---------------------------------------------------------


def assert_refused(r, payload, key=b"forged"):
    """RESTORE of `payload` fails, the server keeps serving, and no key appears."""
    keys = sorted(r.scan_iter(count=1000))
    with pytest.raises(redis.ResponseError) as err:
        r.restore(key, 0, payload)
    assert r.ping()
    assert r.exists(key) == 0
    assert sorted(r.scan_iter(count=1000)) == keys
    return str(err.value)


def test_payload_codec_reproduces_real_dumps_and_forges_accepted_values(r):
    """Control for the forged-payload tests: the Python encoder rebuilds every real DUMP
    byte for byte (CRC64 included), and a forged but valid state restores and behaves as
    its fields say."""
    clients = populate(r)
    for cl in clients:
        payload = r.dump(cl.key)
        assert build_dump(*parse_dump(payload)) == payload, cl.key
    module_id, fields, version = parse_dump(r.dump(b"use:inline"))
    assert fields[2:] == [1, 0]  # a whole-ms TAT is stored in lowest terms (den 1); usage-only
    # TAT two emission intervals (2 * 360 s) from now: 8 of 10 left.
    forged = build_dump(module_id, [server_ms(r) + 2 * HOUR // 10, 0, 10, 0], version)
    assert r.restore(b"forged", 0, forged)
    assert_behaviour(r, [Client(b"forged", ("LIMIT", 10, "WINDOW", HOUR), 8, False)])
    module_id, fields, version = parse_dump(r.dump(b"cfg:fresh"))
    assert fields[3:] == [1, 7, HOUR, 2, 0, 0]
    forged = build_dump(module_id, [0, 0, 1, 1, 3, HOUR, 3, 0, 0], version)
    assert r.restore(b"forged-cfg", 0, forged)
    assert_behaviour(r, [Client(b"forged-cfg", (), 3, False)])


@pytest.mark.parametrize("damage", [
    "flip-middle-byte", "flip-crc-byte", "truncate", "truncate-to-half"])
def test_corrupted_restore_payload_is_rejected_and_server_stays_up(r, damage):
    """A payload with a flipped byte or cut short fails its checksum: RESTORE errors, the
    server answers PING afterwards, and the key is not created."""
    populate(r)
    payload = bytearray(r.dump(b"cfg:idle"))
    if damage == "flip-middle-byte":
        payload[len(payload) // 2] ^= 0xFF
    elif damage == "flip-crc-byte":
        payload[-1] ^= 0x01
    elif damage == "truncate":
        payload = payload[:-3]
    else:
        payload = payload[:len(payload) // 2]
    assert "checksum" in assert_refused(r, bytes(payload))


@pytest.mark.parametrize("case", sorted(FORGED))
def test_forged_payload_with_valid_checksum_but_impossible_state_is_rejected(r, case):
    """A payload that passes the checksum but describes a state the commands could never
    produce is refused by rdb_load: RESTORE errors, the server stays up, no key appears,
    and an existing key is left as it was even with REPLACE."""
    populate(r)
    module_id, _, version = parse_dump(r.dump(b"cfg:half"))
    for ok in (USAGE_OK, CONFIGURED_OK):  # the same framing with sane values is accepted
        assert r.restore(b"sane", 0, build_dump(module_id, ok, version), replace=True)
    payload = build_dump(module_id, FORGED[case], version)
    assert "Bad data format" in assert_refused(r, payload)
    kept = snapshot(r, [b"cfg:half"])
    with pytest.raises(redis.ResponseError, match="Bad data format"):
        r.restore(b"cfg:half", 0, payload, replace=True)
    assert snapshot(r, [b"cfg:half"]) == kept


@pytest.mark.parametrize("case", ["future-encoding-version", "signed-opcode"])
def test_payload_with_wrong_encoding_is_rejected(r, case):
    """A payload tagged with an encoding version this module does not know, or whose fields
    are stored with the signed opcode instead of the unsigned one, is refused cleanly."""
    populate(r)
    module_id, fields, version = parse_dump(r.dump(b"use:inline"))
    if case == "future-encoding-version":
        assert module_id & 1023 == 3  # encoding version 3 since issue 17
        payload = build_dump(module_id + 1, fields, version)
    else:
        payload = build_dump(module_id, fields, version, opcode=OPCODE_SINT)
    assert "Bad data format" in assert_refused(r, payload)
