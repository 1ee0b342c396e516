"""One RESP2/RESP3 codec for the tests that read replies over a plain socket.

redis-py trusts a reply's declared length: an earlier build announced more RL.INFO fields
than it sent, which hangs such a client. `RawConnection` follows every command with an ECHO
of a random token and reads up to the token's echo, so a reply that is cut short, or that
runs into the next one, fails at once with what was received (see the regression test at
the end of test_hostile.py). Used by the hardening tests and scripts/soak.py.
"""

import secrets
import socket
import time

import redis


class Incomplete(Exception):
    """The buffer ends inside a reply."""


class ShortReply(Exception):
    """An aggregate reply declared more elements than the server sent: args (declared,
    the elements that did arrive)."""


def encode(*args):
    """One command as a RESP array of bulk strings."""
    parts = [a if isinstance(a, bytes) else str(a).encode() for a in args]
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)


def parse(buf, i=0, end=None):
    """One RESP2/RESP3 reply at buf[i:]: (value, next index). Errors come back as
    redis.ResponseError values, maps as dicts, sets as lists, nulls as None. Incomplete if
    the buffer ends inside the reply; ShortReply if an aggregate runs past `end` (the start
    of what follows the reply, when the caller knows it)."""
    j = buf.find(b"\r\n", i)
    if j < 0:
        raise Incomplete
    kind, line, i = buf[i:i + 1], buf[i + 1:j], j + 2
    if kind == b"+":
        return line, i
    if kind == b"-":
        return redis.ResponseError(line.decode(errors="replace")), i
    if kind in (b":", b"("):
        return int(line), i
    if kind == b"_":
        return None, i
    if kind == b"#":
        return line == b"t", i
    if kind == b",":
        return float(line), i
    n = int(line)
    if kind in (b"$", b"="):
        if n < 0:
            return None, i
        if len(buf) < i + n + 2:
            raise Incomplete
        return buf[i:i + n], i + n + 2
    if kind not in (b"*", b"%", b"~"):
        raise AssertionError(f"unknown reply type {kind!r} at {buf[i - 10:i + 10]!r}")
    if n < 0:
        return None, i
    items, count = [], n * (2 if kind == b"%" else 1)
    for _ in range(count):
        if end is not None and i >= end:
            raise ShortReply(count, items)
        value, i = parse(buf, i, end)
        items.append(value)
    return (dict(zip(items[::2], items[1::2])) if kind == b"%" else items), i


class RawConnection:
    """A connection that reads each reply without trusting its declared length: every
    command is followed by an ECHO of a random token, and the reply is what comes before
    the token's echo. `auth`: (user, password); `protocol` 3 sends HELLO 3 first."""

    def __init__(self, port, auth=None, timeout=30.0, protocol=2):
        self.timeout = timeout
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if auth:
            assert self.call("AUTH", *auth)[0] == b"OK"
        if protocol == 3:
            hello = self.call("HELLO", 3)[0]
            assert isinstance(hello, dict), hello

    def call(self, *args):
        """Returns (reply, declared, sent): `declared` and `sent` are an aggregate reply's
        element counts (a map's keys and values) as announced and as actually sent (equal
        when well formed); None for other replies."""
        token = secrets.token_hex(8).encode()
        tail = b"$16\r\n" + token + b"\r\n"
        self.sock.sendall(encode(*args) + encode("ECHO", token))
        buf = b""
        deadline = time.monotonic() + self.timeout
        while not buf.endswith(tail):
            assert time.monotonic() < deadline, f"no ECHO reply after {args[:2]}: {buf[:200]!r}"
            chunk = self.sock.recv(1 << 16)
            assert chunk, f"connection closed after {args[:2]}: {buf[:200]!r}"
            buf += chunk
        end = len(buf) - len(tail)
        try:
            reply, i = parse(buf, 0, end)
        except ShortReply as short:
            return short.args[1], short.args[0], len(short.args[1])
        except Incomplete:
            raise AssertionError(f"{args[0]} reply is cut short: {buf[:end][:200]!r}") from None
        assert i == end, f"extra bytes after the reply to {args[:2]}: {buf[i:end][:200]!r}"
        n = len(reply) * 2 if isinstance(reply, dict) else len(reply) if isinstance(reply, list) else None
        return reply, n, n

    def close(self):
        self.sock.close()


def raw_call(port, *args, auth=None, protocol=2, timeout=30.0):
    """RawConnection.call on a fresh connection: (reply, declared, sent)."""
    conn = RawConnection(port, auth, timeout, protocol)
    try:
        return conn.call(*args)
    finally:
        conn.close()


def raw_reply(port, *args, auth=None, protocol=2, timeout=30.0):
    """The reply to `args` on a fresh connection, which must be well formed (an aggregate
    sends as many elements as it declares)."""
    reply, declared, sent = raw_call(port, *args, auth=auth, protocol=protocol, timeout=timeout)
    assert declared == sent, f"{args[0]} reply declares {declared} elements and sends {sent}: {reply!r}"
    return reply
