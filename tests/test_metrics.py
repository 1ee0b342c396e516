"""The operator's view of the module: the `INFO rl` counters (live_buckets exact through
every way a key comes and goes), denials as keyspace events, RL.TOP (the most denied clients,
under load, within the Space-Saving error bounds, in bounded memory), Redis's own latency
view of the commands (rl.scale-percent and SHADOW are in test_dynamic.py).

INFO rl counters are process-wide and survive FLUSHALL, so tests compare before and after;
tests that need an empty RL.TOP sketch start their own server. Polls have deadlines.
"""

import random
import threading
from collections import Counter

import pytest
import redis
from helpers import (HOUR, config, configured_payload, events_until, pipelined, raw_command, rl_stats, sealed,
                     server_ms, subscribe, throttle, wait_until)

INFO_RL = ["rl_checks_allowed", "rl_checks_denied",
           "rl_checks_allowed_inline", "rl_checks_denied_inline",
           "rl_checks_allowed_stored", "rl_checks_denied_stored",
           "rl_checks_allowed_default", "rl_checks_denied_default",
           "rl_checks_shadow_denied", "rl_errors", "rl_configs_written", "rl_resets",
           "rl_live_buckets", "rl_top_tracked", "rl_scale_percent"]
DENY = ("COST", 2, "LIMIT", 1, "WINDOW", HOUR)  # denied on an absent key, which stays absent


# --- INFO rl -----------------------------------------------------------------------------


def test_info_rl_section_has_every_counter_in_order(r):
    """INFO rl (and INFO everything) has the section, every field, integers, in order."""
    text = raw_command(r, "INFO", "rl").decode()
    assert text.splitlines()[0] == "# rl"
    assert list(rl_stats(r)) == INFO_RL
    assert all(type(v) is int for v in rl_stats(r).values())
    assert "rl_live_buckets" in r.info("everything")


def test_checks_are_counted_by_outcome_and_policy_source(r):
    """Each decision of RL.ALLOW and RL.THROTTLE counts once, as allowed or denied, under
    its policy's source; RL.PEEK counts nothing; errors, stored configs and resets that
    forgot something have their own counters."""
    before = rl_stats(r)
    inline = ("LIMIT", 1, "WINDOW", HOUR)
    assert [r.execute_command("RL.ALLOW", "count:inline", *inline) for _ in range(3)] == [1, 0, 0]
    config(r, "count:stored", 2, HOUR)
    assert [throttle(r, "count:stored")["allowed"] for _ in range(3)] == [1, 1, 0]
    r.config_set("rl.default-limit", 1)
    r.config_set("rl.default-window-ms", HOUR)
    assert [r.execute_command("RL.ALLOW", "count:default") for _ in range(2)] == [1, 0]
    for key, opts in [("count:stored", ()), ("count:default", ()), ("count:inline", inline)]:
        r.execute_command("RL.PEEK", key, *opts)
    r.set("count:string", "x")
    for bad in [("RL.ALLOW", "count:inline", "COST", 0), ("RL.CONFIG", "count:x", 0, HOUR),
                ("RL.TOP", 0), ("RL.THROTTLE", "count:string", *inline)]:
        with pytest.raises(redis.ResponseError):
            r.execute_command(*bad)
    assert r.execute_command("RL.RESET", "count:stored") > 0
    assert r.execute_command("RL.RESET", "count:absent") == 0
    after = rl_stats(r)
    delta = {k: after[k] - before[k] for k in INFO_RL if k != "rl_top_tracked"}
    assert delta == {
        "rl_checks_allowed": 4, "rl_checks_denied": 4,
        "rl_checks_allowed_inline": 1, "rl_checks_denied_inline": 2,
        "rl_checks_allowed_stored": 2, "rl_checks_denied_stored": 1,
        "rl_checks_allowed_default": 1, "rl_checks_denied_default": 1,
        "rl_checks_shadow_denied": 0, "rl_errors": 4, "rl_configs_written": 1,
        "rl_resets": 1, "rl_live_buckets": 3, "rl_scale_percent": 0}


# --- rl_live_buckets ---------------------------------------------------------------------


def make(c, n, prefix, *, window=HOUR, configured=0, db_client=None):
    """n usage-only keys (one allowed request each) and `configured` configured ones."""
    c = db_client or c
    assert pipelined(c, [("RL.ALLOW", f"{prefix}{i}", "LIMIT", 1, "WINDOW", window)
                         for i in range(n)]) == [1] * n
    for i in range(configured):
        config(c, f"{prefix}cfg{i}", 5, HOUR)
    return [f"{prefix}{i}" for i in range(n)] + [f"{prefix}cfg{i}" for i in range(configured)]


def op_expiry(c, s):
    make(c, 5, "short:", window=150)  # a bucket of 1 that is empty again 150 ms later
    make(c, 2, "long:")
    return 2


def op_del(c, s):
    keys = make(c, 3, "k", configured=2)
    assert c.delete(keys[0], keys[1], keys[3]) == 3
    return 2


def op_unlink(c, s):
    keys = make(c, 3, "k", configured=2)
    assert c.unlink(keys[0], keys[1], keys[3]) == 3
    return 2


def op_flushall(c, s):
    make(c, 10, "k", configured=2)
    make(c, 3, "d1:", db_client=s.client(db=1))
    c.flushall()
    return 0


def op_flushall_async(c, s):
    for part in range(6):  # enough values for the lazy-free thread to free them
        make(c, 500, f"k{part}:")
    make(c, 3, "d1:", db_client=s.client(db=1))
    c.flushall(asynchronous=True)
    return 0


def op_flushdb_async(c, s):
    make(c, 4, "k", configured=1)
    d1 = s.client(db=1)
    make(c, 1000, "d1:", db_client=d1)
    d1.flushdb(asynchronous=True)
    return 5


def op_debug_reload(c, s):
    make(c, 5, "k", configured=2)
    make(c, 2, "d1:", db_client=s.client(db=1))
    c.set("string", "x")
    assert c.execute_command("DEBUG", "RELOAD") in (b"OK", True)
    return 9


def op_restore(c, s):
    make(c, 3, "k", configured=1)
    payload = c.dump("k0")
    c.restore("new", 0, payload)  # +1
    c.restore("k1", 0, c.dump("kcfg0"), replace=True)  # replaces a bucket
    past = (server_ms(c) - 10_000)
    c.restore("gone", past, payload, absttl=True)  # loaded, already expired, freed
    assert c.exists("gone") == 0
    return 5


def op_copy(c, s):
    make(c, 3, "k", configured=1)
    assert c.copy("k0", "copy0")
    assert c.copy("kcfg0", "k1", replace=True)
    assert c.copy("k2", "k2", destination_db=1)
    return 6


def op_failed_restore(c, s):
    make(c, 2, "k", configured=1)
    usage = c.dump("k0")
    body = usage[:-8]
    bad = {
        "bad checksum": usage[:-1] + bytes([usage[-1] ^ 0xFF]),
        "unknown flag": configured_payload(c, 5, HOUR, flags=b"\x02"),
        # A field after the last one: the value is built, then refused and freed.
        "trailing field": sealed(body[:-3] + b"\x02\x00\x00" + body[-2:]),
    }
    for name, payload in bad.items():
        with pytest.raises(redis.ResponseError):
            c.restore(f"bad:{name}", 0, payload)
    with pytest.raises(redis.ResponseError, match="BUSYKEY"):
        c.restore("k1", 0, usage)
    assert c.keys("bad:*") == []
    return 3


def op_rl_reset(c, s):
    make(c, 3, "k", configured=1)
    assert c.execute_command("RL.RESET", "k0") > 0  # deleted
    assert c.execute_command("RL.ALLOW", "kcfg0") == 1
    assert c.execute_command("RL.RESET", "kcfg0") > 0  # kept, emptied
    return 3


def op_config_over_usage(c, s):
    make(c, 3, "k")
    config(c, "k0", 5, HOUR)  # the usage-only value is swapped for a configured one
    config(c, "k0", 6, HOUR)
    return 3


def op_overwritten(c, s):
    make(c, 3, "k", configured=1)
    c.set("k0", "now a string")
    c.rename("k1", "kcfg0")
    assert c.move("k2", 1)
    return 2


@pytest.mark.parametrize("op", [op_expiry, op_del, op_unlink, op_flushall, op_flushall_async,
                                op_flushdb_async, op_debug_reload, op_restore, op_copy,
                                op_failed_restore, op_rl_reset, op_config_over_usage,
                                op_overwritten], ids=lambda f: f.__name__[3:])
def test_live_buckets_counts_exactly_the_values_alive(server, r, op):
    """After each way a value is made, copied, replaced or freed, rl_live_buckets equals
    the number of ratelimit keys (databases 0 and 1), and the number the step should
    leave. Frees that happen later (expiry, lazy free) are polled for."""
    assert rl_stats(r)["rl_live_buckets"] == 0
    expected = op(r, server)

    def ratelimit_keys():
        return sum(sum(1 for _ in server.client(db=db).scan_iter(count=1000, _type="ratelimit"))
                   for db in (0, 1))

    wait_until(lambda: rl_stats(r)["rl_live_buckets"] == expected, timeout=20,
               what=f"rl_live_buckets to be {expected}")
    assert ratelimit_keys() == expected == rl_stats(r)["rl_live_buckets"]
    r.execute_command("FLUSHALL", "SYNC")  # plain FLUSHALL is lazy on Valkey (lazyfree-lazy-user-flush yes)
    assert rl_stats(r)["rl_live_buckets"] == 0


# --- keyspace events ---------------------------------------------------------------------


def test_each_denied_request_is_published_as_rl_denied(server, r):
    """With notify-keyspace-events Ed, every denied RL.ALLOW or RL.THROTTLE publishes its
    key (binary keys too) on __keyevent@0__:rl.denied, once per request; allowed requests,
    RL.PEEK and RL.CONFIG publish nothing."""
    r.config_set("notify-keyspace-events", "Ed")
    sub = subscribe(server, "__keyevent@0__:*")
    binary = b"\xff\x00bin\r\n"
    inline = ("LIMIT", 1, "WINDOW", HOUR)
    assert [r.execute_command("RL.ALLOW", "k", *inline) for _ in range(3)] == [1, 0, 0]
    assert throttle(r, "k", *inline)["allowed"] == 0
    assert r.execute_command("RL.PEEK", "k", *inline)[0] == 0
    assert [r.execute_command("RL.ALLOW", binary, *DENY) for _ in range(2)] == [0, 0]
    config(r, "c", 1, HOUR)
    assert [r.execute_command("RL.ALLOW", "c") for _ in range(2)] == [1, 0]
    assert r.execute_command("RL.ALLOW", "sentinel", *DENY) == 0
    channel = b"__keyevent@0__:rl.denied"
    assert events_until(sub, b"sentinel") == (
        [(channel, b"k")] * 3 + [(channel, binary)] * 2 + [(channel, b"c")])
    sub.close()


def test_keyspace_channel_names_the_event(server, r):
    """With notify-keyspace-events Kd the key's own channel gets the event name."""
    r.config_set("notify-keyspace-events", "Kd")
    sub = subscribe(server, "__keyspace@0__:*")
    assert r.execute_command("RL.ALLOW", "k", *DENY) == 0
    m = wait_until(lambda: (m := sub.get_message(timeout=0.1)) and m["type"] == "pmessage" and m,
                   what="the keyspace event")
    assert (m["channel"], m["data"]) == (b"__keyspace@0__:k", b"rl.denied")
    sub.close()


@pytest.mark.parametrize("setting", ["", "Eg", "KE$lshzxetg"])
def test_no_event_is_published_unless_the_module_class_is_enabled(server, r, setting):
    """With notifications off, or on for every class but the module's (d), denied requests
    publish nothing: a subscriber of __key*__:* gets only the sentinel denial sent after
    turning on Ed."""
    sub = subscribe(server, "__key*__:*")
    r.config_set("notify-keyspace-events", setting)
    assert r.execute_command("RL.ALLOW", "k", "LIMIT", 1, "WINDOW", HOUR) == 1
    for _ in range(3):
        assert r.execute_command("RL.ALLOW", "k", "LIMIT", 1, "WINDOW", HOUR) == 0
        assert throttle(r, "j", *DENY)["allowed"] == 0
    r.config_set("notify-keyspace-events", "Ed")
    assert r.execute_command("RL.ALLOW", "sentinel", *DENY) == 0
    assert events_until(sub, b"sentinel") == []
    sub.close()


# --- RL.TOP ------------------------------------------------------------------------------


def test_top_lists_the_most_denied_first_ten_by_default(servers):
    """RL.TOP is [key, denied, error] entries, most denied first, 10 unless asked; while
    fewer clients than the sketch holds were denied the counts are exact (error 0).
    Allowed requests and RL.PEEK denials do not count."""
    s = servers()
    c = s.client()
    commands = [("RL.ALLOW", f"t{i:02d}", *DENY) for i in range(12) for _ in range(i + 1)]
    assert not any(pipelined(c, commands))
    assert c.execute_command("RL.ALLOW", "peeked", "LIMIT", 1, "WINDOW", HOUR) == 1
    for _ in range(50):
        assert c.execute_command("RL.ALLOW", "allowed", "LIMIT", 1000, "WINDOW", HOUR) == 1
        assert c.execute_command("RL.PEEK", "peeked", "LIMIT", 1, "WINDOW", HOUR)[0] == 0
    everything = [[f"t{i:02d}".encode(), i + 1, 0] for i in reversed(range(12))]
    assert c.execute_command("RL.TOP") == everything[:10]
    assert c.execute_command("RL.TOP", 3) == everything[:3]
    assert c.execute_command("RL.TOP", 128) == everything
    assert c.execute_command("RL.TOP", 10**12) == everything
    assert s.client(protocol=3).execute_command("RL.TOP", 2) == everything[:2]
    assert rl_stats(c)["rl_top_tracked"] == 12


@pytest.mark.parametrize("count", [0, -1, "x", "1.5", "", "+3", "18446744073709551616"])
def test_top_count_must_be_a_positive_integer(r, count):
    """Zero, negatives, non-integers, a sign and numbers past u64 are refused."""
    with pytest.raises(redis.ResponseError, match="count must be a positive integer"):
        r.execute_command("RL.TOP", count)


def test_top_takes_at_most_one_argument(r):
    """RL.TOP count extra: a wrong-arity error."""
    with pytest.raises(redis.ResponseError, match="wrong number of arguments"):
        r.execute_command("RL.TOP", 1, 2)


def test_top_ranks_the_abusers_first_under_load_within_the_error_bound(servers):
    """200 clients with a bucket of 1 on 8 connections in pipelines: 4 abusers (one with a
    binary name) denied thousands of times, the others up to 40 times, in random order.
    With 200 clients for 128 counters, RL.TOP still lists the abusers first, in order, and
    every entry obeys Space-Saving: count >= true >= count - error, error <= N/128, and
    every client denied more than N/128 times is listed."""
    s = servers()
    c = s.client()
    rng = random.Random(20240611)
    policy = ("LIMIT", 1, "WINDOW", HOUR)
    abusers = {b"abuser:1": 5000, b"\xff\x00abuser\r\n2": 3600, b"abuser:3": 2400,
               b"abuser:4": 1500}
    planned = {**abusers, **{b"client:%03d" % i: rng.randint(0, 40) for i in range(196)}}
    assert pipelined(c, [("RL.ALLOW", k, *policy) for k in planned]) == [1] * 200
    stream = [k for k, n in planned.items() for _ in range(n)]
    rng.shuffle(stream)
    counted = []
    start = server_ms(c)

    def client(part):
        w = s.client()
        denied = Counter()
        for i in range(0, len(part), 500):
            chunk = part[i:i + 500]
            for key, allowed in zip(chunk, pipelined(w, [("RL.ALLOW", k, *policy) for k in chunk])):
                denied[key] += not allowed
        counted.append(denied)
        w.close()

    threads = [threading.Thread(target=client, args=(stream[i::8],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    truth = sum(counted, Counter())
    assert truth == Counter({k: n for k, n in planned.items() if n})
    top = c.execute_command("RL.TOP", 128)
    if server_ms(c) - start >= 60_000:
        pytest.skip("the load took over a minute: the sketch halved its counts meanwhile")
    n = sum(truth.values())
    assert [e[0] for e in top[:4]] == sorted(abusers, key=abusers.get, reverse=True)
    assert len(top) == 128
    for key, count, error in top:
        assert count >= truth[key] >= count - error, (key, count, error, truth[key])
        assert error <= n // 128
    listed = {e[0] for e in top}
    assert all(k in listed for k, t in truth.items() if t > n / 128)
    info = rl_stats(c)
    assert (info["rl_checks_denied_inline"], info["rl_checks_allowed_inline"]) == (n, 200)
    assert (info["rl_top_tracked"], info["rl_live_buckets"]) == (128, 200)
    print(f"\nN = {n} denials of 200 clients\nRL.TOP 10 -> {c.execute_command('RL.TOP', 10)!r}")
    print(raw_command(c, "INFO", "rl").decode())


def test_top_keeps_binary_and_long_keys_whole_and_tracks_none_over_1024_bytes(servers):
    """Keys come back byte for byte and whole (two long keys sharing their first 256 bytes
    are two clients); a key longer than 1024 bytes is not tracked at all, since RL.TOP can
    ACL-check only a whole name (tests/test_acl_reveal.py)."""
    s = servers()
    c = s.client()
    binary = b"\x00\xff\r\n*1\r\n$\x00"
    long_key = bytes(range(256)) * 4  # 1024 bytes: the longest tracked
    same_prefix = bytes(range(256)) + b"another client"
    too_long = long_key + b"!"
    commands = ([("RL.ALLOW", binary, *DENY)] * 3 + [("RL.ALLOW", long_key, *DENY)] * 4
                + [("RL.ALLOW", same_prefix, *DENY)] * 2 + [("RL.ALLOW", too_long, *DENY)] * 5)
    assert not any(pipelined(c, commands))
    assert c.execute_command("RL.TOP") == [[long_key, 4, 0], [binary, 3, 0], [same_prefix, 2, 0]]


def test_top_memory_stays_bounded_with_thousands_of_denied_clients(servers):
    """20000 distinct 250-byte clients denied (about 5 MB of names): the sketch tracks 128,
    no key is stored, and used_memory grows by less than 1 MB, and not at all (within
    256 kB) between the first 2000 and the other 18000."""
    s = servers()
    c = s.client()

    def deny_distinct(first, n):
        w = s.client()
        load_id = w.client_id()
        for i in range(first, first + n, 1000):
            names = [b"%08d:" % j + b"x" * 241 for j in range(i, min(i + 1000, first + n))]
            assert not any(pipelined(w, [("RL.ALLOW", k, *DENY) for k in names]))
        w.close()
        # Measure once the server has dropped that connection and its buffers.
        wait_until(lambda: all(x["id"] != str(load_id) for x in c.client_list()),
                   what="the load connection to close")
        return c.info("memory")["used_memory"]

    m0 = c.info("memory")["used_memory"]
    m1 = deny_distinct(0, 2000)
    m2 = deny_distinct(2000, 18000)
    assert c.dbsize() == 0 and rl_stats(c)["rl_top_tracked"] == 128
    assert m1 - m0 < 1024 * 1024, (m0, m1)
    assert m2 - m1 < 256 * 1024, (m1, m2)


# --- Redis's latency view ----------------------------------------------------------------


def test_latency_histogram_and_commandstats_see_the_rl_commands(r):
    """After CONFIG RESETSTAT, LATENCY HISTOGRAM, INFO commandstats and INFO latencystats
    count exactly the RL.ALLOW and RL.THROTTLE calls made."""
    r.config_resetstat()
    for _ in range(25):
        r.execute_command("RL.ALLOW", "k", "LIMIT", 10, "WINDOW", HOUR)
    for _ in range(5):
        throttle(r, "k", "LIMIT", 10, "WINDOW", HOUR)
    hist = dict(zip(*[iter(raw_command(r, "LATENCY", "HISTOGRAM", "rl.allow", "rl.throttle"))] * 2))
    for name, n in [(b"rl.allow", 25), (b"rl.throttle", 5)]:
        h = dict(zip(hist[name][::2], hist[name][1::2]))
        assert h[b"calls"] == n
        buckets = h[b"histogram_usec"]
        assert buckets[-1] == n  # cumulative counts per power-of-two bucket
    stats = r.info("commandstats")
    assert stats["cmdstat_rl.allow"]["calls"] == 25 and stats["cmdstat_rl.throttle"]["calls"] == 5
    assert "latency_percentiles_usec_rl.allow" in r.info("latencystats")
