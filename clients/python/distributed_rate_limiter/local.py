"""The in-process limiter behind `on_error='local'`: the module's exact decisions (keystate.py
over limits.py: rate limits, leases, reservations, penalties, reconfigurations) over a bounded
table of key states, with an injectable clock (Unix ms) for tests. It keeps its state across
outages: a client that used its share in one outage does not get it again in the next one
within the window, and a lease or reservation taken locally is released or settled locally."""

import threading
import time
from collections import OrderedDict

from . import keystate
from .policy import DEFAULT_HOLD_MS


def wall_clock_ms():
    return time.time_ns() // 1_000_000


class LocalLimiter:
    """Key states by key, least recently used dropped past `max_keys` (a dropped client starts
    from empty: bounded memory during a long outage, at the price of a fresh burst for the
    oldest clients). Thread-safe. Policies are tuples of Limits (already scaled to this
    instance's share); replies are keystate's (a Grant for a check)."""

    def __init__(self, clock=wall_clock_ms, max_keys=100_000):
        self.clock = clock
        self.max_keys = max_keys
        self._states = OrderedDict()
        self._lock = threading.Lock()

    def _get(self, key, now):
        """`key`'s state; EMPTY for none, or for one the module would have let expire by now (a
        key without a stored policy whose usage, holds, leases and block were all over before
        now): a clock that steps back afterwards does not bring it back."""
        held = self._states.get(key)
        if held is None:
            return keystate.EMPTY
        state, expires_at = held
        if expires_at is not None and expires_at < now:  # Redis: expired once now > the expiry
            del self._states[key]
            return keystate.EMPTY
        return state

    def _apply(self, key, op):
        """op(state, now) -> (reply, new state or None), under the lock."""
        now = self.clock()
        with self._lock:
            reply, new = op(self._get(key, now), now)
            if new is not None:
                self._states[key] = (new, keystate.expires_at_ms(new, now))
                self._states.move_to_end(key)
                if len(self._states) > self.max_keys:
                    self._states.popitem(last=False)
            return reply

    def configure(self, key, policy):
        """Stores `policy` for `key` as RL.CONFIG does: it beats the policy a check brings, and
        the usage is carried to it as of now (a chain of changes within one ms reads as the
        last one alone)."""
        self._apply(key, lambda s, now: (None, keystate.configure(s, policy, now)))

    def check(self, key, policy, cost=1, mode="throttle", penalty=None, shadow=False, hold_ms=DEFAULT_HOLD_MS):
        """A keystate.Grant for `cost` on `key` under its configured policy, else `policy`:
        mode 'throttle' (counts when allowed), 'peek' (counts nothing), 'reserve' (cost = the
        estimate; the Grant's id is the reservation) or 'acquire' (the id is the lease)."""
        return self._apply(key, lambda s, now: keystate.check(policy, s, now, cost, mode, penalty, shadow, hold_ms))

    def refund(self, key, policy, n):
        return self._apply(key, lambda s, now: keystate.refund(policy, s, now, n))

    def settle(self, key, rid, actual):
        """Under the key's configured policy, else the one its last write was decided with."""
        return self._apply(key, lambda s, now: keystate.settle(s, now, rid, actual))

    def release(self, key, lease_id):
        return self._apply(key, lambda s, now: keystate.release(s, now, lease_id))

    def renew(self, key, lease_id, ms):
        return self._apply(key, lambda s, now: keystate.renew(s, now, lease_id, ms))

    def block(self, key, ms):
        return self._apply(key, lambda s, now: ("OK", keystate.block(s, now, ms)))

    def unblock(self, key):
        return self._apply(key, keystate.unblock)

    def summary(self, key):
        """RL.INFO's fields of issues 19 and 20 for `key`."""
        return self._apply(key, lambda s, now: (keystate.summary(s, now), None))

    def info(self, key):
        """What RL.INFO tells of `key`'s state: `remaining` (under its configured policy; None
        without one), `reset_after_ms` and the fields of issues 19 and 20; None for no key."""
        def op(state, now):
            if state is keystate.EMPTY:
                return None, None
            return {"remaining": keystate.remaining(state, now), "reset_after_ms": keystate.reset_after_ms(state, now),
                    **keystate.summary(state, now)}, None
        return self._apply(key, op)

    def reset(self, key):
        """As RL.RESET: returns the ms of backlog forgotten. A configured key forgets usage,
        holds, leases and the block and keeps its policy and id sequence; any other is
        forgotten whole."""
        now = self.clock()
        with self._lock:
            state = self._get(key, now)
            self._states.pop(key, None)
            if state is keystate.EMPTY:
                return 0
            forgotten, new = keystate.reset(state, now)
            if new is not None:
                self._states[key] = (new, None)
            return forgotten

    def state(self, key):
        """`key`'s keystate.KeyState as of now (EMPTY when none is held)."""
        now = self.clock()
        with self._lock:
            return self._get(key, now)

    def __len__(self):
        return len(self._states)
