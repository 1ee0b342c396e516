"""Prometheus through the stock redis_exporter (Debian's prometheus-redis-exporter 1.45).

The exporter reads `INFO ALL`, which leaves module sections out, so the `rl_*` fields come
through its `-script` option and monitoring/rl-info.lua, as `redis_script_values{key=...}`;
the `rl.*` command rates and latency percentiles come from the server's own commandstats
and latencystats. These tests run the real exporter against a server with the module (the
one REDIS_SERVER names: redis-server or valkey-server), scrape /metrics, and run a real
Prometheus on the exporter to evaluate every query of monitoring/grafana-dashboard.json.
"""

import json
import os
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request

import pytest
import redis

from helpers import wait_until
from server import ROOT, free_port, stop_process

EXPORTER = os.environ.get("REDIS_EXPORTER", "prometheus-redis-exporter")
PROMETHEUS = os.environ.get("PROMETHEUS", "prometheus")
SCRIPT = ROOT / "monitoring" / "rl-info.lua"
DASHBOARD = ROOT / "monitoring" / "grafana-dashboard.json"

# The fields README.md documents for INFO rl; the script exports whatever the section has.
DOCUMENTED_FIELDS = {
    "rl_checks_allowed", "rl_checks_denied", "rl_checks_shadow_denied", "rl_errors",
    "rl_configs_written", "rl_resets", "rl_live_buckets", "rl_top_tracked", "rl_scale_percent",
    *(f"rl_checks_{d}_{s}" for d in ("allowed", "denied") for s in ("stored", "default", "inline")),
}


def http_get(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return resp.read().decode()


class Process:
    """A helper process on a free loopback port, stopped by PID."""

    def __init__(self, workdir, name):
        self.dir = workdir
        self.name = name
        self.proc = None
        self.port = None

    def start(self, argv_for_port, ready, timeout=30):
        for _ in range(3):  # a free port can be taken between the probe and the bind
            self.port = free_port()
            log = open(self.dir / f"{self.name}.log", "w")
            self.proc = subprocess.Popen(argv_for_port(self.port), cwd=self.dir, stdout=log,
                                         stderr=subprocess.STDOUT)
            log.close()
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    if ready(self):
                        return self
                except OSError:
                    pass
                time.sleep(0.1)
            self.stop()
        raise RuntimeError(f"{self.name} did not start:\n{self.log()[-3000:]}")

    def log(self):
        return (self.dir / f"{self.name}.log").read_text(errors="replace")

    def stop(self):
        stop_process(self.proc)
        self.proc = None


def parse_metrics(text):
    """Prometheus text format -> {(name, ((label, value), ...)): float}."""
    samples = {}
    for line in text.splitlines():
        m = re.match(r"([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)$", line)
        if line.startswith("#") or not m:
            continue
        labels = tuple(sorted(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or "")))
        samples[(m.group(1), labels)] = float(m.group(3))
    return samples


class Scrape:
    def __init__(self, text):
        self.samples = parse_metrics(text)

    def names(self):
        return {name for name, _ in self.samples}

    def get(self, name, **labels):
        return self.samples.get((name, tuple(sorted(labels.items()))))

    def rl(self):
        """The script's fields: {rl_field: value}."""
        return {dict(lb)["key"]: v for (n, lb), v in self.samples.items() if n == "redis_script_values"}

    def label_values(self, name, label):
        return {dict(lb).get(label) for (n, lb), _ in self.samples.items() if n == name} - {None}


@pytest.fixture(scope="module")
def exporter(server, tmp_path_factory):
    if shutil.which(EXPORTER) is None:
        pytest.fail(f"{EXPORTER} not found: scripts/deps.sh installs it (Debian prometheus-redis-exporter)")

    def argv(port):
        # The command line monitoring/README.md gives, on test ports.
        return [EXPORTER, "-redis.addr", f"redis://127.0.0.1:{server.port}",
                "-web.listen-address", f"127.0.0.1:{port}", "-script", str(SCRIPT)]

    def ready(p):
        return Scrape(http_get(f"http://127.0.0.1:{p.port}/metrics")).get("redis_up") == 1

    p = Process(tmp_path_factory.mktemp("exporter"), "exporter").start(argv, ready)
    p.scrape = lambda: Scrape(http_get(f"http://127.0.0.1:{p.port}/metrics"))
    yield p
    p.stop()


def traffic(r):
    """One of each kind of event the module counts; returns the expected change of each field."""
    r.config_set("rl.default-limit", 1)
    r.config_set("rl.default-window-ms", 60000)
    r.execute_command("RL.CONFIG", "stored", 2, 60000)
    r.execute_command("RL.CONFIG", "shadowed", 1, 60000, "SHADOW")
    assert [r.execute_command("RL.ALLOW", "stored") for _ in range(3)] == [1, 1, 0]
    assert [r.execute_command("RL.ALLOW", "dflt") for _ in range(2)] == [1, 0]
    assert [r.execute_command("RL.THROTTLE", "inline", "LIMIT", 1, "WINDOW", 60000)[0]
            for _ in range(2)] == [1, 0]
    # A shadow policy's would-be denial is allowed, and counted as allowed.
    assert [r.execute_command("RL.ALLOW", "shadowed") for _ in range(2)] == [1, 1]
    r.execute_command("RL.RESET", "stored")
    with pytest.raises(redis.ResponseError, match="limit must be"):
        r.execute_command("RL.ALLOW", "bad", "LIMIT", "x", "WINDOW", 1)
    r.config_set("rl.scale-percent", 50)
    return {
        "rl_checks_allowed": 6, "rl_checks_denied": 3,
        "rl_checks_allowed_stored": 4, "rl_checks_denied_stored": 1,
        "rl_checks_allowed_default": 1, "rl_checks_denied_default": 1,
        "rl_checks_allowed_inline": 1, "rl_checks_denied_inline": 1,
        "rl_checks_shadow_denied": 1, "rl_errors": 1, "rl_configs_written": 2, "rl_resets": 1,
    }


def test_every_rl_field_is_exported(r, exporter):
    scraped = exporter.scrape()
    info = r.info("rl")
    assert DOCUMENTED_FIELDS <= set(info), "README's INFO rl table and the module disagree"
    assert set(scraped.rl()) == set(info)
    assert scraped.rl() == {k: float(v) for k, v in info.items()}


def test_exported_fields_move_with_traffic(r, exporter):
    before = exporter.scrape()
    calls_before = {c: before.get("redis_commands_total", cmd=c) or 0
                    for c in ("rl.allow", "rl.throttle")}
    expected = traffic(r)
    after = exporter.scrape()

    moved = {k: after.rl()[k] - before.rl()[k] for k in expected}
    assert moved == expected
    assert after.rl()["rl_scale_percent"] == 50
    assert after.rl()["rl_live_buckets"] == r.dbsize() == 4  # stored, shadowed, dflt, inline
    assert after.rl()["rl_top_tracked"] >= 1
    # The server's own per-command figures: calls (errors inside a command count as calls
    # and as failed calls) and latency percentiles.
    assert after.get("redis_commands_total", cmd="rl.allow") - calls_before["rl.allow"] == 8
    assert after.get("redis_commands_total", cmd="rl.throttle") - calls_before["rl.throttle"] == 2
    assert after.get("redis_commands_failed_calls_total", cmd="rl.allow") >= 1
    for cmd in ("rl.allow", "rl.throttle"):
        for q in ("50", "99"):
            assert after.get("redis_latency_percentiles_usec", cmd=cmd, quantile=q) > 0


def dashboard_queries():
    dash = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    # label_values(series, label) is Grafana's: Prometheus is asked for the series.
    exprs += [re.fullmatch(r"label_values\((.*),\s*\w+\)", v["definition"]).group(1)
              for v in dash["templating"]["list"] if v["type"] == "query"]
    return dash, exprs


# PromQL words that are not metric names.
PROMQL_WORDS = {
    "sum", "rate", "max", "min", "avg", "count", "irate", "increase",
    "histogram_quantile", "clamp_min", "and", "or", "unless",
}


def test_dashboard_names_only_scraped_series(r, exporter):
    traffic(r)
    scraped = exporter.scrape()
    dash, exprs = dashboard_queries()
    assert all(p["targets"] for p in dash["panels"])
    used_keys = set()
    for expr in exprs:
        bare = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # label values, then names
        # Then label matchers, grouping clauses, ranges and Grafana variables: what is left
        # is metric and function names.
        bare = re.sub(r"\{[^}]*\}|\b(?:by|without)\s*\([^)]*\)|\[[^\]]*\]|\$\w+", " ", bare)
        for name in set(re.findall(r"[a-zA-Z_:][\w:]*", bare)) - PROMQL_WORDS:
            assert name in scraped.names(), f"{name} is not in the scrape: {expr}"
        for label, op, value in re.findall(r'(\w+)\s*(=~|=)\s*"((?:[^"\\]|\\.)*)"', expr):
            if "$" in value:
                continue
            value = value.encode().decode("unicode_escape")  # PromQL string -> regex text
            present = set().union(*(scraped.label_values(n, label) for n in scraped.names()))
            hits = {v for v in present if (re.fullmatch(value, v) if op == "=~" else v == value)}
            assert hits, f'{label}{op}"{value}" matches nothing in the scrape: {expr}'
            if label == "key":
                used_keys |= hits
    assert used_keys == set(scraped.rl()), "a field the exporter has is on no panel"


@pytest.fixture(scope="module")
def prometheus(exporter, tmp_path_factory):
    if shutil.which(PROMETHEUS) is None:
        pytest.fail(f"{PROMETHEUS} not found: scripts/deps.sh installs it (Debian prometheus)")
    work = tmp_path_factory.mktemp("prometheus")
    (work / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: rl\n    static_configs: [{{targets: ['127.0.0.1:{exporter.port}']}}]\n")

    def argv(port):
        return [PROMETHEUS, f"--config.file={work / 'prometheus.yml'}",
                f"--storage.tsdb.path={work / 'data'}", f"--web.listen-address=127.0.0.1:{port}"]

    def ready(p):
        return p.query("redis_up") != []

    p = Process(work, "prometheus")
    p.query = lambda q: prom_query(p.port, q)
    yield p.start(argv, ready)
    p.stop()


def prom_query(port, q):
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": q})
    body = json.loads(http_get(url))
    assert body["status"] == "success", body
    return body["data"]["result"]


def test_dashboard_queries_return_data_in_prometheus(r, prometheus):
    def scrapes():
        return float(prometheus.query("count_over_time(redis_up[5m])")[0]["value"][1])

    n = scrapes()
    traffic(r)
    # rate() needs a sample before and after the traffic in its window.
    wait_until(lambda: scrapes() >= n + 2, timeout=30)
    _, exprs = dashboard_queries()
    for expr in exprs:
        q = expr.replace("$__rate_interval", "5m").replace("$instance", ".*")
        assert prometheus.query(q), f"no data: {expr}"
