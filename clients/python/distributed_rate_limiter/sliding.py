"""SLIDING, the exact sliding window as a log, exactly as the module decides it
(core/src/kinds/sliding.rs): at most `limit` requests (by cost) in any window
`(now - window_ms, now]`.

A usage is a Log: the entries (at_ms, count), oldest first, one per distinct ms, and the
window of the limit that recorded them (0: unknown, a log written before logs kept it; an
empty log always has 0). An entry counts while it is inside both that window and the window
of the limit reading it, so a request the old window had forgotten is never revived by a
longer one, and a key knows when it is empty without its policy. An entry in the future (the
clock stepped back) is read as now. Time is a parameter. Pure: no I/O."""

from typing import NamedTuple, Tuple


class Log(NamedTuple):
    entries: Tuple[Tuple[int, int], ...] = ()
    window_ms: int = 0


EMPTY = Log()


def of(entries, window_ms):
    """A log of `entries` recorded under `window_ms` (an empty one has no window)."""
    entries = tuple(entries)
    return Log(entries, window_ms if entries else 0)


def counting_window(lim, log):
    """The window the log's entries count in under `lim`: its own, or the log's when shorter."""
    return min(lim.window_ms, log.window_ms) if log.window_ms else lim.window_ms


def live(log, window, now_ms):
    """Entries seen at now_ms (future ones read as now) still inside a window of `window` ms."""
    out = []
    for at, count in log.entries:
        at = min(at, now_ms)
        if at + window > now_ms:
            out.append((at, count))
    return out


def used(log, window, now_ms):
    return sum(c for _, c in live(log, window, now_ms))


def empty_at(log, window, now_ms):
    """The first ms from which nothing is left in a window of `window` ms."""
    entries = live(log, window, now_ms)
    return entries[-1][0] + window if entries else now_ms


def _merged(parts):
    out = []
    for at, count in parts:
        if count == 0:
            continue
        if out and out[-1][0] == at:
            out[-1] = (at, out[-1][1] + count)
        else:
            out.append((at, count))
    return tuple(out)


def _kept(log, window, now_ms):
    """The entries, future ones moved to now, without those that left a window of `window`."""
    return [(min(at, now_ms), c) for at, c in log.entries if min(at, now_ms) + window > now_ms]


# --- the interface of a kind (limits.py) ---------------------------------------------------

def admit(lim, log, now_ms, cost):
    return True if cost <= lim.limit and used(log, counting_window(lim, log), now_ms) + cost <= lim.limit else None


def record(lim, log, admitted, now_ms, cost, lease_id=None):
    """The log after admitting `cost` at now_ms: what no longer counts dropped, recorded under
    this limit's window."""
    return of(_merged(_kept(log, counting_window(lim, log), now_ms) + [(now_ms, cost)]), lim.window_ms)


def repair(lim, log, now_ms):
    """Entries in the future moved to now (the same object if none was)."""
    if not log.entries or log.entries[-1][0] <= now_ms:
        return log
    return of(_merged((min(at, now_ms), c) for at, c in log.entries), log.window_ms)


def after(lim, log, admitted, now_ms, cost):
    window = counting_window(lim, log)
    n = used(log, window, now_ms)
    if admitted is not None:  # recorded at now under this limit's window
        return max(lim.limit - n - cost, 0), now_ms + lim.window_ms
    return max(lim.limit - n, 0), empty_at(log, window, now_ms)


def wait_ms(lim, log, now_ms, cost):
    """Ms until a request of `cost` fits: at the first live entry e such that what is newer
    plus `cost` fits, exactly at e + window; None when it never can (cost > limit)."""
    if cost > lim.limit:
        return None
    window = counting_window(lim, log)
    entries = live(log, window, now_ms)
    rest = sum(c for _, c in entries)
    if rest + cost <= lim.limit:
        return 0
    for at, count in entries:
        rest -= count
        if rest + cost <= lim.limit:
            return max(at + window - now_ms, 1)
    return window


def own_empty_at(log, now_ms):
    """When the log is empty under its own window; None when it does not know its window."""
    if log.window_ms == 0:
        return None if log.entries else now_ms
    return empty_at(log, log.window_ms, now_ms)


def window_of(log):
    return log.window_ms or None


def carry(lim, log, at_ms):
    """Reconfigured within the kind at `at_ms`: what the log's own window had not forgotten
    then and the new window still holds, recorded under the new window from then on."""
    cutoff = at_ms - counting_window(lim, log)
    return of((e for e in log.entries if e[0] > cutoff), lim.window_ms)


def export(log, at_ms):
    """The requests still live at `at_ms` under the window they were recorded in (all of them
    when it is unknown), for a limit of another kind."""
    n = sum(c for _, c in log.entries) if log.window_ms == 0 else used(log, log.window_ms, at_ms)
    return ("requests", n) if n else None


def import_(lim, carried, at_ms):
    """What another kind carried, as requests made at `at_ms` (at most the limit): a GCRA
    backlog counts as the requests this limit admits in it, rounded up."""
    count = 0
    if carried is not None:
        what, value = carried
        count = value if what == "requests" else _requests_in(value, at_ms, lim)
    count = min(count, lim.limit)
    return of(((at_ms, count),), lim.window_ms) if count else EMPTY


def _requests_in(tat, at_ms, lim):
    if tat.ms < at_ms or (tat.ms == at_ms and tat.frac == 0):
        return 0
    backlog = (tat.ms - at_ms) * tat.den + tat.frac
    return -(-backlog * lim.limit // (tat.den * lim.window_ms))


# --- issue 19: refunds and settles ---------------------------------------------------------

def refund(lim, log, now_ms, n, at_ms=None):
    """(log, units given back) after removing `n` units from the most recent live entries
    first; with `at_ms` (a settle), only from the entry recorded at that instant, if live."""
    entries = [list(e) for e in _kept(log, counting_window(lim, log), now_ms)]
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
    return of(_merged(entries), log.window_ms), given


def charge(lim, log, now_ms, units):
    """The log after recording `units` at now whatever it does to admission, keeping at most
    `limit` units live (the oldest excess dropped): a debt of at most one full window."""
    entries = [list(e) for e in record(lim, log, True, now_ms, units).entries]
    excess = sum(c for _, c in entries) - lim.limit
    for e in entries:
        if excess <= 0:
            break
        take = min(excess, e[1])
        e[1] -= take
        excess -= take
    return of(_merged(entries), lim.window_ms)
