"""The failure policy as plain code: a circuit breaker and the counters behind stats().

The breaker is closed while Redis answers. After `failures` consecutive transport failures it
opens: for `cooldown_ms` nobody asks Redis (checks are decided by the `on_error` policy at
once). Then one call probes: success closes it ("recovered"), failure opens it again for
another cool-down. Thread-safe; the clock is monotonic ms and injectable."""

import threading
import time

from .decision import PATHS


def monotonic_ms():
    return time.monotonic_ns() // 1_000_000


class Breaker:
    def __init__(self, failures=3, cooldown_ms=1000, on_change=None, clock=monotonic_ms):
        if failures < 1 or cooldown_ms < 0:
            raise ValueError("breaker_failures must be >= 1 and breaker_cooldown_ms >= 0")
        self.failures = failures
        self.cooldown_ms = cooldown_ms
        self.on_change = on_change
        self.clock = clock
        self.state = "closed"
        self._consecutive = 0
        self._opened_at = 0
        self._lock = threading.Lock()

    def admit(self):
        """True if this call may ask Redis (closed, or the one probe after a cool-down)."""
        with self._lock:
            if self.state == "closed":
                return True
            if self.state == "open" and self.clock() - self._opened_at >= self.cooldown_ms:
                self.state = "half_open"
                return True
            return False

    def retry_after_ms(self):
        """Ms until the next probe (0 when closed)."""
        if self.state == "closed":
            return 0
        return max(self.cooldown_ms - (self.clock() - self._opened_at), 0)

    def success(self):
        with self._lock:
            recovered = self.state != "closed"
            self.state, self._consecutive = "closed", 0
        if recovered:
            self._emit("recovered")

    def abort(self):
        """A call admitted by admit() ended without asking Redis (e.g. an argument error
        raised before sending): a half-open breaker lets the next call probe instead."""
        with self._lock:
            if self.state == "half_open":
                self.state, self._opened_at = "open", self.clock() - self.cooldown_ms

    def failure(self):
        with self._lock:
            self._consecutive += 1
            was = self.state
            if was == "half_open" or self._consecutive >= self.failures:
                self.state, self._opened_at = "open", self.clock()
        if was == "closed" and self.state == "open":
            self._emit("degraded")

    def _emit(self, event):
        if self.on_change is not None:
            try:
                self.on_change(event)
            except Exception:  # a faulty callback must not break rate limiting
                pass


class Stats:
    """Counters: decisions by path, transport errors, timeouts, reconfigurations."""

    def __init__(self):
        self.counts = dict.fromkeys(PATHS + ("errors", "timeouts", "reconfigured"), 0)
        self._lock = threading.Lock()

    def count(self, name, n=1):
        with self._lock:
            self.counts[name] += n

    def snapshot(self):
        with self._lock:
            return dict(self.counts)
