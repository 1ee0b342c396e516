"""The traces of issue 17 (what the module's one pipeline changed), planned for generate.py:
reconfigurations carry only what is still live under the old limit at the instant of the
change, a chain of them within one millisecond reads as the last one alone, a pending change
is read as of its own instant, reset_after_ms is until every limit is empty, the binding
limit on a tie is the first given, and a key without a stored policy is read under a call of
another kind or window by the same carry rules (README "Reconfiguration and reporting";
core/src/state.rs, core/src/decide.rs; tests/test_one_path.py has the same examples).

Each plan drives a recorder `r`: r(t, cost) is a check, r.peek(t, cost), r.config(t, limits)
(RL.CONFIG again; for an inline trace, the limits later calls pass instead), r.info(t) and
r.reset(t). Every step's expectation is what the module answered."""

HOUR = 3_600_000


def sliding(limit, window):
    return {"kind": "sliding", "limit": limit, "window_ms": window, "burst": limit}


def gcra(limit, window, burst=0):
    return {"kind": "gcra", "limit": limit, "window_ms": window, "burst": burst or limit}


def round_trip(r):
    for _ in range(5):
        r(0, 1)
    r.config(30_000, [gcra(10, 60_000)])
    r.config(30_000, [sliding(10, 60_000)])
    r.peek(30_000)
    for _ in range(6):  # at most 10 in any minute: 5 more, not 10
        r(30_000, 1)
    r.info(30_000)


def expired_not_carried(r):
    r(0, 10)
    r.config(120_000, [gcra(9, 6_545_900)])
    r(120_000, 1)
    r.info(120_000)


def pruned_not_carried(r):
    r(0, 10)
    r(61_000, 1)  # prunes the first ten, and is itself live at 120 s
    r.config(120_000, [gcra(9, 6_545_900)])
    r(120_000, 1)
    r.peek(120_000, 8)


def longer_window(r):
    r(0, 1)
    r(500, 1)
    r.config(2_000, [sliding(1, 10_000)])
    r(2_000, 1)
    r(2_001, 1)


def gcra_to_sliding(r):
    r(0, 4)  # 24 s of backlog
    r.config(6_000, [sliding(10, 60_000)])  # 18 s still owed: 3 requests, made at the change
    r.peek(6_000)
    r.peek(30_000)
    r(30_000, 7)
    r(30_000, 1)
    r(65_999, 1)
    r(66_000, 1)


def sliding_to_gcra(r):
    r(0, 1)
    r(100, 1)
    r(200, 1)
    r.config(500, [gcra(5, 1000)])  # 3 live: 600 ms owed from the change
    r.peek(500)
    r(700, 3)
    r(700, 1)
    r(899, 1)
    r(900, 1)


def pending_as_of_its_instant(r):
    r(0, 10)
    r.config(1_000, [sliding(10, 60_000)])  # 59 s owed at the change: 10 requests, made then
    r.peek(30_000)  # read as of the change, not of now (which would be 5)
    r.info(30_000)
    r(60_999, 1)
    r(61_000, 1)


def changes_at_different_instants(r):
    r(0, 2)
    r(600, 2)
    r.config(800, [gcra(4, 1000)])  # 4 live at 800: owed until 1800
    r.config(1_500, [sliding(4, 1000)])  # 300 ms owed at 1500: 2 requests
    r.peek(1_500)
    r(1_500, 2)
    r(1_500, 1)
    r(2_499, 1)
    r(2_500, 1)


def chain_in_one_ms(r):
    r(0, 10)
    r.config(1_000, [gcra(10, 6_000)])  # tightened: one full bucket from the change
    r.peek(1_000)
    r.config(1_000, [gcra(10, 60_000)])  # the same ms: reads as this one alone
    r.peek(1_000)
    r(5_999, 1)
    r(6_000, 1)


def tightened_then_loosened_later(r):
    r(0, 10)
    r.config(1_000, [gcra(10, 6_000)])
    r.config(2_000, [gcra(10, 60_000)])  # carries what the tightened limit held at 1000
    r.peek(2_000)
    r(2_000, 9)
    r(2_000, 1)


def reports(r):
    for _ in range(3):
        r(0, 1)
    r.peek(0)
    r.info(0)
    r(250, 1)
    r.reset(250)
    r.info(250)
    r(250, 1)


def tie(r):
    for _ in range(6):
        r(0, 1)


def tie_denied(r):
    r(0, 1)
    r(0, 1)


def usage_only_read_under_another_kind(r):
    r(0, 4)  # 24 s of backlog
    r.config(0, [sliding(10, 60_000)])
    r.peek(0)  # the 4 requests that limit admits in 24 s
    r.info(0)
    r.peek(30_000)  # drained: nothing carried any more
    r(30_000, 10)
    r.info(30_000)
    r.reset(30_000)
    r.info(30_000)


def usage_only_longer_window(r):
    r(0, 3)
    r(500, 1)
    r.config(1_500, [sliding(3, 10_000), gcra(100, 60_000)])
    r(1_500, 1)
    r.info(1_500)


def usage_only_tightened(r):
    r(0, 10)
    r.config(0, [gcra(10, 6_000)])
    r.peek(1_000)  # read as one full bucket from now
    r(1_600, 1)  # denied: the peek wrote nothing, and this denial stores the clamp
    r(2_200, 1)


PLANS = [
    ("reconfiguration: a round trip through GCRA within one ms changes nothing", [sliding(10, 60_000)], round_trip),
    ("reconfiguration: requests the old window had forgotten are never carried", [sliding(10, 60_000)],
     expired_not_carried),
    ("reconfiguration: only what is live is carried, pruned or not", [sliding(10, 60_000)], pruned_not_carried),
    ("reconfiguration: a longer window revives nothing the old one forgot", [sliding(1, 1000)], longer_window),
    ("reconfiguration: GCRA to SLIDING carries the backlog still owed, as requests", [gcra(10, 60_000)],
     gcra_to_sliding),
    ("reconfiguration: SLIDING to GCRA owes the live requests from the change", [sliding(5, 1000)],
     sliding_to_gcra),
    ("reconfiguration: a pending change is read as of its own instant", [gcra(10, 60_000)],
     pending_as_of_its_instant),
    ("reconfiguration: changes at different instants each carry what was live then", [sliding(4, 1000)],
     changes_at_different_instants),
    ("reconfiguration: a chain within one ms reads as the last one alone", [gcra(10, 60_000)], chain_in_one_ms),
    ("reconfiguration: a tightened limit's full bucket is what a later change carries", [gcra(10, 60_000)],
     tightened_then_loosened_later),
    ("reports: reset_after_ms is until every limit is empty; RL.RESET replies it",
     [gcra(10, 1000), gcra(100, 60_000)], reports),
    ("binding: on a tie, the first limit given", [gcra(5, HOUR), sliding(5, HOUR)], tie),
    ("binding: on a tie of waits, the first limit given", [sliding(1, HOUR), sliding(1, HOUR)], tie_denied),
]

# A key without a stored policy: each call passes the trace's limits inline (r.config changes them).
INLINE_PLANS = [
    ("usage only: read under another kind by the carry rules, its reset its own", [gcra(10, 60_000)],
     usage_only_read_under_another_kind),
    ("usage only: a longer window revives nothing the log's own window forgot",
     [sliding(3, 1000), gcra(100, 60_000)], usage_only_longer_window),
    ("usage only: a tightened inline limit reads one full bucket from now", [gcra(10, 60_000)],
     usage_only_tightened),
]
