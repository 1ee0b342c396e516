"""django-ratelimit's decorator, deciding through the rl module:

    from distributed_rate_limiter.django import ratelimit   # was: from django_ratelimit.decorators import ratelimit

    @ratelimit(key="ip", rate="10/m", method=ratelimit.UNSAFE, block=True)
    def login(request): ...

The same arguments as django-ratelimit 4: `group` (default: the view's module and qualified
name), `key` ('ip', 'user', 'user_or_ip', 'get:<name>', 'post:<name>', 'header:<name>', a
callable `(group, request)`, or the dotted path of one), `rate` ('10/m', '100/5m', any rate
string, a `(count, seconds)` tuple, a callable `(group, request)` or its dotted path; None:
no limit), `method` (ratelimit.ALL, ratelimit.UNSAFE, a method or a list) and `block` (raise
Ratelimited, a PermissionDenied: 403 unless handled, as django-ratelimit). `request.limited`
is set as there, and `request.rate_limit` holds the Decision. Settings read as there:
RATELIMIT_ENABLE, RATELIMIT_EXCEPTION_CLASS, RATELIMIT_IP_META_KEY, RATELIMIT_VIEW (for this
module's RatelimitMiddleware, which without it answers 429 with Retry-After and the RateLimit
headers). The limiter: the DISTRIBUTED_RATE_LIMITER setting (a DistributedRateLimiter, a URL,
or a dict of its options with `url`), else one made from REDIS_URL; or `limiter=` per view.

django-ratelimit counts a fixed window of `rate`; here that is `count_per_window`: SLIDING
(at most `count` in any window) where it fits, else GCRA. A store failure takes the
limiter's failure policy (`on_error`), not RATELIMIT_FAIL_OPEN."""

import functools
import threading

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.http import HttpResponse
from django.utils.module_loading import import_string

from .client import DistributedRateLimiter
from .httpcore import response_headers
from .ip import ip_key
from .policy import count_per_window
from .rates import parse_rates

ALL = (None,)  # django-ratelimit's sentinel: every method
UNSAFE = ["DELETE", "PATCH", "POST", "PUT"]


class Ratelimited(PermissionDenied):
    """A request over its limit (block=True); `decision` says when to retry."""

    def __init__(self, decision=None):
        super().__init__("rate limited")
        self.decision = decision


_made = {}
_made_lock = threading.Lock()


def limiter_of(value):
    """A DistributedRateLimiter from a setting: one, a URL, a dict of options (with `url`), or
    None (REDIS_URL); made once per value."""
    if isinstance(value, DistributedRateLimiter):
        return value
    ident = repr(sorted(value.items())) if isinstance(value, dict) else value
    with _made_lock:
        if ident not in _made:
            options = dict(value) if isinstance(value, dict) else {}
            url = options.pop("url", None) if isinstance(value, dict) else value
            _made[ident] = DistributedRateLimiter(url, **options)
        return _made[ident]


def _ip(request):
    meta = getattr(settings, "RATELIMIT_IP_META_KEY", None)
    if not meta:
        ip = request.META.get("REMOTE_ADDR")
    elif callable(meta):
        ip = meta(request)
    elif "." in meta:
        ip = import_string(meta)(request)
    else:
        ip = request.META.get(meta)
    if not ip:
        raise ImproperlyConfigured("no client address (REMOTE_ADDR, or RATELIMIT_IP_META_KEY behind a proxy)")
    return ip_key(ip.split(",")[0].strip())


def _user_or_ip(request):
    return f"user:{request.user.pk}" if request.user.is_authenticated else _ip(request)


SIMPLE_KEYS = {"ip": _ip, "user": lambda r: f"user:{r.user.pk}", "user_or_ip": _user_or_ip}
ACCESSOR_KEYS = {"get": lambda r, k: r.GET.get(k, ""), "post": lambda r, k: r.POST.get(k, ""),
                 "header": lambda r, k: r.META.get("HTTP_" + k.replace("-", "_").upper(), "")}


def _value(key, group, request):
    if callable(key):
        return key(group, request)
    if key in SIMPLE_KEYS:
        return SIMPLE_KEYS[key](request)
    if isinstance(key, str) and ":" in key:
        accessor, name = key.split(":", 1)
        if accessor not in ACCESSOR_KEYS:
            raise ImproperlyConfigured(f"unknown ratelimit key: {key}")
        return f"{accessor}:{name}:{ACCESSOR_KEYS[accessor](request, name)}"
    if isinstance(key, str) and "." in key:
        return import_string(key)(group, request)
    raise ImproperlyConfigured(f"ratelimit key must be given, as django-ratelimit takes it, not {key!r}")


def _policy(rate):
    """The limits of a rate: a string (one rate or several), or django-ratelimit's (count, seconds)."""
    if isinstance(rate, tuple):
        return (count_per_window(int(rate[0]), int(rate[1]) * 1000),)
    return tuple(count_per_window(r.amount, r.window_ms) for r in parse_rates(rate))


def _group(fn):
    fn = fn.func if isinstance(fn, functools.partial) else fn
    return ".".join(p for p in (getattr(fn, "__module__", None), fn.__qualname__) if p)


def _applies(request, method):
    if method == ALL:
        return True
    methods = method if isinstance(method, (list, tuple)) else [method]
    return request.method in [m.upper() for m in methods]


def decision_for(request, group=None, fn=None, key=None, rate=None, method=ALL, limiter=None):
    """The Decision for this request (counted), or None when no limit applies."""
    if not getattr(settings, "RATELIMIT_ENABLE", True) or not _applies(request, method):
        return None
    group = group if group is not None else _group(fn)
    if callable(rate):
        rate = rate(group, request)
    elif isinstance(rate, str) and "." in rate:
        rate = import_string(rate)(group, request)
    if rate is None:
        return None
    policy = _policy(rate)
    methods = "" if method == ALL else "".join(sorted(m.upper() for m in (
        method if isinstance(method, (list, tuple)) else [method])))
    rates = ",".join(f"{lim.limit}/{lim.window_ms}" for lim in policy)
    ident = f"{group}:{rates}:{methods}:{_value(key, group, request)}"
    return limiter_of(limiter if limiter is not None else getattr(settings, "DISTRIBUTED_RATE_LIMITER", None)
                      ).throttle(ident, limit=list(policy))


def _exception_class():
    cls = getattr(settings, "RATELIMIT_EXCEPTION_CLASS", Ratelimited)
    return import_string(cls) if isinstance(cls, str) else cls


def ratelimit(group=None, key=None, rate=None, method=ALL, block=True, *, limiter=None):
    """django-ratelimit's decorator (see the module's doc); `limiter=` this view's limiter."""
    def decorator(fn):
        @functools.wraps(fn)
        def wrapped(request, *args, **kw):
            d = decision_for(request, group, fn, key, rate, method, limiter)
            limited = d is not None and not d.allowed
            request.limited = limited or getattr(request, "limited", False)
            if d is not None and (limited or getattr(request, "rate_limit", None) is None):
                request.rate_limit = d  # the denial, else the first decision
            if limited and block:
                cls = _exception_class()
                raise cls(d) if issubclass(cls, Ratelimited) else cls()
            return fn(request, *args, **kw)
        return wrapped
    return decorator


ratelimit.ALL = ALL
ratelimit.UNSAFE = UNSAFE


def too_many_requests(request, exception):
    """429 with Retry-After and the RateLimit headers of the denial."""
    response = HttpResponse("Too Many Requests\n", status=429, content_type="text/plain; charset=utf-8")
    d = getattr(exception, "decision", None) or getattr(request, "rate_limit", None)
    for k, v in response_headers(d, denied=True) if d is not None else ():
        response[k] = v
    return response


class RatelimitMiddleware:
    """Answers Ratelimited with settings.RATELIMIT_VIEW (as django-ratelimit's), else 429."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, Ratelimited):
            return None
        view = getattr(settings, "RATELIMIT_VIEW", None)
        return (import_string(view) if view else too_many_requests)(request, exception)
