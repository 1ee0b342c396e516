"""The deny cache: floods answered without a round trip.

A denial with `retry_after_ms = r` says exactly when anything can change for that key and
policy: until then (or `max_ms` if that is sooner) the same check is answered from memory,
the same numbers re-aged to now, with path `cached`. This limiter's own reset and configure
forget the key. The trade-off: a reset or reconfiguration made elsewhere (an admin's
RL.RESET, another instance) is seen within max_ms. Bounded (LRU); thread-safe."""

import threading
from collections import OrderedDict


class DenyCache:
    def __init__(self, max_ms=1000, max_keys=100_000):
        self.max_ms = max_ms
        self.max_keys = max_keys
        self._entries = OrderedDict()  # (key, policy, cost) -> (until_ms, at_ms, value)
        self._by_key = {}  # key -> set of entry ids, so that forget(key) finds them all
        self._lock = threading.Lock()

    def get(self, ident, now_ms):
        """(the value remembered, ms since) for `ident` = (key, policy, cost), or None."""
        if not self.max_ms:
            return None
        with self._lock:
            hit = self._entries.get(ident)
            if hit is None:
                return None
            until, at, value = hit
            if now_ms >= until or now_ms < at:  # expired, or the clock stepped back
                self._drop(ident)
                return None
            return value, now_ms - at

    def put(self, ident, value, retry_after_ms, now_ms):
        """Remembers a denial (`value`: what get() hands back) until min(retry, max_ms)."""
        if not self.max_ms:
            return
        ttl = self.max_ms if retry_after_ms < 0 else min(retry_after_ms, self.max_ms)
        with self._lock:
            self._entries[ident] = (now_ms + ttl, now_ms, value)
            self._entries.move_to_end(ident)
            self._by_key.setdefault(ident[0], set()).add(ident)
            while len(self._entries) > self.max_keys:
                self._drop(next(iter(self._entries)))

    def forget(self, key):
        with self._lock:
            for ident in list(self._by_key.get(key, ())):
                self._drop(ident)

    def _drop(self, ident):
        self._entries.pop(ident, None)
        ids = self._by_key.get(ident[0])
        if ids is not None:
            ids.discard(ident)
            if not ids:
                del self._by_key[ident[0]]
