"""Clock on failover: the replica that takes over runs with its wall clock shifted by SKEW_MS
(behind, then ahead; the shift comes from clockshift.c, an LD_PRELOAD library).

GCRA state is an absolute instant, the TAT, written by the old master's clock. Over a
failover, a client's admissions between its first request (old clock) and its last (new
clock, off by s ms) obey burst + floor((elapsed + s) / T) with s < 0 behind and s > 0 ahead:
- behind: the TAT looks s ms further away; where that is more than one full bucket ahead,
  the decision reads it as one full bucket (the clock-step repair, issue 10 item 4: nobody
  waits longer than one full drain), so a client gets between burst + floor((elapsed + s) /
  T) and burst + floor(elapsed / T), never more than the bound without any skew;
- ahead: the bucket drains s ms early, so at most ceil(s / T) requests more.
The clients are exhausted with WAIT so that only the clock, not replication lag, is measured.
"""

import math
import time

import pytest

SKEW_MS = 3000
BURST, WINDOW_MS = 10, 10_000  # T = 1000 ms: a bucket takes 10 s to refill, longer than a failover
T_MS = WINDOW_MS // BURST
PER_SHARD = 20
MEASURE_S = 2.0  # hammering after the failover
ROUND_S = 0.02


@pytest.mark.parametrize("skew_ms", [-SKEW_MS, SKEW_MS], ids=["behind", "ahead"])
def test_promoted_replica_with_skewed_clock_respects_the_bound(make_cluster, clockshift, figures, skew_ms):
    shifted = 3  # node index: redis-cli --cluster create makes nodes 0..2 masters, 3..5 replicas
    cluster = make_cluster(node_env={shifted: {"LD_PRELOAD": str(clockshift),
                                               "RL_CLOCK_SHIFT_MS": str(skew_ms)}})
    skewed = cluster.nodes[shifted]
    view = cluster.view()
    me = next(v for v in view.values() if v["port"] == skewed.port)
    assert me["master"], "the shifted node is not a replica"
    victim = cluster.by_port(view[me["master"]]["port"])

    # The node read its clock between `sent` and `received` (local ms), however long the
    # round trip took on a busy machine; 100 ms of slack for the rest.
    sent = time.time() * 1000
    seconds, micros = skewed.client().time()
    received = time.time() * 1000
    node_ms = seconds * 1000 + micros // 1000
    assert node_ms - received - 100 <= skew_ms <= node_ms - sent + 100, \
        f"the shifted node's clock is off by {node_ms - sent:.0f}..{node_ms - received:.0f} ms"

    keys = cluster.spread_keys(PER_SHARD, "skew")[victim]
    c = victim.client()
    pipe = c.pipeline(transaction=False)
    for k in keys:
        pipe.execute_command("RL.CONFIG", k, BURST, WINDOW_MS, "BURST", BURST)
    pipe.execute()
    first_sent = time.monotonic()  # before any admission: elapsed is measured generously
    pipe = c.pipeline(transaction=False)
    for k in keys:
        for _ in range(BURST):
            pipe.execute_command("RL.ALLOW", k)
    assert pipe.execute() == [1] * (BURST * len(keys))
    assert c.execute_command("WAIT", 1, 5000) == 1  # the replica has every admission

    victim.kill()
    promoted = cluster.wait_failover(victim, [skewed])
    assert promoted is skewed

    rc = cluster.client()
    admitted = {k: BURST for k in keys}
    end = time.monotonic() + MEASURE_S
    while time.monotonic() < end:
        pipe = rc.pipeline()
        for k in keys:
            pipe.execute_command("RL.ALLOW", k)
        for k, ok in zip(keys, pipe.execute()):
            admitted[k] += ok
        time.sleep(ROUND_S)
    last_received = time.monotonic()
    # +1: the servers read whole milliseconds, so their elapsed can exceed ours by under 1 ms.
    elapsed_ms = (last_received - first_sent) * 1000 + 1

    unskewed_bound = BURST + math.floor(elapsed_ms / T_MS)
    skew_bound = BURST + math.floor(max(0, elapsed_ms + skew_ms) / T_MS)
    worst = max(admitted.values())
    side = "behind" if skew_ms < 0 else "ahead"
    figures("elapsed", round(elapsed_ms), "ms from the first request to the last reply")
    figures("admitted_max", worst, f"per client (clock {side} by {abs(skew_ms)} ms, T = {T_MS} ms, burst {BURST})")
    figures("bound_without_skew", unskewed_bound, "burst + floor(elapsed / T)")
    figures("bound_with_skew", skew_bound, "burst + floor((elapsed + skew) / T)")
    if skew_ms < 0:
        assert worst <= unskewed_bound, "a clock behind let a client exceed the bound"
    else:
        assert worst <= skew_bound
        assert worst <= unskewed_bound + math.ceil(skew_ms / T_MS)
    assert min(admitted.values()) >= BURST
