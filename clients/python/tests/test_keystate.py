"""The pure rules of issues 19 and 20 (keystate.py over limits.py, what the local limiter runs
and what the Lua script is held to): the issues' property tests, each against a simple model,
plus the spec's worked rules as table tests. Time is a parameter: no server, no sleeping."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distributed_rate_limiter import CommandError, Limit, NoRateLimit
from distributed_rate_limiter import concurrency, limits, sliding
from distributed_rate_limiter import keystate as ks
from distributed_rate_limiter.gcra import Tat
from distributed_rate_limiter.policy import Penalty

T0 = 1_750_000_000_000
gcra_limits = st.builds(lambda l, w, extra: Limit.of(l, w, l + extra), st.integers(1, 10),
                        st.sampled_from([1, 7, 100, 1000, 60_000]), st.integers(0, 5))
sliding_limits = st.builds(lambda l, w: Limit.of(l, w, kind="sliding"), st.integers(1, 10),
                           st.sampled_from([1, 7, 100, 1000, 60_000]))
rate_limits = st.one_of(gcra_limits, sliding_limits)
conc_limits = st.builds(lambda l, w: Limit.of(l, w, kind="concurrency"), st.integers(1, 5),
                        st.sampled_from([1, 50, 1000, 30_000]))
gaps = st.sampled_from([0, 0, 1, 3, 50, 400, 999, 5000, 70_000])


def norm(policy, usage, now):
    """Usage as decisions see it at `now`: a TAT no earlier than now, live window entries."""
    out = []
    for lim, u in zip(policy, limits.view(policy, usage, None, now)):
        if lim.kind == "gcra":
            out.append(max(u.in_units(lim.limit), now * lim.limit))
        elif lim.kind == "sliding":
            out.append(tuple(sliding.live(u, sliding.counting_window(lim, u), now)))
        else:
            out.append(concurrency.live(u, now))
    return out


def run(policy, state, now, cost, mode="throttle", **kw):
    grant, new = ks.check(policy, state, now, cost, mode, **kw)
    return grant, new if new is not None else state


def burst_at_once(policy, state, now):
    """How many cost-1 requests pass at `now`, one after another."""
    n = 0
    while n < 2000:
        g, state = run(policy, state, now, 1)
        if not g.allowed:
            return n
        n += 1
    return n


# --- issue 19: refunds ---------------------------------------------------------------------

@settings(max_examples=300, deadline=None, database=None)
@given(lim=rate_limits, history=st.lists(st.tuples(gaps, st.integers(1, 4)), max_size=20),
       n=st.integers(1, 30), later=gaps)
def test_refunds_never_exceed_what_was_consumed_nor_make_room_beyond_an_empty_bucket(lim, history, n, later):
    policy, state, now, consumed = (lim,), ks.EMPTY, T0, []
    for gap, cost in history:
        now += gap
        g, state = run(policy, state, now, cost)
        if g.allowed:
            consumed.append((now, cost))
    now += later
    live = sum(c for at, c in consumed if lim.kind == "gcra" or at + lim.window_ms > now)
    given, new = ks.refund(policy, state, now, n)
    assert 0 <= given <= min(n, live)
    assert (new is None) == (given == 0)
    assert burst_at_once(policy, new or state, now) <= lim.burst  # never more room than empty


def test_refund_gives_back_whole_units_of_the_bucket_and_the_newest_window_entries_first():
    g = (Limit.of(10, 1000),)  # T = 100 ms
    _, s = run(g, ks.EMPTY, T0, 5)  # TAT = now + 500
    assert ks.refund(g, s, T0 + 150, 10)[0] == 4  # ceil(350 / 100): whole units still owed
    assert ks.refund(g, s, T0 + 500, 1) == (0, None)  # nothing owed: nothing written
    w = (Limit.of(5, 1000, kind="sliding"),)
    _, s = run(w, ks.EMPTY, T0, 2)
    _, s = run(w, s, T0 + 10, 2)
    given, s = ks.refund(w, s, T0 + 20, 3)
    assert given == 3 and s.usage[0] == sliding.Log(((T0, 1),), 1000)  # newest first: both of t+10, one of t


def test_a_refund_skips_concurrency_limits_and_an_absent_key_gives_back_nothing():
    policy = (Limit.of(3, 1000), Limit.of(2, 30_000, kind="concurrency"))
    g, s = run(policy, ks.EMPTY, T0, 1, "acquire")
    given, s2 = ks.refund(policy, s, T0, 5)
    assert given == 1 and s2.usage[1] == s.usage[1]
    assert ks.refund(policy, ks.EMPTY, T0, 5) == (0, None)


# --- issue 19: reservations ------------------------------------------------------------------

@settings(max_examples=300, deadline=None, database=None)
@given(lim=rate_limits, history=st.lists(st.tuples(gaps, st.integers(1, 3)), max_size=12),
       estimate=st.integers(1, 8), actual=st.integers(0, 8), pause=gaps)
def test_a_reserve_then_its_settle_equals_one_check_at_the_actual_cost(lim, history, estimate, actual, pause):
    policy, state, now = (lim,), ks.EMPTY, T0
    for gap, cost in history:
        now += gap
        _, state = run(policy, state, now, cost)
    now += pause
    r, reserved = run(policy, state, now, estimate, "reserve")
    direct, checked = run(policy, state, now, actual) if actual else (None, state)
    if not r.allowed or (direct is not None and not direct.allowed):
        return  # the rule is about two admitted paths
    reply, settled = ks.settle(reserved, now, r.id, actual)
    assert reply == actual - estimate
    assert norm(policy, settled.usage, now) == norm(policy, checked.usage, now)
    assert settled.holds == ()


def test_a_settle_never_gives_back_what_of_its_hold_already_drained():
    """The spec's example: a hold of 10 from empty (B = 10, T = 100 ms), 9 more at 9T, and a
    settle of 0 at 9T. Giving back TAT - 10T would let 10 more pass at once (19 in one
    instant); only the one unit of the hold still owed comes back."""
    g = (Limit.of(10, 1000),)
    r, s = run(g, ks.EMPTY, T0, 10, "reserve")
    d, s = run(g, s, T0 + 900, 9)
    assert d.allowed
    reply, s = ks.settle(s, T0 + 900, r.id, 0)
    assert reply == -1 and burst_at_once(g, s, T0 + 900) == 1
    # A later hold's end moves earlier by what an earlier one gave back: settling both at
    # once gives back exactly what has not drained of either.
    a, s = run(g, ks.EMPTY, T0, 4, "reserve")
    b, s = run(g, s, T0 + 200, 4, "reserve")  # TAT T0 + 800: a ends at 400, b at 800
    assert ks.settle(s, T0 + 300, a.id, 0)[0] == -1  # 100 ms of a left: 1 unit
    s = ks.settle(s, T0 + 300, a.id, 0)[1]
    assert s.holds[0].ends[0] == Tat.from_units((T0 + 700) * 10, 10)
    assert ks.settle(s, T0 + 300, b.id, 0) == (-4, ks.settle(s, T0 + 300, b.id, 0)[1])
    assert burst_at_once(g, ks.settle(s, T0 + 300, b.id, 0)[1], T0 + 300) == 10


@settings(max_examples=3000, deadline=None, database=None)
@given(lim=rate_limits, steps=st.lists(st.tuples(gaps, st.integers(1, 6), st.integers(0, 9),
                                                 st.sampled_from(["settle", "settle", "forget", "check"])),
                                       max_size=25),
       hold_ms=st.sampled_from([1, 100, 5000]))
def test_reserves_settles_and_expiries_never_admit_more_than_the_bound(lim, steps, hold_ms):
    """Whatever the interleaving of reservations, settles, expiries and plain checks, what
    was admitted inside any span, a reservation counted at min(estimate, what was settled),
    stays within the policy's bound for that span (the
    settled excess is charged on top and only ever denies more). A settle never gives back
    units of its hold that have already drained (GCRA: each hold's `end`; SLIDING: only the
    hold's own entry), so the bound holds exactly, with nothing added for earlier holds."""
    policy, state, now = (lim,), ks.EMPTY, T0
    admitted, open_ = [], []  # admitted: [at, estimate, final]
    for gap, estimate, actual, what in steps:
        now += gap
        if open_ and what == "settle":
            rec, rid = open_.pop(0)
            try:
                reply, state = ks.settle(state, now, rid, actual)
                rec[2] = min(actual, rec[1])
            except CommandError:
                assert rec[0] + hold_ms <= now  # only an expired hold is unknown
        r, state = run(policy, state, now, estimate, "throttle" if what == "check" else "reserve", hold_ms=hold_ms)
        if r.allowed:
            rec = [now, estimate, estimate]
            admitted.append(rec)
            if what != "check":
                open_.append((rec, r.id))
    for start, _, _ in admitted:
        if lim.kind == "sliding":
            span = [f for at, _, f in admitted if start <= at < start + lim.window_ms]
            assert sum(span) <= lim.limit
            continue
        for end, _, _ in admitted:
            if end >= start:
                span = [f for at, _, f in admitted if start <= at <= end]
                assert sum(span) <= lim.burst + (end - start) * lim.limit // lim.window_ms


def test_settle_charges_into_debt_capped_at_one_bucket_and_a_key_in_debt_denies():
    g = (Limit.of(10, 1000),)
    r, s = run(g, ks.EMPTY, T0, 2, "reserve")
    reply, s = ks.settle(s, T0, r.id, 500)
    assert reply == 498  # charged whatever it does to admission
    assert s.usage[0].in_units(10) == T0 * 10 + 10 * 1000  # capped: one full bucket beyond now
    d, _ = run(g, s, T0 + 99, 1)
    assert (d.allowed, d.retry_after_ms) == (False, 1)
    assert run(g, s, T0 + 100, 1)[0].allowed


def test_settle_below_the_estimate_gives_back_only_from_its_own_sliding_entry():
    w = (Limit.of(10, 1000, kind="sliding"),)
    r, s = run(w, ks.EMPTY, T0, 4, "reserve")
    _, s = run(w, s, T0 + 5, 3)
    reply, s = ks.settle(s, T0 + 6, r.id, 0)
    assert reply == -4 and s.usage[0] == sliding.Log(((T0 + 5, 3),), 1000)
    r, s = run(w, s, T0 + 7, 2, "reserve")
    _, s = ks.refund(w, s, T0 + 8, 2)  # someone refunded the entry away meanwhile
    assert ks.settle(s, T0 + 9, r.id, 0)[0] == 0  # nothing left at its instant: nothing else


def test_settle_of_an_unknown_expired_or_settled_reservation_is_an_error_that_says_so():
    g = (Limit.of(10, 1000),)
    r, s = run(g, ks.EMPTY, T0, 1, "reserve", hold_ms=100)
    _, settled = ks.settle(s, T0 + 1, r.id, 1)
    for state, now, rid in [(settled, T0 + 2, r.id), (s, T0 + 100, r.id), (s, T0, r.id + 1)]:
        with pytest.raises(CommandError, match="unknown reservation: it expired, was settled, or was never"):
            ks.settle(state, now, rid, 1)
    assert s.holds[0] == ks.Hold(r.id, 1, T0, T0 + 100, (s.usage[0],))
    assert ks.settle(s, T0 + 99, r.id, 1)[0] == 0


def test_an_expired_hold_stays_charged_and_is_pruned_on_the_next_write():
    g = (Limit.of(2, 60_000),)
    _, s = run(g, ks.EMPTY, T0, 2, "reserve", hold_ms=10)
    d, s = run(g, s, T0 + 20, 1)
    assert not d.allowed  # still charged at its estimate
    _, s = run(g, s, T0 + 30_000, 1)
    assert s.holds == ()


def test_at_most_64_open_holds_a_65th_reserve_is_an_error_and_counts_nothing():
    g = (Limit.of(1000, 1000),)
    s = ks.EMPTY
    for _ in range(64):
        _, s = run(g, s, T0, 1, "reserve", hold_ms=50)
    with pytest.raises(CommandError, match="too many open reservations: a key holds at most 64"):
        ks.check(g, s, T0, 1, "reserve")
    assert run(g, s, T0 + 50, 1, "reserve")[0].allowed  # the old ones expired


def test_ids_are_now_times_1000_then_strictly_increasing_across_reservations_and_leases():
    p = (Limit.of(100, 1000), Limit.of(10, 1000, kind="concurrency"))
    g = (Limit.of(100, 1000),)
    a, s = run(g, ks.EMPTY, T0, 1, "reserve")
    b, s = run(g, s, T0, 1, "reserve")
    c, s = run(p, s, T0 - 5, 1, "acquire")  # the clock stepped back
    d, s = run(p, s, T0 + 1, 1, "acquire")
    assert [a.id, b.id, c.id, d.id] == [T0 * 1000, T0 * 1000 + 1, T0 * 1000 + 2, (T0 + 1) * 1000]
    assert ks.reset(s, T0 + 1)[1] is None  # a key without a stored policy goes, with its sequence
    kept = ks.reset(ks.configure(s, p, T0 + 1), T0 + 1)[1]
    assert kept.last_id == d.id and kept.usage == tuple(limits.empty_usage(lim) for lim in p)


def test_a_settle_without_a_policy_raises_no_rate_limit_unless_it_changes_nothing():
    g = (Limit.of(10, 1000),)
    r, s = run(g, ks.EMPTY, T0, 3, "reserve")
    s = s._replace(policy=None)
    with pytest.raises(NoRateLimit):
        ks.settle(s, T0, r.id, 1)
    assert ks.settle(s, T0, r.id, 3)[0] == 0


# --- issue 19: penalties and blocks ----------------------------------------------------------

@settings(max_examples=100, deadline=None, database=None)
@given(ms=st.integers(1, 5000), factor=st.integers(1, 100), denials=st.integers(1, 12))
def test_penalties_double_within_one_window_of_the_last_block_and_stop_at_max(ms, factor, denials):
    window = 10**9  # one request per window: every denial below is within a window of the last block
    p = (Limit.of(1, window),)
    pen = Penalty(ms, ms * factor)
    _, s = run(p, ks.EMPTY, T0, 1, penalty=pen)
    now = T0
    for level in range(denials):
        d, s = run(p, s, now, 1, penalty=pen)
        length = min(ms * 2**level, ms * factor)
        assert not d.allowed and s.block == ks.Block(now + length, level)
        # The denial tells the block it starts: retry when both it and the limit are over.
        assert (d.remaining, d.retry_after_ms) == (0, max(length, T0 + window - now))
        blocked, same = run(p, s, now + length - 1, 1, penalty=pen)
        assert (blocked.allowed, blocked.retry_after_ms, blocked.remaining, same) == \
            (False, max(1, T0 + window - now - length + 1), 0, s)
        now += length
    now = T0 + 2 * window  # quiet for a whole window after the last block: level 0 again
    g, s = run(p, s, now, 1, penalty=pen)
    assert g.allowed
    _, s = run(p, s, now, 1, penalty=pen)
    assert s.block == ks.Block(now + ms, 0)


def test_penalty_doubling_table_and_reset_after_a_quiet_window():
    p = (Limit.of(1, 1000),)
    pen = Penalty(100, 350)
    _, s = run(p, ks.EMPTY, T0, 1, penalty=pen)
    seen = []
    now = T0
    for _ in range(4):
        d, s = run(p, s, now, 1, penalty=pen)
        seen.append((s.block.level, s.block.until_ms - now, d.retry_after_ms))
        now = s.block.until_ms
    assert seen == [(0, 100, 1000), (1, 200, 900), (2, 350, 700), (3, 350, 350)]
    now += 1000  # a whole window after the last block ended: the level starts again
    _, s = run(p, s, now, 1, penalty=pen)
    d, s = run(p, s, now, 1, penalty=pen)
    assert s.block == ks.Block(now + 100, 0)


def test_shadow_and_peek_never_block_and_a_shadow_key_passes_a_block():
    p = (Limit.of(1, 1000),)
    pen = Penalty(100, 100)
    _, s = run(p, ks.EMPTY, T0, 1)
    assert ks.check(p, s, T0, 1, "peek", penalty=pen)[1] is None
    g, new = ks.check(p, s, T0, 1, penalty=pen, shadow=True)
    assert g.allowed and new is None
    b = ks.block(s, T0, 50)
    g, _ = ks.check(p, b, T0 + 1, 1, shadow=True)
    assert (g.allowed, g.retry_after_ms, g.remaining) == (True, -1, 0)


def test_block_replaces_the_block_unblock_ends_it_and_forgets_the_level():
    p = (Limit.of(5, 1000),)
    s = ks.block(ks.EMPTY, T0, 10_000)
    s = ks.block(s, T0, 20)  # shorter replaces longer
    g, _ = ks.check(p, s, T0 + 5, 1)
    # The limits admit it and hold nothing: the block's end is both the retry and the reset.
    assert (g.allowed, g.retry_after_ms, g.remaining, g.reset_after_ms) == (False, 15, 0, 15)
    _, used = run(p, ks.EMPTY, T0, 2)
    g, _ = ks.check(p, ks.block(used, T0, 20), T0 + 5, 4)
    assert (g.retry_after_ms, g.reset_after_ms) == (195, 395)  # the limit's own wait is longer
    assert ks.check(p, s, T0 + 20, 1)[0].allowed
    assert ks.unblock(s, T0 + 20) == (0, None)  # not blocked any more: writes nothing
    s = s._replace(block=ks.Block(T0 + 100, 3))
    assert ks.unblock(s, T0 + 5) == (1, s._replace(block=None))


# --- issue 20: leases -----------------------------------------------------------------------

lease_ops = st.lists(st.tuples(gaps, st.sampled_from(["acquire", "acquire", "release", "renew", "foreign"]),
                               st.integers(1, 3), st.integers(0, 10)), max_size=40)


@settings(max_examples=300, deadline=None, database=None)
@given(lim=conc_limits, ops=lease_ops)
def test_never_more_than_limit_live_and_releases_of_expired_or_foreign_ids_free_nothing(lim, ops):
    """Against a model: a dict of lease -> (cost, expires_at)."""
    policy, state, now, model, ids = (lim,), ks.EMPTY, T0, {}, []
    for gap, op, cost, pick in ops:
        now += gap
        live = {i: v for i, v in model.items() if v[1] > now}
        if op == "acquire":
            g, state = run(policy, state, now, cost, "acquire")
            assert g.allowed == (sum(c for c, _ in live.values()) + cost <= lim.limit)
            if g.allowed:
                model[g.id] = (cost, now + lim.window_ms)
                ids.append(g.id)
            else:
                assert g.id is None
        elif op in ("release", "renew") and ids:
            lid = ids[pick % len(ids)]
            if op == "release":
                reply, new = ks.release(state, now, lid)
                if lid in live:
                    del model[lid]
            else:
                reply, new = ks.renew(state, now, lid, 100)
                if lid in live:
                    model[lid] = (live[lid][0], now + 100)
            assert reply == int(lid in live) and (new is None) == (lid not in live)
            state = new or state
        elif op == "foreign":
            assert ks.release(state, now, now * 1000 + 999_999) == (0, None)
        held = sum(x.cost for x in state.usage[0].items if x.expires_at_ms > now) if state.usage else 0
        assert held == sum(c for c, e in model.values() if e > now) <= lim.limit


@settings(max_examples=300, deadline=None, database=None)
@given(rate=st.lists(rate_limits, min_size=1, max_size=2), lim=conc_limits,
       ops=st.lists(st.tuples(gaps, st.integers(1, 3), st.booleans()), max_size=30))
def test_acquire_is_all_or_nothing_with_gcra_and_sliding_limits(rate, lim, ops):
    """Each rate limit fed alone with exactly the admitted acquires must agree with the set:
    an acquire passes iff every limit admits it, and counts everywhere or nowhere."""
    policy = tuple(rate) + (lim,)
    state, now, alone, leases = ks.EMPTY, T0, [ks.EMPTY] * len(rate), []
    for gap, cost, release in ops:
        now += gap
        if release and leases:
            _, new = ks.release(state, now, leases.pop(0))
            state = new or state
        g, new = ks.check(policy, state, now, cost, "acquire")
        fits = [ks.check((r,), a, now, cost, "peek")[0].allowed for r, a in zip(rate, alone)]
        live = sum(x.cost for x in (state.usage[-1].items if state.usage else ()) if x.expires_at_ms > now)
        assert g.allowed == (all(fits) and live + cost <= lim.limit)
        if g.allowed:
            alone = [run((r,), a, now, cost)[1] for r, a in zip(rate, alone)]
            leases.append(g.id)
        else:
            assert new is None or norm(policy, new.usage, now) == norm(policy, state.usage, now)
        state = new or state
        for i, r in enumerate(rate):
            assert norm((r,), state.usage[i:i + 1], now) == norm((r,), alone[i].usage, now)


def test_a_denied_acquire_waits_for_enough_leases_to_expire_and_reports_held():
    p = (Limit.of(3, 1000, kind="concurrency"),)
    a, s = run(p, ks.EMPTY, T0, 1, "acquire")
    b, s = run(p, s, T0 + 100, 2, "acquire")
    d, _ = run(p, s, T0 + 200, 1, "acquire")
    assert (d.allowed, d.remaining, d.retry_after_ms, d.reset_after_ms) == (False, 0, 800, 900)
    assert run(p, s, T0 + 200, 3, "acquire")[0].retry_after_ms == 900  # both must go for 3 to fit
    assert run(p, s, T0 + 200, 4, "acquire")[0].retry_after_ms == -1  # never
    assert ks.summary(s, T0 + 200)["leases"] == 2
    with pytest.raises(CommandError, match="this key has a CONCURRENCY limit: take a lease with RL.ACQUIRE"):
        ks.check(p, s, T0, 1, "throttle")
    with pytest.raises(CommandError, match="CONCURRENCY limit"):
        ks.check(p, s, T0, 1, "reserve")
    assert ks.check(p, s, T0 + 200, 1, "peek")[0] == d


def test_a_lease_released_or_renewed_in_every_concurrency_limit_with_one_id():
    p = (Limit.of(2, 1000, kind="concurrency"), Limit.of(5, 100, kind="concurrency"))
    a, s = run(p, ks.EMPTY, T0, 1, "acquire")
    assert [u.items[0].expires_at_ms for u in s.usage] == [T0 + 1000, T0 + 100]
    assert ks.renew(s, T0 + 150, a.id, 10)[1].usage[0].items[0].expires_at_ms == T0 + 160  # live in one
    assert ks.renew(s, T0 + 1000, a.id, 10) == (0, None)
    one, s2 = ks.release(s, T0 + 50, a.id)
    assert one == 1 and all(u.items == () for u in s2.usage)


def test_reconfiguration_carries_leases_at_the_same_position_and_drops_them_on_a_kind_change():
    two = (Limit.of(2, 1000, kind="concurrency"),)
    _, s = run(two, ks.EMPTY, T0, 2, "acquire")
    one = (Limit.of(1, 5000, kind="concurrency"),)
    d, _ = run(one, s, T0 + 1, 1, "acquire")
    assert (d.allowed, d.retry_after_ms) == (False, 999)  # kept, over the lowered limit
    rate = (Limit.of(1, 5000),)
    assert run(rate, s, T0 + 1, 1)[0].allowed  # to another kind: a new contract, empty
