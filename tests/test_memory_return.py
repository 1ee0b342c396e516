"""Idle clients cost nothing: after 50,000 usage-only clients (inline and heap-allocated
layouts) and 5,000 configured with IDLE go quiet, Redis's active expiry removes every key
without any command touching them, `rl_live_buckets` returns to 0 (every value freed), and
used_memory comes back to within a few percent of what it was before the load.
"""

import time

from helpers import active_expiry_paused, lowest_memory, pipelined, used_memory, wait_until


def live(c):
    return c.info("rl")["rl_live_buckets"]


def load(c):
    """45,000 inline usage keys (T = 5 s), 5,000 heap usage keys (T = 5105011/1021 ms, a
    fraction with denominator 1021), 5,000 configured keys with IDLE 5 s, each used once: all
    alive when the load ends, all expired a few seconds later."""
    calls = [("RL.ALLOW", f"inline:{n}", "LIMIT", 1, "WINDOW", 5000) for n in range(45_000)]
    calls += [("RL.ALLOW", f"boxed:{n}", "LIMIT", 1021, "WINDOW", 5_105_011) for n in range(5_000)]
    for n in range(5_000):
        calls += [("RL.CONFIG", f"cfg:{n}", 10, 1000, "IDLE", 5000), ("RL.ALLOW", f"cfg:{n}")]
    assert all(x in (1, b"OK") for x in pipelined(c, calls, chunk=5_000))


def test_memory_returns_to_its_baseline_once_55000_clients_go_idle(servers, capsys):
    """DBSIZE reaches 0 and rl_live_buckets 0 by active expiry alone; used_memory returns to
    within 5% (and 64 KB) of its baseline."""
    s = servers()
    c = s.client()
    # Redis allocates a latency histogram for each command the first time it runs (tens of
    # KB, once): run each command once before the baseline.
    c.execute_command("RL.CONFIG", "warm-up", 10, 1000, "IDLE", 5000)
    c.execute_command("RL.ALLOW", "warm-up")
    c.delete("warm-up")
    assert c.dbsize() == 0 and live(c) == 0
    baseline = lowest_memory(c, 2)
    started = time.monotonic()
    # Active expiry waits for the whole load, however long the machine takes over it.
    with active_expiry_paused(c):
        load(c)
        peak = used_memory(c)
        peak_keys, peak_live = c.dbsize(), live(c)
    assert peak_keys == peak_live == 55_000 and peak > baseline
    # Only read counters from here on: nothing may touch the keys (no lazy expiry).
    wait_until(lambda: c.dbsize() == 0, 120, "active expiry to remove every key", interval=0.2)
    emptied = time.monotonic() - started
    wait_until(lambda: live(c) == 0, 30, "rl_live_buckets to reach 0", interval=0.2)
    limit = baseline + max(baseline * 0.05, 64 * 1024)
    deadline = time.monotonic() + 60
    while (after := lowest_memory(c, 1)) > limit:
        assert time.monotonic() < deadline, f"used_memory {after} stays above {limit:.0f}"
    with capsys.disabled():
        print(f"\nmemory return: baseline {baseline}, peak {peak} ({peak_keys} keys, "
              f"{peak_live} live buckets), after {after} ({(after - baseline) / baseline:+.1%}); "
              f"all keys expired {emptied:.1f}s after the load started; "
              f"expired_keys {c.info('stats')['expired_keys']}")
