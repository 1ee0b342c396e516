"""Hostile bytes: whatever a DUMP payload, an RDB file or an AOF file holds, the module
refuses what is not a state its commands could make, and the server never crashes.

- RESTORE of every single-bit flip and byte inversion at every offset of a real DUMP of each
  kind of value, with `sanitize-dump-payload` yes and no: with the original checksum all
  fail it; with a recomputed checksum each reaches the module's rdb_load and is either
  refused or, when the flip spelled another valid state, accepted as exactly that.
- Every truncation, unknown encoding versions, impossible values with a valid checksum.
- A hand-corrupted dump.rdb: the server refuses to load it with a log line naming the
  problem, and exits on its own (no signal, no crash report), except when Redis 7.0's own
  redis-check-rdb, run after the refusal, spins on a module value cut short (see boot).
- A hand-written AOF with impossible RL.APPLY lines: each line is refused. Redis 7.0 does not
  stop loading on a refused command by default (propagation-error-behavior ignore): it logs
  it as CRITICAL and goes on, so the server starts without the impossible state; with
  `propagation-error-behavior panic` it refuses to start. A truncated last line is tolerated
  with `aof-load-truncated yes` and refused with `no`.
"""

import re
import subprocess
import time

import pytest
import redis

from helpers import FORGED, HOUR, allow, aof_files, rewrite_aof, rl_info, says
from payload import MAX_LIMIT, MAX_TAT_MS, MAX_WINDOW_MS, build_dump, crc64, parse_dump
from resp import encode
from server import FLAVOUR, REDIS_SERVER, VERSION

NOW = int(time.time() * 1000) + 30 * 24 * HOUR  # a TAT a month from now
MASKS = [1 << b for b in range(8)] + [0xFF]


def make_kinds(c):
    """{kind: DUMP payload} of each layout a ratelimit value can have."""
    c.flushall()
    for _ in range(3):
        allow(c, "inline", "LIMIT", 10, "WINDOW", HOUR)
    # T = (1021 days + 11 ms) / 1021: a TAT fraction with denominator 1021 > 511, a heap value.
    allow(c, "boxed", "LIMIT", 1021, "WINDOW", 1021 * 24 * HOUR + 11)
    c.execute_command("RL.CONFIG", "configured", 7, HOUR, "BURST", 3, "IDLE", 2 * HOUR)
    allow(c, "configured", "COST", 2)
    c.execute_command("RL.CONFIG", "bounds", MAX_LIMIT, 10**4, "BURST", MAX_LIMIT, "IDLE", MAX_WINDOW_MS)
    allow(c, "bounds", "COST", 12345)
    c.execute_command("RL.CONFIG", "shadow", 7, HOUR, "BURST", 3, "SHADOW")
    allow(c, "shadow")
    kinds = {k: c.dump(k) for k in ("inline", "boxed", "configured", "bounds", "shadow")}
    assert parse_dump(kinds["boxed"])[1][2] == 1021 and parse_dump(kinds["shadow"])[1][-1] == 1
    return kinds


@pytest.fixture(scope="module")
def kinds(server):
    return make_kinds(server.client())


def with_crc(body_and_version):
    return body_and_version + crc64(body_and_version).to_bytes(8, "little")


def flips(payload, fix_crc):
    """Every (offset, mask, damaged payload); with `fix_crc`, the flip is in the body and
    version only, and the checksum is recomputed so that the payload reaches the module."""
    span = len(payload) - 8 if fix_crc else len(payload)
    for i in range(span):
        for m in MASKS:
            b = bytearray(payload)
            b[i] ^= m
            yield i, m, with_crc(bytes(b[:-8])) if fix_crc else bytes(b)


def restore_all(c, payloads):
    """RESTORE each payload into its own key, pipelined; returns the replies."""
    c.flushall()
    p = c.pipeline(transaction=False)
    for n, payload in enumerate(payloads):
        p.restore(f"x{n}", 0, payload)
    return p.execute(raise_on_error=False)


def assert_valid_state(c, port, key):
    """The key holds a state the commands could make: its DUMP decodes to fields within
    every bound, and RL.INFO, RL.PEEK, RL.ALLOW and DEBUG DIGEST-VALUE all answer."""
    assert c.type(key) == b"ratelimit", key
    _, fields, _ = parse_dump(c.dump(key))
    ms, frac, den, kind, *policy = fields
    assert ms <= MAX_TAT_MS and 1 <= den <= MAX_LIMIT and frac < den, fields
    assert (kind, len(policy)) in ((0, 0), (1, 5)), fields
    if kind == 1:
        limit, window, burst, idle, flags = policy
        assert 1 <= limit <= MAX_LIMIT and 1 <= window <= MAX_WINDOW_MS and 1 <= burst <= MAX_LIMIT
        assert burst * window <= 10**13 * limit and idle <= MAX_WINDOW_MS and flags in (0, 1)
    info = rl_info(port, key)
    assert info[b"source"] in (b"stored", b"none", b"default"), info
    peek = c.execute_command("RL.PEEK", key, "LIMIT", 10, "WINDOW", 1000)
    assert len(peek) == 5 and peek[0] in (0, 1)
    assert allow(c, key, "LIMIT", 10, "WINDOW", 1000) in (0, 1)
    assert c.execute_command("DEBUG", "DIGEST-VALUE", key)
    if kind == 1:
        assert c.execute_command("RL.THROTTLE", key)[0] in (0, 1)


@pytest.fixture(params=["yes", "no"])
def sanitize(request, r):
    """Each mode of sanitize-dump-payload, where the server has a second one."""
    if not says("sanitize_dump_payload_settable"):
        if request.param == "yes":
            pytest.skip("needs the setting sanitize-dump-payload, which Valkey 9 no longer has: "
                        "one mode only")
        yield request.param
        return
    r.config_set("sanitize-dump-payload", request.param)
    yield request.param
    r.config_set("sanitize-dump-payload", "no")


def test_every_flipped_byte_fails_the_checksum(r, kinds, sanitize, capsys):
    """A flip anywhere (body, RDB version, checksum) with the checksum left as it was is
    refused by RESTORE, and nothing is created."""
    counts = {}
    for kind, payload in kinds.items():
        damaged = [p for _, _, p in flips(payload, fix_crc=False)]
        replies = restore_all(r, damaged)
        bad = [(n, x) for n, x in enumerate(replies) if not isinstance(x, redis.ResponseError)]
        assert not bad, (kind, bad[:3])
        assert all("checksum" in str(x) for x in replies), kind
        assert r.dbsize() == 0 and r.ping()
        counts[kind] = len(replies)
    with capsys.disabled():
        print(f"\nsanitize-dump-payload {sanitize}: flipped payloads rejected by checksum: {counts}")


def test_every_flip_with_a_valid_checksum_is_refused_or_is_a_valid_state(r, server, kinds, sanitize,
                                                                         capsys):
    """With the checksum recomputed, each flip reaches rdb_load: it is refused ("Bad data
    format"/"checksum" for the RDB version bytes), or it spelled another valid state (say a
    flipped bit of the TAT), which then behaves as a ratelimit key must."""
    summary = {}
    for kind, payload in kinds.items():
        damaged = list(flips(payload, fix_crc=True))
        replies = restore_all(r, [p for _, _, p in damaged])
        rejected = sum(isinstance(x, redis.ResponseError) for x in replies)
        for n, ((offset, mask, p), reply) in enumerate(zip(damaged, replies)):
            if isinstance(reply, redis.ResponseError):
                assert "Bad data format" in str(reply) or "checksum" in str(reply), reply
                assert not r.exists(f"x{n}")
            else:
                assert_valid_state(r, server.port, f"x{n}")
        assert r.ping()
        summary[kind] = f"{rejected} rejected / {len(replies) - rejected} valid"
    with capsys.disabled():
        print(f"\nsanitize-dump-payload {sanitize}, flips with a valid checksum: {summary}")


def test_every_truncation_is_refused(r, kinds, sanitize, capsys):
    """A payload cut at any length is refused, whether its checksum is the original one
    (cut anywhere) or recomputed over the cut body (the module value lacks its fields or
    its end marker)."""
    total = 0
    for kind, payload in kinds.items():
        body, version = payload[:-10], payload[-10:-8]
        cut = [payload[:n] for n in range(len(payload))]
        cut += [with_crc(body[:n] + version) for n in range(len(body))]
        replies = restore_all(r, cut)
        assert all(isinstance(x, redis.ResponseError) for x in replies), kind
        assert r.dbsize() == 0 and r.ping()
        total += len(replies)
    with capsys.disabled():
        print(f"\nsanitize-dump-payload {sanitize}: truncated payloads rejected: {total}")


EXTRA_FORGED = {
    "boxed-frac-equals-den": [NOW, 1021, 1021, 0],
    "frac-above-den": [NOW, 5, 3, 0],
    "all-zero": [0, 0, 0, 0],
    "den-u64-max": [NOW, 0, 2**64 - 1, 0],
    "kind-u64-max": [NOW, 0, 10, 2**64 - 1],
    "flag-bit-2": [NOW, 0, 10, 1, 10, HOUR, 10, 0, 4],
    "flag-bit-63": [NOW, 0, 10, 1, 10, HOUR, 10, 0, 1 << 63],
    "idle-u64-max": [NOW, 0, 10, 1, 10, HOUR, 10, 2**64 - 1, 0],
    "limit-u64-max": [NOW, 0, 10, 1, 2**64 - 1, HOUR, 10, 0, 0],
    "no-fields": [],
}


@pytest.mark.parametrize("case", sorted(FORGED) + sorted(EXTRA_FORGED))
def test_impossible_values_with_a_valid_checksum_are_refused(r, kinds, case):
    """Forged payloads (test_persistence's cases and more) are refused by rdb_load."""
    module_id, _, version = parse_dump(kinds["configured"])
    fields = {**FORGED, **EXTRA_FORGED}[case]
    with pytest.raises(redis.ResponseError, match="Bad data format"):
        r.restore("forged", 0, build_dump(module_id, fields, version))
    assert r.exists("forged") == 0 and r.ping()


@pytest.mark.parametrize("encver", [0, 4, 1023])
def test_unknown_encoding_versions_are_refused(r, kinds, encver):
    """The module's encoding version (the low 10 bits of the module id) must be 1 to 3 (3
    since issue 17; payloads of versions 1 and 2 still load: test_policies.py,
    test_fixtures.py)."""
    for payload in kinds.values():
        module_id, fields, version = parse_dump(payload)
        with pytest.raises(redis.ResponseError, match="Bad data format"):
            r.restore("forged", 0, build_dump(module_id & ~1023 | encver, fields, version))
    assert r.dbsize() == 0


# --- files -----------------------------------------------------------------------------------


LOAD_ERRORS = ("Internal error in RDB reading", "Short read", "Bad file format", "Unexpected end")


def boot(s, timeout=60, spin_grace=5):
    """Starts `s` again on its directory and config. Returns (outcome, returncode, log):
    "loaded" once it serves (s.proc is then set, so the fixture stops it); "exited"; or
    "spun": it logged a load error, then never exited. That is Redis 7.0's own bug: after a
    failed load it runs redis-check-rdb in-process, whose module-value loop never ends on a
    value cut short (redis/redis#15034); the process is then killed here, by its PID."""
    log_start = len(s.log)
    proc = subprocess.Popen([REDIS_SERVER, str(s.dir / "redis.conf")], cwd=s.dir,
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    deadline, failed_at = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return "exited", proc.returncode, s.log[log_start:]
        log = s.log[log_start:]
        if failed_at is None and any(e in log for e in LOAD_ERRORS):
            failed_at = time.monotonic()
        if failed_at is not None and time.monotonic() - failed_at > spin_grace:
            proc.kill()
            proc.wait()
            return "spun", None, log
        c = s.client(socket_timeout=5)
        try:
            if failed_at is None and c.info("persistence")["loading"] == 0:
                s.proc = proc
                return "loaded", None, s.log[log_start:]
        except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
            pass
        finally:
            c.close()
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise AssertionError(f"server neither served nor exited; log:\n{s.log[log_start:][-3000:]}")


def assert_no_crash(log, returncode):
    assert returncode is None or returncode >= 0, f"killed by signal {-returncode}"
    # "REDIS BUG REPORT" / "VALKEY BUG REPORT"
    assert "crashed by signal" not in log and "BUG REPORT" not in log, log[-3000:]


def saved_rdb(servers):
    s = servers(appendonly="no")
    c = s.client()
    kinds = make_kinds(c)
    c.save()
    s.stop()
    return s, kinds


def corrupt_value(rdb, payload, fields):
    """The RDB with `payload`'s value (its DUMP body minus the type byte) rewritten with
    `fields`, and the file checksum recomputed, so that only the module sees the damage."""
    module_id, _, version = parse_dump(payload)
    old, new = payload[1:-10], build_dump(module_id, fields, version)[1:-10]
    at = rdb.index(old)
    body = rdb[:at] + new + rdb[at + len(old):-8]
    return body + crc64(body).to_bytes(8, "little")


def flip_byte(data, at, mask):
    return data[:at] + bytes([data[at] ^ mask]) + data[at + 1:]


def value_at(rdb, payload):
    return rdb.index(payload[1:-10])


RDB_DAMAGE = {
    # Impossible states with the file's checksum recomputed: only the module can notice.
    "den-zero": lambda rdb, k: corrupt_value(rdb, k["boxed"], [NOW, 0, 0, 0]),
    "frac-not-below-den": lambda rdb, k: corrupt_value(rdb, k["boxed"], [NOW, 1021, 1021, 0]),
    "unknown-flag": lambda rdb, k: corrupt_value(
        rdb, k["configured"], parse_dump(k["configured"])[1][:-1] + [2]),
    "limit-above-max": lambda rdb, k: corrupt_value(
        rdb, k["configured"], [NOW, 0, 1, 1, MAX_LIMIT + 1, HOUR, 3, 0, 0]),
    # Plain damage, checksum left wrong.
    "byte-flipped-in-module-value": lambda rdb, k: flip_byte(rdb, value_at(rdb, k["boxed"]) + 12, 0x40),
    "byte-flipped-mid-file": lambda rdb, k: flip_byte(rdb, len(rdb) // 2, 0xFF),
    "truncated-in-module-value": lambda rdb, k: rdb[:value_at(rdb, k["configured"]) + 20],
    # Cut right after the module id: Redis refuses it, then its redis-check-rdb spins.
    "truncated-between-module-fields": lambda rdb, k: rdb[:value_at(rdb, k["boxed"]) + 9],
    "truncated-to-half": lambda rdb, k: rdb[:len(rdb) // 2],
}


@pytest.mark.parametrize("damage", sorted(RDB_DAMAGE))
def test_a_corrupted_rdb_file_is_refused_without_a_crash(servers, damage, capsys):
    """dump.rdb edited by hand: the server refuses to load it, with a log line naming the
    module or the damage, or loads only valid states; never a crash. After refusing, Redis
    7.0 runs redis-check-rdb in-process, which knows nothing of module values: it may say
    "RDB looks OK" and exit 0, or, for a file cut inside a module value, spin forever
    (a Redis bug, see boot); the refusal is the line before either."""
    s, kinds = saved_rdb(servers)
    rdb = (s.dir / "dump.rdb").read_bytes()
    (s.dir / "dump.rdb").write_bytes(RDB_DAMAGE[damage](rdb, kinds))
    outcome, returncode, log = boot(s)
    with capsys.disabled():
        print(f"\ndump.rdb {damage}: {outcome} (exit status {returncode}): "
              f"{(log.strip().splitlines() or [''])[-1].split('# ')[-1][:110]}")
    assert_no_crash(log, returncode)
    if outcome in ("exited", "spun"):
        assert "Internal error in RDB reading" in log or "Short read" in log or "checksum" in log, log
        if damage in ("den-zero", "frac-not-below-den", "unknown-flag", "limit-above-max"):
            assert re.search(r"module data for the module (type )?'rl'", log), log[-3000:]
    else:
        c = s.client()
        for key in c.scan_iter():
            assert_valid_state(c, s.port, key)


def aof_server(servers, **overrides):
    s = servers(appendonly="yes", appendfsync="always", aof_use_rdb_preamble="no", **overrides)
    c = s.client()
    c.execute_command("RL.CONFIG", "good", 10, HOUR)
    allow(c, "good")
    allow(c, "usage", "LIMIT", 10, "WINDOW", HOUR)
    kept = {k: c.execute_command("DEBUG", "DIGEST-VALUE", k)[0] for k in ("good", "usage")}
    s.stop()
    # The manifest's fields by name: Redis 8 adds some after "type i" that 7.0 lacks.
    incr = [name for name, kind, _ in aof_files(s) if kind == "i"]
    assert len(incr) == 1, aof_files(s)
    return s, s.dir / "appendonlydir" / incr[0], kept


EXP = NOW + HOUR
# RL.APPLY key state [POLICY ...], state = <tat_ms>[+<frac>/<den>][@<expire_at_ms>].
IMPOSSIBLE_APPLY = {
    "frac-not-below-den": [f"{NOW}+7/7@{EXP}"],
    "zero-fraction-written": [f"{NOW}+0/5@{EXP}"],
    "den-zero": [f"{NOW}+1/0@{EXP}"],
    "den-above-max": [f"{NOW}+1/{MAX_LIMIT + 1}@{EXP}"],
    "tat-beyond-2^60": [f"{MAX_TAT_MS + 1}@{EXP}"],
    "negative-tat": [f"-5@{EXP}"],
    "negative-expiry": [f"{NOW}@-1"],
    "zero-expiry": [f"{NOW}@0"],
    # Any expiry Redis can hold (up to 2^63 - 1 ms) is valid: a user may set it on a key.
    "expiry-beyond-bound": [f"{NOW}@{2**63}"],
    "not-a-number": [f"{NOW}+x/1@{EXP}"],
    "old-four-number-form": [NOW, 0, 1, EXP],
    "policy-burst-zero": [f"{NOW}@{EXP}", "POLICY", 10, HOUR, 0, 0, 0],
    "policy-flag-bit-1": [f"{NOW}@{EXP}", "POLICY", 10, HOUR, 10, 0, 2],
    "policy-flag-bit-2": [f"{NOW}@{EXP}", "POLICY", 10, HOUR, 10, 0, 4],
    "policy-negative-limit": [f"{NOW}@{EXP}", "POLICY", -10, HOUR, 10, 0, 0],
    "policy-drain-too-long": [f"{NOW}@{EXP}", "POLICY", 1, MAX_WINDOW_MS, 1000, 0, 0],
    "policy-cut-short": [f"{NOW}@{EXP}", "POLICY", 10, HOUR, 10],
    "policy-keyword-wrong": [f"{NOW}@{EXP}", "POLICE", 10, HOUR, 10, 0, 0],
    "too-many-args": [f"{NOW}@{EXP}", 5],
}
# A line of the wrong arity (no state) is refused by the server before the module sees it;
# what a server does with it in an AOF is its own choice (WORDING["aof_wrong_arity"]).
WRONG_ARITY = encode("rl.apply", "bad:too-few-args")


def impossible_lines():
    lines = b"".join(encode("rl.apply", f"bad:{case}", *args) for case, args in IMPOSSIBLE_APPLY.items())
    # The same impossible states aimed at keys that exist must leave them as they are.
    return lines + encode("rl.apply", "good", f"{NOW}+7/7") + encode("rl.apply", "usage", f"{NOW}+1/0@{EXP}")


def test_an_aof_with_impossible_rl_apply_lines_loads_without_them(servers):
    """Each impossible line is refused (logged as CRITICAL with the module's error) and
    the server, by default (propagation-error-behavior ignore), goes on loading: it starts,
    no impossible state exists, the keys they aimed at keep their digests, and a valid line
    after them is applied."""
    s, incr, kept = aof_server(servers)
    with open(incr, "ab") as f:
        f.write(impossible_lines() + encode("rl.apply", "valid", f"{NOW}@{EXP}"))
    outcome, returncode, log = boot(s)
    assert_no_crash(log, returncode)
    assert outcome == "loaded", log[-3000:]
    refused = [line for line in log.splitlines() if "sending an error to its AOF-loading-client" in line]
    assert len(refused) == len(IMPOSSIBLE_APPLY) + 2, refused
    assert all("'rl.apply'" in line and "RL.APPLY got an impossible" in line for line in refused), refused
    c = s.client()
    assert sorted(c.scan_iter()) == [b"good", b"usage", b"valid"]
    assert {k: c.execute_command("DEBUG", "DIGEST-VALUE", k)[0] for k in kept} == kept
    assert c.execute_command("PEXPIRETIME", "valid") == EXP


@pytest.mark.parametrize("line", [WRONG_ARITY, encode("set", "bad:core-command")], ids=["rl.apply", "set"])
def test_an_aof_line_of_the_wrong_arity(servers, line):
    """An RL.APPLY line with no state. The AOF loader of Redis 7.0-8.2 and Valkey 8.0 checks no arity, so the
    handler itself gets the short line and must refuse it: logged as CRITICAL, loading goes
    on (the keys before and after it are there), nothing crashes. Valkey 8.1+ checks every line's
    arity, as for a core command of the wrong arity (SET with no value): it refuses to load
    the file, names the command and exits (no crash)."""
    if line != WRONG_ARITY and says("aof_wrong_arity") == "skipped":
        pytest.skip(f"{FLAVOUR} {'.'.join(map(str, VERSION))} aborts (an assertion, signal 6) on an AOF "
                    "SET with no value: its AOF loader checks no arity (Redis 7.0-8.2, Valkey 8.0)")
    s, incr, kept = aof_server(servers)
    name = line.split(b"\r\n")[2].decode()
    with open(incr, "ab") as f:
        f.write(line + encode("rl.apply", "valid", f"{NOW}@{EXP}"))
    outcome, returncode, log = boot(s)
    assert_no_crash(log, returncode)
    if says("aof_wrong_arity") == "skipped":
        assert outcome == "loaded", log[-3000:]
        refused = [x for x in log.splitlines() if "sending an error to its AOF-loading-client" in x]
        # The module's own refusal: the arity error Redis would have given.
        assert len(refused) == 1 and f"wrong number of arguments for '{name}' command" in refused[0], refused
        c = s.client()
        assert sorted(c.scan_iter()) == [b"good", b"usage", b"valid"]
        assert {k: c.execute_command("DEBUG", "DIGEST-VALUE", k)[0] for k in kept} == kept
    else:
        assert outcome == "exited" and returncode != 0, log[-3000:]
        assert f"error: wrong number of arguments for '{name}' command" in log, log[-3000:]


def test_with_propagation_error_behavior_panic_such_an_aof_is_refused(servers):
    """An operator who wants a refused AOF line to stop the server sets
    propagation-error-behavior panic: Redis then refuses to start at the first impossible
    RL.APPLY (a deliberate Redis panic naming rl.apply, not a module crash)."""
    s, incr, _ = aof_server(servers, propagation_error_behavior="panic")
    with open(incr, "ab") as f:
        f.write(encode("rl.apply", "bad", f"{NOW}+1/0@{EXP}"))
    outcome, returncode, log = boot(s)
    assert outcome == "exited"
    assert "panicked sending an error to its AOF-loading-client after processing the command " \
           "'rl.apply'" in log, log[-3000:]
    assert "crashed by signal" not in log


@pytest.mark.parametrize("tolerated", ["yes", "no"])
def test_a_truncated_last_rl_apply_line(servers, tolerated):
    """A last RL.APPLY cut short (a crash mid-write) is dropped with a warning under
    aof-load-truncated yes, keeping everything before it; under no, Redis refuses to start
    and says how to fix the file."""
    s, incr, kept = aof_server(servers, aof_load_truncated=tolerated)
    with open(incr, "ab") as f:
        f.write(encode("rl.apply", "valid", f"{NOW}@{EXP}") + encode("rl.apply", "cut", f"{NOW}@{EXP}")[:-9])
    outcome, returncode, log = boot(s)
    assert_no_crash(log, returncode)
    if tolerated == "yes":
        assert outcome == "loaded" and "short read while loading the AOF" in log
        assert "loaded anyway because aof-load-truncated is enabled" in log
        c = s.client()
        assert sorted(c.scan_iter()) == [b"good", b"usage", b"valid"]
        assert {k: c.execute_command("DEBUG", "DIGEST-VALUE", k)[0] for k in kept} == kept
    else:
        assert outcome == "exited" and says("check_aof_fix") in log, log[-2000:]


def test_an_aof_rewrite_of_a_shadow_policy_loads_back(servers):
    """Found by this file on an earlier build (fixed at HEAD): an AOF rewrite writes a SHADOW
    policy as RL.APPLY ... POLICY ... flags 1, which RL.APPLY then refused, so the key was
    silently dropped on restart (logged as a CRITICAL refused rl.apply)."""
    s = servers(appendonly="yes", appendfsync="always", aof_use_rdb_preamble="no")
    c = s.client()
    kinds = make_kinds(c)
    c.flushall()
    c.restore("shadow", 0, kinds["shadow"])
    before = c.execute_command("DEBUG", "DIGEST-VALUE", "shadow")
    rewrite_aof(c)
    s.restart()
    assert s.client().execute_command("DEBUG", "DIGEST-VALUE", "shadow") == before
    assert "sending an error to its AOF-loading-client" not in s.log
