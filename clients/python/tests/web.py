"""What the framework tests share: a WSGI app served by werkzeug's threaded server and an ASGI
app by uvicorn, each on a free loopback port and its own thread, always stopped; one request
over real HTTP; many at once."""

import asyncio
import http.client
import threading
import time
from concurrent.futures import ThreadPoolExecutor


class Reply:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def __repr__(self):
        return f"Reply({self.status}, {self.headers}, {self.body[:60]!r})"


class Served:
    """`with Served(app) as s:` serves `app` (WSGI, or ASGI with asgi=True) on 127.0.0.1."""

    def __init__(self, app, asgi=False):
        self.app, self.asgi = app, asgi

    def __enter__(self):
        if self.asgi:
            import uvicorn

            from test_middleware import free_port

            self.port = free_port()
            self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port,
                                                        log_level="warning", lifespan="off"))
            self.thread = threading.Thread(target=asyncio.run, args=(self.server.serve(),), daemon=True)
            self.thread.start()
            deadline = time.monotonic() + 10
            while not self.server.started:
                assert time.monotonic() < deadline, "uvicorn did not start"
                time.sleep(0.02)
        else:
            from werkzeug.serving import make_server

            self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
            self.port = self.server.server_port
            self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
            self.thread.start()
        return self

    def __exit__(self, *exc):
        if self.asgi:
            self.server.should_exit = True
        else:
            self.server.shutdown()
            self.server.server_close()
        self.thread.join(10)

    def get(self, path="/", method="GET", headers=None, body=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return Reply(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
        finally:
            c.close()

    def many(self, n=50, path="/", **kw):
        """`n` requests at once (one thread each): their replies."""
        start = threading.Barrier(n)

        def one(_):
            start.wait(30)
            return self.get(path, **kw)

        with ThreadPoolExecutor(n) as pool:
            return list(pool.map(one, range(n)))


def statuses(replies):
    return sorted(r.status for r in replies)
