"""A real network partition (issue 10, item 6): a master and some clients are cut off from the
majority of a 3+3 cluster whose nodes each have their own namespace and address (netns.py).

Clients on both sides keep asking for the same keys: the minority side's clients go to the
cut-off master M, the majority side's to M's replica R (which answers MOVED until it is
promoted). Every key has a budget of BURST requests that does not refill during the test, so
every admission beyond BURST per key, counted over the whole run and a final drain after the
partition heals, is an over-admission: an admission that M granted and that R, promoted
while M was cut off, never learnt of. Four configurations:

- defaults (cluster.conf as shipped): M grants until it notices it is in the minority, 1 to
  1.5 cluster-node-timeout after the cut; R takes over after about the same plus an election;
  healing turns M into R's replica and throws away what M granted meanwhile.
- `min-replicas-to-write 1` + `min-replicas-max-lag 1`: M refuses writes (NOREPLICAS) once
  its replica has not acknowledged for over a second; the promoted R, whose only replica M is
  cut off, refuses too until healing.
- the same with two replicas per master: R keeps the other replica and serves at once.
- the application's WAIT: each round of RL.ALLOW is followed by `WAIT 1 <ms>` and counts as
  granted only when the replica acknowledged it; nothing M grants alone is let through.

The figures (docs/cluster.md, "Network partitions") are printed with -s and appended to
$RL_FIGURES when set.
"""

import os
import threading
import time

import pytest
import redis
from redis.crc import key_slot
from redis.exceptions import MovedError

from ns_cluster import NsCluster, client

# cluster.conf's, so the figures are those of the shipped setting; RL_PARTITION_NODE_TIMEOUT_MS
# measures another (docs/cluster.md shows how the minority's window scales with it).
NODE_TIMEOUT_MS = int(os.environ.get("RL_PARTITION_NODE_TIMEOUT_MS", 5000))
KEYS = 10
BURST = 500  # per key; no key runs out during the partition (at most ~20 rounds/s)
WINDOW_MS = 86_400_000  # limit BURST per day: T = 172.8 s, so nothing refills during a test
ROUND_S = 0.05  # each client side sends one RL.ALLOW per key every 50 ms
WAIT_MS = 200  # the application's WAIT timeout
SETTLE_S = 1.0  # the partition lasts this long after both sides have settled
# How long before the cut an admission's effect may still have been on its way to R: M
# writes the replication stream in the same event-loop pass as the reply, but a loaded 2-core
# machine can deschedule it in between (as tests/cluster/test_cluster_failover.py's bound).
LAG_BOUND_S = 0.25

# name -> (replicas per master, settings over cluster.conf, whether the application WAITs)
CONFIGS = {
    "defaults": (1, {}, False),
    "min-replicas": (1, {"min-replicas-to-write": 1, "min-replicas-max-lag": 1}, False),
    "min-replicas-2-replicas": (2, {"min-replicas-to-write": 1, "min-replicas-max-lag": 1}, False),
    "WAIT": (1, {}, True),
}


class Load:
    """Rounds of one RL.ALLOW per key to the node at `addr`, every ROUND_S, until stopped;
    with `use_wait`, a round counts as granted only if `WAIT 1 WAIT_MS` after it returns 1.
    A MOVED to a node other than `stay_off` is followed, as a cluster client would.
    `rounds`: (sent, replied, allowed, granted, error) per round, monotonic seconds."""

    def __init__(self, host, addr, keys, use_wait, stay_off=None):
        self.host, self.addr, self.keys, self.use_wait = host, addr, keys, use_wait
        self.stay_off = stay_off
        self.rounds = []
        self.stopped = threading.Event()
        self.thread = None
        self.crashed = None

    def start(self):
        self.thread = self.host.thread(self._run)
        return self

    def stop(self):
        self.stopped.set()
        self.thread.join(30)
        assert not self.thread.is_alive(), f"the load on {self.addr} did not stop"
        assert self.crashed is None, f"the load on {self.addr} crashed: {self.crashed!r}"

    def _run(self):
        try:
            self._loop()
        except Exception as e:  # noqa: BLE001 (reported by stop())
            self.crashed = e

    def _loop(self):
        c = client(self.addr, socket_timeout=5)
        while not self.stopped.is_set():
            sent = time.monotonic()
            pipe = c.pipeline(transaction=False)
            for k in self.keys:
                pipe.execute_command("RL.ALLOW", k)
            if self.use_wait:
                pipe.execute_command("WAIT", 1, WAIT_MS)
            try:
                replies = pipe.execute(raise_on_error=False)
            except redis.RedisError as e:
                self.rounds.append((sent, time.monotonic(), 0, 0, type(e).__name__))
                c = client(self.addr, socket_timeout=5)
            else:
                allowed = sum(1 for r in replies[:len(self.keys)] if r == 1)
                acked = not self.use_wait or (isinstance(replies[-1], int) and replies[-1] >= 1)
                error = next((r for r in replies if isinstance(r, Exception)), None)
                self.rounds.append((sent, time.monotonic(), allowed, allowed if acked else 0,
                                    error and describe(error)))
                if isinstance(error, MovedError) and error.host not in (self.addr, self.stay_off):
                    self.addr = error.host
                    c = client(self.addr, socket_timeout=5)
            time.sleep(max(0.0, sent + ROUND_S - time.monotonic()))

    def granted(self):
        return sum(r[3] for r in self.rounds)


def describe(error):
    """NOREPLICAS, ClusterDownError, MovedError...: what a refusal was."""
    return str(error).split()[0] if type(error) is redis.ResponseError else type(error).__name__


def keys_on(slots, n):
    """n keys whose slots are in `slots` (ranges)."""
    out, i = [], 0
    while len(out) < n:
        k = f"part:{i}"
        if any(a <= key_slot(k.encode()) <= b for a, b in slots):
            out.append(k)
        i += 1
    return out


def drain(addr, keys, use_wait):
    """Asks for BURST more per key on `addr`; returns how many were granted."""
    c = client(addr, socket_timeout=30)
    pipe = c.pipeline(transaction=False)
    for k in keys:
        for _ in range(BURST):
            pipe.execute_command("RL.ALLOW", k)
    if use_wait:
        pipe.execute_command("WAIT", 1, 5000)
    replies = pipe.execute()
    if use_wait:
        assert replies.pop() >= 1, "WAIT after healing: the replica did not acknowledge"
    return sum(replies)


@pytest.mark.parametrize("config", list(CONFIGS))
def test_partition_over_admission(net, tmp_path, figures, config):
    replicas, overrides, use_wait = CONFIGS[config]
    cmin = net.add_host("cmin")  # clients on the minority side, with M
    cmaj = net.add_host("cmaj")  # clients on the majority side; also runs the checks
    cluster = NsCluster(net, tmp_path, cmaj, NODE_TIMEOUT_MS, replicas=replicas, **overrides)
    minority = majority = None
    try:
        cluster.start()
        m, rs, slots = cluster.shard(0)
        keys = keys_on(slots, KEYS)

        def configure():
            c = client(m.addr)
            for k in keys:
                assert c.execute_command("RL.CONFIG", k, BURST, WINDOW_MS, "BURST", BURST) == b"OK"
            assert c.execute_command("WAIT", 1, 5000) >= 1

        cmaj.run(configure)
        minority = Load(cmin, m.addr, keys, use_wait).start()
        majority = Load(cmaj, rs[0].addr, keys, use_wait, stay_off=m.addr).start()
        time.sleep(1.0)  # some rounds granted and replicated before the cut
        cutting = time.monotonic()
        net.partition([m.host, cmin])
        cut = time.monotonic()  # the partition is in effect from here (`ip` took some ms)

        promoted = r = None
        deadline = cut + 6 * NODE_TIMEOUT_MS / 1000 + 30
        while time.monotonic() < deadline:
            if promoted is None:
                r = next((x for x in rs if cluster.role(x) == "master"), None)
                promoted = r and time.monotonic()
            last = minority.rounds[-1] if minority.rounds else None
            if promoted and last is not None and last[0] > cut and last[2] == 0:
                time.sleep(SETTLE_S)  # both sides settled: R serves, M refuses
                break
            time.sleep(0.05)
        else:
            raise AssertionError(f"no settled partition: promoted={promoted}, minority's last "
                                 f"round={minority.rounds[-1:]}")
        minority.stop()
        majority.stop()
        healed = time.monotonic()
        net.heal()
        heal_s = cluster.wait_healthy()
        assert cluster.role(m) == "slave", "M did not rejoin as R's replica"
        drained = cmaj.run(drain, r.addr, keys, use_wait)
        healthy_after_s = time.monotonic() - healed
    finally:
        for load in (minority, majority):
            if load is not None:
                load.stopped.set()  # a failed test leaves no thread behind
        cluster.stop()

    total = minority.granted() + majority.granted() + drained
    over = total - KEYS * BURST
    # Rounds answered after the cut began, or LAG_BOUND_S before it: what R may have missed.
    after_cut = [x for x in minority.rounds if x[1] >= cutting - LAG_BOUND_S]
    refused_before = sum(1 for x in minority.rounds if x[1] < cutting and x[4])
    m_granted = sum(x[3] for x in after_cut)
    m_allowed = sum(x[2] for x in after_cut)
    m_last = max((x[1] for x in after_cut if x[2]), default=cut) - cut
    m_refusal = next(x for x in after_cut if x[0] >= cut and x[2] == 0)
    r_rounds = [x for x in majority.rounds if x[0] >= cut and x[3]]
    r_first = r_rounds[0][1] - cut if r_rounds else None

    figures("failover_time", round(promoted - cut, 2),
            f"s (cut to a replica reporting master; {replicas} replica(s) per master)")
    figures("minority_master_served", round(m_last, 2),
            f"s after the cut (last allowed; then refused, '{m_refusal[4]}', at "
            f"{m_refusal[1] - cut:.2f} s)")
    figures("minority_granted", m_granted,
            f"requests granted on the minority side after the cut ({m_allowed} allowed by M)")
    figures("majority_granted", majority.granted(),
            "requests granted by the promoted replica before healing"
            + (f" (first at {r_first:.2f} s)" if r_first is not None else ""))
    figures("over_admitted", over, f"requests over the limit after healing "
            f"({KEYS} keys x burst {BURST}; {total} granted in all)")
    figures("refused_before_cut", refused_before, "minority rounds refused before the cut")
    figures("heal_time", round(heal_s, 2), "s (heal to every node healthy, M R's replica)")
    figures("after_heal", round(healthy_after_s, 2), "s (heal to drained)")

    if use_wait:
        # Tokens that R or M spent on rounds WAIT refused are not granted: under, never over.
        assert over <= 0, over
    else:
        # What M granted after the cut and R never received is all that can be lost.
        assert 0 <= over <= m_granted, (over, m_granted)
    if config == "min-replicas":
        # The promoted replica has no replica of its own while M is cut off: it refuses.
        assert majority.granted() == 0
    if use_wait:
        assert sum(x[3] for x in after_cut if x[0] >= cut) == 0, \
            "a round sent after the cut, which the replica cannot acknowledge, was let through"
