"""The in-process limiter behind `on_error='local'`: the module's exact GCRA (gcra.py) over a
bounded table of buckets, with an injectable clock (Unix ms) for tests."""

import threading
import time
from collections import OrderedDict

from .gcra import EMPTY, evaluate


def wall_clock_ms():
    return time.time_ns() // 1_000_000


class LocalLimiter:
    """Buckets by key, least recently used dropped past `max_keys` (a dropped client starts
    from an empty bucket: bounded memory during a long outage, at the price of a fresh burst
    for the oldest clients). Thread-safe."""

    def __init__(self, clock=wall_clock_ms, max_keys=100_000):
        self.clock = clock
        self.max_keys = max_keys
        self._tats = OrderedDict()
        self._lock = threading.Lock()

    def check(self, key, policy, cost=1, consume=True, shadow=False):
        """The Verdict for `cost` on `key` under `policy` (already scaled to this instance's
        share); counts it when allowed and `consume`."""
        now = self.clock()
        with self._lock:
            tat = self._tats.get(key, EMPTY)
            v = evaluate(policy, tat, now, cost, shadow)
            if consume and v.tat is not tat:
                self._tats[key] = v.tat
                self._tats.move_to_end(key)
                if len(self._tats) > self.max_keys:
                    self._tats.popitem(last=False)
            return v

    def reset(self, key):
        with self._lock:
            self._tats.pop(key, None)

    def __len__(self):
        return len(self._tats)
