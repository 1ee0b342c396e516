"""A wall clock that steps forward and back again locks no client out (issue 10, item 4).

The server runs under the clock shim (cluster/clockshift.c) in its live mode: the shift in
ms is re-read from a file at every clock read, so the test steps the server's clock while it
runs. A client that used its bucket while the clock was a day ahead must, once the clock is
back, wait no longer than one full drain (burst x T), not a day.

A step is over only once the server's own clock (TIME) shows it: Valkey 9.1 reads the wall
clock less often than once per command, and showed a step up to 21 commands (16 ms) late
on a busy machine; a test that went on at once saw the old clock in its next commands.
"""

import time

import pytest

from helpers import DAY, allow, at_once, config, server_ms, throttle, wait_until

# ms: how far the server's clock may be from this process's clock plus the shift once a step
# shows (both read the machine's clock; far below the day a step moves it).
SEEN_WITHIN_MS = 60_000


@pytest.fixture
def stepped(servers, clockshift, tmp_path):
    """A server whose clock the test steps: `set_shift(ms)` returns once the server's TIME
    shows the shift."""
    shift = tmp_path / "shift"
    shift.write_text("0")
    server = start_with_env(servers, {"LD_PRELOAD": str(clockshift),
                                      "RL_CLOCK_SHIFT_FILE": str(shift)})
    c = server.client()

    def set_shift(ms):
        tmp = shift.with_suffix(".tmp")
        tmp.write_text(str(ms))
        tmp.replace(shift)  # atomic: the shim never reads a half-written file
        wait_until(lambda: abs(server_ms(c) - time.time() * 1000 - ms) < SEEN_WITHIN_MS,
                   what=f"the server's clock to show a shift of {ms} ms")

    return server, set_shift


def exhaust(c, key, *opts):
    """Eleven RL.ALLOW at one instant (one MULTI): no refill can land between them."""
    return at_once(c, *[("RL.ALLOW", key, *opts)] * 11)


def start_with_env(servers, env):
    """servers() with an environment for the process: the fixture's servers start at once,
    so start one stopped first, set its env, and start it again."""
    s = servers("stepped")
    s.stop()
    s.env = env
    return s.start()


@pytest.mark.parametrize("kind", ["configured", "inline"])
def test_a_day_forward_and_back_costs_at_most_one_full_drain(stepped, kind):
    """10 per 10 s, burst 10 (T = 1 s, a full drain 10 s; slow enough that no refill lands
    between the calls on a busy machine): used up a day ahead, denied once the clock is
    back with retry_after_ms within one drain (one T, in fact), and that retry passes."""
    server, set_shift = stepped
    c = server.client()
    opts = () if kind == "configured" else ("LIMIT", 10, "WINDOW", 10_000)
    if kind == "configured":
        config(c, "k", 10, 10_000)
    set_shift(DAY)
    assert exhaust(c, "k", *opts) == [1] * 10 + [0]
    set_shift(0)
    v = throttle(c, "k", *opts)
    assert v["allowed"] == 0 and 1 <= v["retry_after_ms"] <= 1000, v
    assert v["reset_after_ms"] <= 10_000, v
    # The denial repaired the TAT: from now on the client drains from the present.
    retry_at = server_ms(c) + v["retry_after_ms"]
    wait_until(lambda: server_ms(c) >= retry_at + 1, what="the retry time")
    assert allow(c, "k", *opts) == 1
    # The key's expiry came back to the present as well (no day-long leftover for usage keys).
    if kind == "inline":
        assert c.pttl("k") <= 10_000


def test_a_step_forward_only_gives_what_the_elapsed_time_gives(stepped):
    """Forward alone: the bucket has drained by the time that appears to have passed."""
    server, set_shift = stepped
    c = server.client()
    config(c, "f", 10, 10_000)
    assert exhaust(c, "f") == [1] * 10 + [0]
    set_shift(DAY)
    assert throttle(c, "f", command="RL.PEEK")["remaining"] == 9  # as after one request
    assert exhaust(c, "f") == [1] * 10 + [0]
