"""Draws grafana-dashboard.json's panels from a live Prometheus into a PNG, without Grafana:
the same queries, the same layout (Grafana's 24-column grid), plain matplotlib.

    python3 monitoring/preview.py http://127.0.0.1:9090 [--minutes 10] [--rate 30s] [--out PNG]

For a look at the dashboard where Grafana is not installed (it is not in Debian), and for
the picture in monitoring/README.md. `$instance` is every server; `$__rate_interval` is
--rate (Grafana uses 4 scrape intervals at least).
"""

import argparse
import json
import re
import time
import urllib.parse
import urllib.request
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

DASHBOARD = Path(__file__).resolve().parent / "grafana-dashboard.json"
# Grafana unit -> (scale, axis label)
UNITS = {"reqps": (1, "per second"), "percentunit": (100, "%"), "µs": (1, "µs"),
         "s": (1e6, "µs"), "percent": (1, "%"), "short": (1, "")}


def query_range(base, expr, start, end, step):
    qs = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": step})
    with urllib.request.urlopen(f"{base}/api/v1/query_range?{qs}", timeout=30) as resp:
        body = json.loads(resp.read())
    if body["status"] != "success":
        raise RuntimeError(f"{expr}: {body}")
    return body["data"]["result"]


def legend(fmt, labels):
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), fmt) or str(labels)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("prometheus", help="Prometheus base URL")
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--rate", default="30s", help="what $__rate_interval stands for")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "dashboard.png"))
    args = ap.parse_args()
    dash = json.loads(DASHBOARD.read_text())
    end = time.time()
    start, step = end - args.minutes * 60, max(1.0, args.minutes * 60 / 300)
    rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in dash["panels"])
    fig = plt.figure(figsize=(18, rows * 0.42))
    grid = fig.add_gridspec(rows, 24, hspace=6, wspace=4, top=0.95)
    for p in dash["panels"]:
        g = p["gridPos"]
        ax = fig.add_subplot(grid[g["y"]:g["y"] + g["h"] - 1, g["x"]:g["x"] + g["w"]])
        ax.set_title(p["title"], fontsize=10, loc="left")
        scale, unit = UNITS.get(p["fieldConfig"]["defaults"].get("unit", "short"), (1, ""))
        series = []
        for t in p["targets"]:
            expr = t["expr"].replace("$__rate_interval", args.rate).replace("$instance", ".*")
            for s in query_range(args.prometheus, expr, start, end, step):
                xs = [(float(ts) - end) / 60 for ts, _ in s["values"]]
                ys = [float(v) * scale for _, v in s["values"]]
                series.append((legend(t["legendFormat"], s["metric"]), xs, ys))
        if p["type"] == "stat":
            ax.axis("off")
            text = "\n".join(f"{name}: {ys[-1]:g}{unit}" for name, _, ys in series) or "no data"
            ax.text(0.5, 0.45, text, ha="center", va="center", fontsize=16, transform=ax.transAxes)
            continue
        for name, xs, ys in series:
            ax.plot(xs, ys, label=name, linewidth=1.2)
        ax.set_ylabel(unit, fontsize=8)
        ax.set_xlabel("minutes ago", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if series:
            ax.legend(fontsize=7, loc="upper left")
        else:
            ax.text(0.5, 0.5, "no data", ha="center", transform=ax.transAxes)
    fig.suptitle(f"{dash['title']}: last {args.minutes:g} minutes "
                 f"(monitoring/preview.py, not Grafana)", fontsize=12)
    fig.savefig(args.out, dpi=80, bbox_inches="tight")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
