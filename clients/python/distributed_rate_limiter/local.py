"""The in-process limiter behind `on_error='local'`: the module's exact decisions (limits.py)
over a bounded table of usages, with an injectable clock (Unix ms) for tests. It keeps its
state across outages: a client that used its share in one outage does not get it again in
the next one within the window."""

import threading
import time
from collections import OrderedDict

from . import limits


def wall_clock_ms():
    return time.time_ns() // 1_000_000


class LocalLimiter:
    """Usages by key, least recently used dropped past `max_keys` (a dropped client starts
    from empty: bounded memory during a long outage, at the price of a fresh burst for the
    oldest clients). Thread-safe."""

    def __init__(self, clock=wall_clock_ms, max_keys=100_000):
        self.clock = clock
        self.max_keys = max_keys
        self._usage = OrderedDict()
        self._lock = threading.Lock()

    def check(self, key, policy, cost=1, consume=True):
        """The limits.Outcome of `cost` on `key` under `policy` (a tuple of Limits, already
        scaled to this instance's share); counts it when allowed and `consume`."""
        now = self.clock()
        with self._lock:
            o = limits.decide(policy, self._usage.get(key), now, cost, consume)
            if o.usage is not None:
                self._usage[key] = o.usage
                self._usage.move_to_end(key)
                if len(self._usage) > self.max_keys:
                    self._usage.popitem(last=False)
            return o

    def reset(self, key):
        with self._lock:
            self._usage.pop(key, None)

    def __len__(self):
        return len(self._usage)
