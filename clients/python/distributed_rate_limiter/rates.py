"""Rate strings, the notation of `limits` (flask-limiter, slowapi) and django-ratelimit:
"10/minute", "10 per minute", "10/5 minutes", "5/m", "100/5m", and several limits joined by
`;`, `,` or `|` ("100 per hour; 1000 per day"). Units: second, minute, hour, day, month
(30 days) and year (360 days) as `limits` counts them, their plurals, and s, m, h, d. The
grammar is `limits.util.parse_many`'s, plus the one-letter units django-ratelimit writes.
Pure: no I/O."""

import re
from functools import lru_cache
from typing import NamedTuple, Tuple

from .errors import InvalidArgument

_S = 1000
UNIT_MS = {"second": _S, "minute": 60 * _S, "hour": 3600 * _S, "day": 86_400 * _S,
           "month": 30 * 86_400 * _S, "year": 360 * 86_400 * _S}
_SHORT = {"s": "second", "m": "minute", "h": "hour", "d": "day"}
_SEPARATORS = re.compile(r"[,;|]")
_ONE = re.compile(r"\s*([0-9]+)\s*(?:/|per)\s*([0-9]+)?\s*([a-z]+)\s*$", re.IGNORECASE)


class Rate(NamedTuple):
    """`amount` requests per `window_ms` (one item of a rate string)."""

    amount: int
    window_ms: int


def _unit_ms(word):
    w = word.lower()
    w = _SHORT.get(w, w)
    if w.endswith("s") and w[:-1] in UNIT_MS:
        w = w[:-1]
    if w not in UNIT_MS:
        raise InvalidArgument(f"unknown time unit {word!r} in a rate: use second, minute, hour, day, month, "
                              "year (or s, m, h, d)")
    return UNIT_MS[w]


@lru_cache(maxsize=1024)  # inline rate strings are parsed on every check
def parse_rates(text) -> Tuple[Rate, ...]:
    """The rates of `text`, in order ("100 per hour; 1000 per day" -> two Rates)."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidArgument(f"a rate is a string like '10/minute' or '100 per hour; 1000 per day', not {text!r}")
    out = []
    for part in _SEPARATORS.split(text):
        m = _ONE.match(part)
        if m is None:
            raise InvalidArgument(f"cannot read the rate {part.strip()!r} in {text!r}: write it like '10/minute', "
                                  "'10 per minute' or '10/5 minutes'")
        amount, multiples, unit = m.groups()
        out.append(Rate(int(amount), int(multiples or 1) * _unit_ms(unit)))
    return tuple(out)
