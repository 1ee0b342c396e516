"""SLIDING, the exact sliding window as a log, exactly as the module decides it
(src/sliding.rs): at most `limit` requests (by cost) in any window `(now - window_ms, now]`.
A log is a tuple of (at_ms, count), oldest first, one entry per distinct ms. An entry in the
future (the clock stepped back) is read as now. Time is a parameter. Pure: no I/O."""

EMPTY = ()


def live(lim, log, now_ms):
    """Entries seen at now_ms: future ones read as now, only those still in the window."""
    out = []
    for at, count in log:
        at = min(at, now_ms)
        if at + lim.window_ms > now_ms:
            out.append((at, count))
    return out


def used(lim, log, now_ms):
    return sum(c for _, c in live(lim, log, now_ms))


def empty_at_ms(lim, log, now_ms):
    """The first ms from which the window holds nothing."""
    entries = live(lim, log, now_ms)
    return entries[-1][0] + lim.window_ms if entries else now_ms


def _merged(parts):
    out = []
    for at, count in parts:
        if out and out[-1][0] == at:
            out[-1] = (at, out[-1][1] + count)
        else:
            out.append((at, count))
    return tuple(out)


def clamp_future(log, now_ms):
    """(log with future entries moved to now, whether anything moved)."""
    if not log or log[-1][0] <= now_ms:
        return log, False
    return _merged((min(at, now_ms), c) for at, c in log), True


def record(lim, log, now_ms, cost):
    """The log after admitting `cost` at now_ms (call only after admits())."""
    return _merged(live(lim, log, now_ms) + [(now_ms, cost)])


def admits(lim, log, now_ms, cost):
    return cost <= lim.limit and used(lim, log, now_ms) + cost <= lim.limit


def retry_after_ms(lim, log, now_ms, cost):
    """Ms until a denied request passes: when enough of the oldest entries have left the
    window; -1 when it never can (cost > limit)."""
    if cost > lim.limit:
        return -1
    entries = live(lim, log, now_ms)
    rest = sum(c for _, c in entries)
    for at, count in entries:
        rest -= count
        if rest + cost <= lim.limit:
            return max(at + lim.window_ms - now_ms, 1)
    return 1  # unreachable for a denied request of cost <= limit


# The interface every kind offers to limits.py (its registry).

def repair(lim, log, now_ms):
    return clamp_future(log, now_ms)


fits = admits


def counted(lim, log, now_ms, cost, lease_id=None):
    return record(lim, log, now_ms, cost)


def remaining(lim, log, now_ms):
    return max(lim.limit - used(lim, log, now_ms), 0)


def reset_after_ms(lim, log, now_ms):
    return empty_at_ms(lim, log, now_ms) - now_ms


def _without_empty(entries):
    return _merged((at, c) for at, c in entries if c > 0)


def refund(lim, log, now_ms, n, at_ms=None):
    """(log, units given back) after removing `n` units from the most recent live entries
    first; with `at_ms` (a settle), only from the entry recorded at that instant, if live."""
    entries = [list(e) for e in _merged(live(lim, log, now_ms))]
    given = 0
    for e in reversed(entries):
        if given == n:
            break
        if at_ms is not None and e[0] != min(at_ms, now_ms):
            continue
        take = min(n - given, e[1])
        e[1] -= take
        given += take
    if given == 0:
        return log, 0
    return _without_empty(entries), given


def charge(lim, log, now_ms, units):
    """The log after recording `units` at now whatever it does to admission, keeping at most
    `limit` units live (the oldest excess dropped): a debt of at most one full window."""
    entries = [list(e) for e in record(lim, log, now_ms, units)]
    excess = sum(c for _, c in entries) - lim.limit
    for e in entries:
        if excess <= 0:
            break
        take = min(excess, e[1])
        e[1] -= take
        excess -= take
    return _without_empty(entries)
