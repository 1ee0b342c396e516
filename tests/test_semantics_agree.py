"""The README and the behaviour agree (issue 10, item 5): each case below is a sentence of
the README, decided and pinned down.

- Scaling rounds the burst down when burst x percent / 100 is not whole, so going back to a
  larger scale can leave room (README, "Dynamic limits").
- RL.RESET always deletes a usage-only key and always re-arms an IDLE key's expiry
  (README, "RL.RESET").
- The `rl` section is in `INFO rl`, `INFO modules` and `INFO everything`, not in plain
  `INFO` nor `INFO all` (README, "Monitoring").
- `rl_errors` counts errors the module replies, not those Redis raises before the module
  runs: wrong arity, NOPERM, OOM (README, "Monitoring").
- RL.PEEK writes nothing of its own; like any read, it lets Redis drop a key whose TTL has
  already passed (lazy expiry) (README, "RL.PEEK").
"""

import pytest
import redis

from helpers import (HOUR, active_expiry_paused, allow, config, pexpiretime, rl_stats,
                     server_ms, wait_until)


def test_scaling_rounds_the_burst_down_and_a_larger_scale_can_leave_room(r):
    """3 per 3 hours (burst 3, T = 1 h). At 50% the burst is floor(1.5) = 1 and T = 2 h:
    one request passes and fills the bucket (2 h of backlog). Back at 100% the bucket holds
    3 h, so one more passes: a change of scale keeps usage as time, and the rounded burst
    is the part it cannot keep."""
    config(r, "k", 3, 3 * HOUR)
    r.config_set("rl.scale-percent", 50)
    assert [allow(r, "k"), allow(r, "k")] == [1, 0]
    r.config_set("rl.scale-percent", 100)
    assert [allow(r, "k"), allow(r, "k")] == [1, 0]


def test_scaling_by_a_whole_fraction_of_the_burst_keeps_a_full_bucket_full(r):
    """Burst 10 at 50% is exactly 5 with T doubled: a full bucket drains in the same time at
    both scales, so a client out of room at 50% is out of room at 100%."""
    config(r, "k", 10, 10 * HOUR)
    r.config_set("rl.scale-percent", 50)
    assert [allow(r, "k") for _ in range(6)] == [1] * 5 + [0]
    r.config_set("rl.scale-percent", 100)
    assert allow(r, "k") == 0


@pytest.mark.parametrize("ttl", ["persisted", "longer-than-bucket", "bucket-already-empty"])
def test_reset_always_deletes_a_usage_only_key(r, ttl):
    """Whatever its TTL, a usage-only key is gone after RL.RESET, which replies the backlog
    it forgot (0 when none)."""
    allow(r, "u", "LIMIT", 10, "WINDOW", HOUR)
    if ttl == "persisted":
        assert r.persist("u")
    elif ttl == "longer-than-bucket":
        assert r.pexpire("u", 10 * HOUR)
    else:
        with active_expiry_paused(r):
            # A bucket that empties within ms, persisted so that it outlives its TAT.
            allow(r, "e", "LIMIT", 1000, "WINDOW", 1)
            r.persist("e")
            now = server_ms(r)
            wait_until(lambda: server_ms(r) > now + 2, what="the bucket to empty")
            assert r.execute_command("RL.RESET", "e") == 0
            assert r.exists("e") == 0
        return
    assert r.execute_command("RL.RESET", "u") > 0
    assert r.exists("u") == 0


def test_reset_re_arms_an_idle_keys_expiry_even_without_backlog(r):
    config(r, "i", 10, 1000, "IDLE", HOUR)
    r.pexpire("i", 60_000)  # shorter than IDLE, as if time had passed
    now = server_ms(r)
    assert r.execute_command("RL.RESET", "i") == 0
    assert now + HOUR <= pexpiretime(r, "i") <= server_ms(r) + HOUR


def test_the_rl_section_is_in_info_rl_modules_and_everything_only(r):
    for section in ("rl", "modules", "everything"):
        assert "rl_checks_allowed" in r.info(section), section
    for section in ("default", "all"):
        assert "rl_checks_allowed" not in r.info(section), section
    assert "rl_checks_allowed" not in r.info()


def test_rl_errors_counts_only_errors_the_module_replies(server, r):
    before = rl_stats(r)["rl_errors"]
    with pytest.raises(redis.ResponseError, match="wrong number of arguments"):
        r.execute_command("RL.ALLOW")  # Redis's own arity check
    r.execute_command("ACL", "SETUSER", "nokeys", "reset", "on", "nopass", "+@all")
    u = server.client(username="nokeys", password="x")
    with pytest.raises(redis.exceptions.NoPermissionError):
        u.execute_command("RL.ALLOW", "k", "LIMIT", 1, "WINDOW", 1000)
    assert rl_stats(r)["rl_errors"] == before
    with pytest.raises(redis.ResponseError, match="limit must be"):
        r.execute_command("RL.ALLOW", "k", "LIMIT", 0, "WINDOW", 1000)
    assert rl_stats(r)["rl_errors"] == before + 1


def test_peek_on_a_key_whose_ttl_passed_lets_redis_expire_it(r):
    """A usage-only key past its TTL (active expiry paused, so only a read finds it): RL.PEEK
    answers as for an empty bucket and Redis deletes the key on that read, as it would on
    any read; RL.PEEK itself stores nothing."""
    with active_expiry_paused(r):
        allow(r, "gone", "LIMIT", 1000, "WINDOW", 1)
        now = server_ms(r)
        wait_until(lambda: server_ms(r) > now + 2, what="the key's TTL to pass")
        expired = r.info("stats")["expired_keys"]
        reply = r.execute_command("RL.PEEK", "gone", "LIMIT", 1000, "WINDOW", 1)
        assert reply[0] == 1 and reply[2] == 999
        assert r.info("stats")["expired_keys"] == expired + 1
        assert r.exists("gone") == 0
