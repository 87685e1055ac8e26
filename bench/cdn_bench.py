"""Varnish in front of feedsvc (deploy/varnish.vcl): throughput, and what reaches the origin.

    .venv/bin/python bench/cdn_bench.py [--articles 1000] [--duration 10] [--repeat 3]
        [--polls 10000] [--poll-seconds 60] [--max-age 5] [--edit-every 5]

What one run does (about 4 minutes with the defaults):

1. Throughput: granian (serve_bench's flags) with FEEDSVC_EDGE_MAX_AGE, Varnish with the
   shipped VCL in front, and nginx serving the very bytes feedsvc sent (serve_bench's
   helpers); wrk measures requests/s and p99 for a feed with gzip, a 304 and a page with
   gzip, through Varnish, from nginx and from feedsvc directly, runs alternating.
2. Origin load: --polls conditional GETs (gzip, If-None-Match as each of 200 pollers last
   saw it) of the site and section feeds in every format, spread evenly over
   --poll-seconds, while a new article is published every --edit-every seconds, through
   Varnish, twice: without purging (no edge lifetime: the edge follows
   `Cache-Control: max-age=--max-age`, standing in for the default 300 s on a compressed
   time scale) and with purging (edge lifetime a day, FEEDSVC_PURGE_URLS at Varnish).
   Counts the requests that reached the origin (varnishncsa -b) by status, and how late
   each new article was seen through the edge.

Needs varnish, varnish-modules, nginx and wrk (`apt-get install varnish varnish-modules
nginx wrk`). Only 127.0.0.1 is used; every process started is stopped by its PID.
"""

from __future__ import annotations

import argparse
import collections
import logging
import os
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from bench.harness import (  # noqa: E402  (needs the project root on sys.path)
    GRANIAN_FLAGS,
    BenchError,
    Processes,
    ensure_corpus,
    fetch,
    free_port,
    wait_ok,
)
from bench.serve_bench import (  # noqa: E402
    GZIP,
    CpuMeter,
    Nginx,
    Report,
    paired_load_runs,
    require_tools,
    server_argv,
    table,
)
from tests import varnish  # noqa: E402

log = logging.getLogger("cdn_bench")
SECTIONS = ("business", "culture", "food", "news", "opinion", "science", "sport", "travel")
FORMATS = ("xml", "atom", "json")
POLLERS = 200
POLL_THREADS = 8


def start_origin(procs: Processes, site: Path, workdir: Path, port: int, **settings) -> object:
    """Start granian on `site` with FEEDSVC_<key> settings; wait until it answers."""
    env = dict(os.environ)
    env.update({f"FEEDSVC_{key}": str(value) for key, value in settings.items()})
    env["FEEDSVC_CONTENT_DIR"] = str(site)
    env["FEEDSVC_STATE_DIR"] = str(workdir / f"state-{port}")
    argv = server_argv("granian", port, GRANIAN_FLAGS)
    started = procs.start(f"granian:{port}", argv, env, workdir / f"granian-{port}.log", port)
    wait_ok(started, "/healthz", started.started_at + 120)
    return started


def start_varnish(procs: Processes, workdir: Path, port: int, origin_port: int) -> tuple:
    """Start varnishd with the shipped VCL in front of `origin_port`; return it and its folder."""
    work = workdir / f"varnish-{port}"
    work.mkdir()
    argv = varnish.varnishd_argv(work, port, origin_port)
    started = procs.start("varnishd", argv, dict(os.environ), work / "varnishd.log")
    try:
        varnish.wait_for_varnish(port, started.popen, work / "varnishd.log")
    except RuntimeError as exc:
        raise BenchError(f"{exc}\n{started.log_tail()}") from None
    return started, work


def throughput(args, procs: Processes, site: Path, workdir: Path, nginx_path: str):
    """Measure requests/s through Varnish, from nginx and from feedsvc, alternating."""
    origin_port, edge_port = free_port(), free_port()
    origin = start_origin(
        procs, site, workdir, origin_port, SITE_URL=f"http://127.0.0.1:{edge_port}",
        EDGE_MAX_AGE=86400,
    )  # fmt: skip
    edge, _ = start_varnish(procs, workdir, edge_port, origin_port)
    report = Report(args.articles, args, GRANIAN_FLAGS)
    nginx = Nginx(procs, nginx_path, workdir, report)
    try:
        paths = [f"/{name}.{ext}" for name in ("feed", *SECTIONS) for ext in FORMATS]
        nginx_port = nginx.ensure(edge_port, [*paths, args.page])
        ports = {"varnish": edge_port, "nginx": nginx_port, "feedsvc": origin_port}
        return paired_load_runs(ports, args.page, args, CpuMeter(procs))
    finally:
        nginx.stop()
        procs.stop(edge)
        procs.stop(origin)


def poll(args, procs: Processes, corpus: Path, workdir: Path, purge: bool) -> dict:
    """Poll the feeds through Varnish while articles are published; count origin requests."""
    site = workdir / ("site-purge" if purge else "site-plain")
    shutil.copytree(corpus, site)
    origin_port, edge_port = free_port(), free_port()
    settings = {"SITE_URL": f"http://127.0.0.1:{edge_port}", "FEED_MAX_AGE": args.max_age}
    if purge:
        settings.update(EDGE_MAX_AGE=86400, PURGE_URLS=f"http://127.0.0.1:{edge_port}")
    origin = start_origin(procs, site, workdir, origin_port, **settings)
    edge, work = start_varnish(procs, workdir, edge_port, origin_port)
    backend_log = work / "backend.log"
    ncsa = procs.start(
        "varnishncsa",
        [
            varnish.VARNISHNCSA,
            "-b",
            "-n",
            work / "instance",
            "-F",
            "%{VSL:BerespStatus}x %U",
            "-w",
            backend_log,
        ],
        dict(os.environ),
        work / "varnishncsa.log",
    )
    time.sleep(1.0)  # varnishncsa attaches to the instance
    urls = [f"/{name}.{ext}" for name in ("feed", *SECTIONS) for ext in FORMATS]
    etags: dict[tuple[int, str], str] = {}
    statuses = collections.Counter()
    published: dict[str, float] = {}
    seen_late: dict[str, float] = {}
    origin_late: dict[str, float] = {}
    lock = threading.Lock()

    def one_poll(n: int, due: float) -> None:
        time.sleep(max(0.0, due - time.monotonic()))
        poller, url = n % POLLERS, urls[n % len(urls)]
        headers = dict(GZIP)
        if (poller, url) in etags:
            headers["If-None-Match"] = etags[poller, url]
        reply = fetch(edge_port, url, headers)
        with lock:
            statuses[reply.status] += 1
            if reply.status == 200:
                etags[poller, url] = reply.headers.get("etag", "")

    def watch(slug: str, needle: bytes, until: float) -> None:
        """Record when the new article shows at the origin and through the edge."""
        while time.monotonic() < until and slug not in seen_late:
            if slug not in origin_late and needle in fetch(origin_port, "/feed.xml").body:
                origin_late[slug] = time.monotonic() - published[slug]
            if needle in fetch(edge_port, "/feed.xml").body:
                seen_late[slug] = time.monotonic() - published[slug]
            time.sleep(0.02)

    def publish(count: int, due: float) -> None:
        """Write a new article at `due`, in the next section, and watch for it."""
        time.sleep(max(0.0, due - time.monotonic()))
        slug, section = f"bench-edit-{count}", SECTIONS[count % len(SECTIONS)]
        now = datetime.now(UTC).isoformat(timespec="seconds")
        (site / section / f"{slug}.md").write_text(
            f'---\ntitle: "Bench edit {count}"\ndate: {now}\n---\nNew.\n'
        )
        published[slug] = time.monotonic()
        watch(slug, f"Bench edit {count}".encode(), stop + args.max_age + 5)

    started = time.monotonic()
    stop = started + args.poll_seconds
    edits = int(args.poll_seconds // args.edit_every) - 1
    watchers = [
        threading.Thread(target=publish, args=(n, started + n * args.edit_every), daemon=True)
        for n in range(1, edits + 1)
    ]
    for watcher in watchers:
        watcher.start()
    interval = args.poll_seconds / args.polls
    with ThreadPoolExecutor(POLL_THREADS) as pool:
        list(pool.map(lambda n: one_poll(n, started + n * interval), range(args.polls)))
    for watcher in watchers:
        watcher.join(timeout=args.max_age + 30)
    time.sleep(1.0)  # varnishncsa writes its last lines
    procs.stop(ncsa)
    procs.stop(edge)
    procs.stop(origin)
    origin_statuses = collections.Counter(
        line.split()[0]
        for line in backend_log.read_text().splitlines()
        if line.split()[1:] and line.split()[1] != "/healthz"
    )
    return {
        "polls": sum(statuses.values()),
        "client statuses": dict(statuses),
        "origin": dict(origin_statuses),
        "origin total": sum(origin_statuses.values()),
        "edits": len(published),
        "late": sorted(seen_late.values()),
        "origin late": sorted(origin_late.values()),
    }


def render(args, load, polls) -> str:
    lines = [f"# cdn_bench: {args.articles} articles, {time.strftime('%Y-%m-%d %H:%M')}", ""]
    if load:
        lines.append(
            f"Throughput (wrk -t2 -c{args.connections} -d{args.duration}s,"
            f" median of {args.repeat}):"
        )
        rows = [["scenario", *(f"{name} req/s (p99 ms)" for name in load)]]
        for scenario in next(iter(load.values())):
            cells = [scenario]
            for name in load:
                measured = load[name][scenario]
                cells.append(f"{measured.requests_per_s:,.0f} ({measured.p99_ms:.2f})")
            rows.append(cells)
        lines += table(rows)
    lines += [
        "",
        f"Origin requests for {args.polls:,} polls over {args.poll_seconds} s of"
        f" {len(SECTIONS) + 1} feeds x {len(FORMATS)} formats,"
        f" a new article every {args.edit_every} s:",
    ]
    rows = [["edge", "polls", "origin requests", "per 10,000 polls", "new article seen after (s)"]]
    for name, result in polls.items():
        late = result["late"]
        seen = "never"
        if late:
            seen = f"edge: median {statistics.median(late):.2f}, max {max(late):.2f}"
            seen += f" ({len(late)}/{result['edits']})"
        if result["origin late"]:
            seen += f"; origin: median {statistics.median(result['origin late']):.2f}"
        per = 10_000 * result["origin total"] / max(result["polls"], 1)
        origin = ", ".join(f"{n} x {s}" for s, n in sorted(result["origin"].items()))
        rows.append([name, f"{result['polls']:,}", origin, f"{per:,.0f}", seen])
    lines += table(rows)
    return "\n".join(lines) + "\n"


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=1000)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--page", default="/news/")
    parser.add_argument("--polls", type=int, default=10_000)
    parser.add_argument("--poll-seconds", type=int, default=60)
    parser.add_argument("--max-age", type=int, default=5, help="FEED_MAX_AGE without purging")
    parser.add_argument("--edit-every", type=float, default=5.0)
    parser.add_argument("--skip-throughput", action="store_true")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    if varnish.missing():
        log.error("cdn_bench: %s", varnish.missing())
        return 1
    procs = Processes()
    workdir = Path(tempfile.mkdtemp(prefix="feedsvc-cdn-bench-"))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        nginx_path, _ = require_tools()  # wrk: found by name again in harness.wrk_argv
        corpus = ensure_corpus(args.articles)
        load = {}
        if not args.skip_throughput:
            load = throughput(args, procs, corpus, workdir, nginx_path)
        polls = {
            "no purge (Cache-Control only)": poll(args, procs, corpus, workdir, purge=False),
            "purge (edge lifetime 1 day)": poll(args, procs, corpus, workdir, purge=True),
        }
    except BenchError as exc:
        log.error("cdn_bench: %s", exc)
        return 1
    finally:
        procs.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
    sys.stdout.write(render(args, load, polls))
    return 0


if __name__ == "__main__":
    sys.exit(main())
