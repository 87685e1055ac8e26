"""Measure feedsvc's production server side by side with nginx serving the same feed bytes.

    .venv/bin/python bench/serve_bench.py [--articles 10000] [--duration 10] [--connections 64]
        [--repeat 3] [--servers granian,gunicorn,floor-wsgi,floor-rsgi]
        [--granian-flags "--workers 2 ..."]
        [--skip-cold-start] [--out FILE] [--keep]

What one run does (about 5 minutes per server with the defaults):

1. Writes (once) a seeded site of --articles articles and one of 100 articles with
   bench/corpus.py, cached under /tmp/feedsvc-bench/<N>; reads the feed formats (xml, atom, …)
   from the home page's autodiscovery links.
2. Cold start, per server: spawns the server on the big site and times process start until
   /healthz and every feed (/feed.* and /<section>.* in every format) have answered 200 once,
   with one sequential client (poll /healthz until it answers, then fetch each feed) and with
   4 concurrent clients; the same again for the 100-article site.
3. Load: copies what the warm server sends for every feed and for the page (identity and gzip
   bytes) into a root that nginx serves with `gzip_static on`, checks nginx sends the same
   gzip bytes, then with wrk (-t2 -c<connections> -d<duration> --latency, after a warm-up)
   measures requests/s and p99 latency for the full site feed with gzip, for a 304 answered
   to If-None-Match (each server's own gzip ETag), and for a section page with gzip. Runs
   alternate between feedsvc and nginx, --repeat times; the table shows medians.
   The floors (`floor-wsgi`, `floor-rsgi`, listed after a feedsvc server) are granian with
   the same flags serving nginx's root through bench/floor_app.py, a dict lookup per
   request, through its WSGI or RSGI interface: the best any Python app can do behind it.
   Each run also notes every server's CPU time per answer, which a busy machine skews far
   less than req/s.
4. Memory: RSS, and PSS from /proc/<pid>/smaps_rollup (pages shared by forked workers
   counted once), summed over master and workers after the load runs.

Every scenario is checked with one request first (status, Content-Encoding); wrk's count of
non-2xx/3xx answers and the bytes per answer (a 304 has no body) are checked too. wrk runs
on the same 2 cores as the servers; it takes the same share for both, so the ratios are fair
even though the absolute numbers are lower than with a separate load machine. Keep the
machine otherwise idle: the script warns when the CPUs are busy before it starts.

Needs nginx and wrk; on Debian or Ubuntu: `apt-get install nginx wrk`. Only 127.0.0.1 is
used. Every process the script starts is stopped by its PID when it ends, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import email.utils
import gzip
import importlib.util
import logging
import math
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (
    GRANIAN_FLAGS,
    HOST,
    SECTIONS,
    STARTUP_TIMEOUT,
    BenchError,
    Memory,
    Processes,
    Started,
    WrkResult,
    cpu_ticks,
    descendants,
    ensure_corpus,
    expect,
    feed_paths,
    fetch,
    free_port,
    git_state,
    granian_argv,
    measure_memory,
    nginx_file,
    python_tool,
    run_wrk,
    setup_logging,
    start_feedsvc,
    start_nginx,
    wait_ok,
)

log = logging.getLogger("serve_bench")

SMALL_SITE = 100
GUNICORN_FLAGS = ("--workers", "2", "--worker-class", "gthread", "--threads", "4")
SERVERS = ("granian", "gunicorn", "floor-wsgi", "floor-rsgi")
# Granian with the production flags serving bench/floor_app.py: no feedsvc, the same bytes.
FLOORS = {
    "floor-wsgi": ("wsgi", "bench.floor_app:app"),
    "floor-rsgi": ("rsgi", "bench.floor_app:rsgi_app"),
}
WRK_THREADS = 2
WARMUP_SECONDS = 3
COLD_CLIENTS = 4
IDLE_CHECK_SECONDS = 1.0
# Above this share of CPU taken by other processes during a run, the report says so.
NOISY_SHARE = 0.05
FEED_PATH = "/feed.xml"
GZIP = {"Accept-Encoding": "gzip"}
# A 304 carries headers only; anything bigger means wrk got full bodies.
MAX_304_BYTES = 1024
TARGET_RATIO = 0.5
TARGET_COLD_SECONDS = 3.0
TARGET_MEMORY_MB = 250.0


class _AlternateLinks(HTMLParser):
    """Collect the href of every <link rel="alternate"> (feed autodiscovery)."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "link" and "alternate" in (found.get("rel") or "").split() and found.get("href"):
            self.hrefs.append(found["href"])


def discover_feed_extensions(port: int) -> list[str]:
    """Return the feed formats (extensions such as xml, atom) the home page links to."""
    page = expect(fetch(port, "/"), 200, "home page")
    parser = _AlternateLinks()
    parser.feed(page.body.decode("utf-8"))
    paths = [urlsplit(href).path for href in parser.hrefs]
    extensions = sorted({path.rsplit(".", 1)[1] for path in paths if path.startswith("/feed.")})
    if not extensions:
        raise BenchError("the home page links to no /feed.* feed")
    return extensions


# --- servers -------------------------------------------------------------------------------


def server_argv(server: str, port: int, granian_flags: Sequence[str]) -> list[str]:
    """Return the command line that serves wsgi:app with `server` on 127.0.0.1:port."""
    if server == "granian":
        return granian_argv(port, granian_flags)
    if server == "gunicorn":
        return [*python_tool("gunicorn"), *GUNICORN_FLAGS, "--bind", f"{HOST}:{port}", "wsgi:app"]
    if server in FLOORS:
        interface, target = FLOORS[server]
        flags = list(granian_flags)
        flags[flags.index("--interface") + 1] = interface
        return [*granian_argv(port, flags)[:-1], target]
    raise ValueError(server)


def start_server(
    procs: Processes, server: str, site: Path, workdir: Path, granian_flags: Sequence[str]
) -> tuple[Started, int]:
    """Start feedsvc with `server` on a free port, serving `site`; don't wait for it."""
    argv = partial(server_argv, server, granian_flags=granian_flags)
    started = start_feedsvc(procs, server, argv, site, workdir / f"{server}.log")
    return started, started.port


@dataclass(frozen=True)
class ColdStart:
    """Seconds from process start until /healthz, and until every feed, first answered."""

    healthz: float
    all_feeds: float


def cold_start_sequential(started: Started, feeds: list[str]) -> ColdStart:
    """One client: poll /healthz until it answers, then fetch each feed in turn."""
    deadline = started.started_at + STARTUP_TIMEOUT
    healthz = wait_ok(started, "/healthz", deadline)
    done = healthz
    for path in feeds:
        done = wait_ok(started, path, deadline)
    return ColdStart(healthz - started.started_at, done - started.started_at)


def cold_start_concurrent(started: Started, feeds: list[str]) -> ColdStart:
    """COLD_CLIENTS clients fetch /healthz and every feed at once, as a busy site sees it."""
    deadline = started.started_at + STARTUP_TIMEOUT
    paths = ["/healthz", *feeds]
    with ThreadPoolExecutor(COLD_CLIENTS) as pool:
        times = list(pool.map(lambda path: wait_ok(started, path, deadline), paths))
    return ColdStart(times[0] - started.started_at, max(times) - started.started_at)


def measure_cold_start(
    procs: Processes,
    server: str,
    site: Path,
    workdir: Path,
    report: Report,
    concurrent: bool,
    keep_running: bool = False,
) -> tuple[ColdStart, Started, int]:
    """Start a fresh server on `site` and time its cold start; stop it unless asked not to."""
    started, port = start_server(procs, server, site, workdir, report.granian_flags)
    try:
        measure = cold_start_concurrent if concurrent else cold_start_sequential
        result = measure(started, feed_paths(site, report.feed_extensions))
    except BaseException:
        procs.stop(started)
        raise
    mode = f"{COLD_CLIENTS} clients" if concurrent else "1 client"
    log.info(
        "cold start %s, %s, %s: healthz %.2f s, every feed %.2f s",
        server,
        site.name,
        mode,
        result.healthz,
        result.all_feeds,
    )
    if not keep_running:
        procs.stop(started)
    return result, started, port


# --- nginx ---------------------------------------------------------------------------------


def copy_to_nginx_root(port: int, paths: list[str], root: Path) -> dict[str, bytes]:
    """Write what feedsvc sends for each path (identity and gzip) as nginx's static files.

    Returns the gzip bytes per path, to check nginx sends exactly those.
    """
    gzipped = {}
    for path in paths:
        plain = expect(fetch(port, path), 200, f"feedsvc {path}")
        packed = expect(fetch(port, path, GZIP), 200, f"feedsvc {path} gzip", "gzip")
        if gzip.decompress(packed.body) != plain.body:
            raise BenchError(f"feedsvc {path}: gzip body does not match the identity body")
        target = nginx_file(root, path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(plain.body)
        target.with_name(target.name + ".gz").write_bytes(packed.body)
        modified = email.utils.parsedate_to_datetime(plain.headers["last-modified"]).timestamp()
        for file in (target, target.with_name(target.name + ".gz")):
            os.utime(file, (modified, modified))
        gzipped[path] = packed.body
    return gzipped


# --- load ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """One wrk run: a path, request headers and the size of each correct answer's body."""

    path: str
    headers: dict[str, str]
    body_bytes: int  # 0: a 304, headers only


def run_scenario(port: int, scenario: Scenario, seconds: float, connections: int) -> WrkResult:
    """Run wrk once against 127.0.0.1:port and check the answers were the expected kind."""
    url = f"http://{HOST}:{port}{scenario.path}"
    result = run_wrk(url, scenario.headers, seconds, WRK_THREADS, connections)
    problems = []
    if result.bad_status:
        problems.append(f"{result.bad_status} non-2xx/3xx")
    if result.socket_errors:
        problems.append(f"{result.socket_errors} socket errors")
    per_request = result.bytes_per_request
    if not scenario.body_bytes and per_request > MAX_304_BYTES:
        problems.append(f"{per_request:.0f} B per answer: not 304s")
    # wrk rounds the bytes it read to 3 digits: allow for that, not for missing bodies.
    if per_request < 0.98 * scenario.body_bytes:
        problems.append(f"{per_request:.0f} B per answer < body {scenario.body_bytes} B")
    if problems:
        result = replace(result, problem="; ".join(problems))
    return result


def scenarios_for(port: int, page_path: str, name: str) -> dict[str, Scenario]:
    """Check each scenario once with a single request and describe it for wrk, by name."""
    feed = expect(fetch(port, FEED_PATH, GZIP), 200, f"{name} {FEED_PATH} gzip", "gzip")
    etag = feed.headers.get("etag") or ""
    if not etag:
        raise BenchError(f"{name} {FEED_PATH}: no ETag")
    not_modified = {**GZIP, "If-None-Match": etag}
    expect(fetch(port, FEED_PATH, not_modified), 304, f"{name} {FEED_PATH} If-None-Match")
    page = expect(fetch(port, page_path, GZIP), 200, f"{name} {page_path} gzip", "gzip")
    return {
        "feed GET gzip": Scenario(FEED_PATH, GZIP, len(feed.body)),
        "feed 304": Scenario(FEED_PATH, not_modified, 0),
        "page GET gzip": Scenario(page_path, GZIP, len(page.body)),
    }


@dataclass(frozen=True)
class Measured:
    """Several wrk runs of one scenario against one server, summarised by their medians."""

    runs: tuple[WrkResult, ...]
    # The server's CPU time (every process and thread, user + system) per answer, per run.
    cpu_us: tuple[float, ...] = ()

    @property
    def requests_per_s(self) -> float:
        return statistics.median(run.requests_per_s for run in self.runs)

    @property
    def cpu_us_per_request(self) -> float:
        return statistics.median(self.cpu_us) if self.cpu_us else math.nan

    @property
    def p99_ms(self) -> float:
        return statistics.median(run.p99_ms for run in self.runs)

    @property
    def spread(self) -> str:
        """Lowest–highest requests/s over the runs."""
        rates = [run.requests_per_s for run in self.runs]
        return f"{min(rates) / 1000:.0f}–{max(rates) / 1000:.0f}k"

    @property
    def problem(self) -> str:
        return "; ".join(sorted({run.problem for run in self.runs if run.problem}))

    @property
    def foreign_cpu(self) -> float:
        """The highest share of CPU other processes took during one of the runs."""
        return max(run.foreign_cpu for run in self.runs)


class CpuMeter:
    """Tell how much CPU went to processes other than ours (servers, wrk, this script).

    Compares the machine's user+system time (/proc/stat) with that of our process trees;
    interrupt time is left out on both sides. A busy neighbour makes every number noisy.
    """

    def __init__(self, procs: Processes) -> None:
        self.procs = procs
        self.hz = os.sysconf("SC_CLK_TCK")
        self.cpus = len(os.sched_getaffinity(0))

    def sample(self) -> tuple[float, float, float]:
        """Return (wall time, machine busy seconds, our busy seconds)."""
        fields = [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        machine = (fields[0] + fields[1] + fields[2]) / self.hz  # user, nice, system
        ours = sum(cpu_ticks(pid) for pid in self.our_pids()) / self.hz
        times = os.times()  # this script, and wrk once it has been waited for
        ours += times.user + times.system + times.children_user + times.children_system
        return time.monotonic(), machine, ours

    def our_pids(self) -> list[int]:
        pids = []
        for started in self.procs.running:
            pids += [started.pid, *descendants(started.pid)]
        return pids

    def server_seconds(self, port: int) -> float:
        """Return the CPU time used so far by the server on `port` (master and workers)."""
        ticks = 0
        for started in self.procs.running:
            if started.port == port:
                ticks += sum(map(cpu_ticks, [started.pid, *descendants(started.pid)]))
        return ticks / self.hz

    def foreign_share(self, before: tuple, after: tuple) -> float:
        wall = (after[0] - before[0]) * self.cpus
        foreign = (after[1] - before[1]) - (after[2] - before[2])
        return max(foreign, 0.0) / wall if wall > 0 else 0.0


def paired_load_runs(
    ports: dict[str, int], page_path: str, args: argparse.Namespace, meter: CpuMeter
) -> dict[str, dict[str, Measured]]:
    """Measure every scenario on every server, alternating servers run by run.

    Alternating spreads the machine's drift (other tenants, CPU frequency) over all servers
    instead of charging it to whichever ran last.
    """
    plans = {name: scenarios_for(port, page_path, name) for name, port in ports.items()}
    results: dict[str, dict[str, Measured]] = {name: {} for name in ports}
    for scenario_name in next(iter(plans.values())):
        runs: dict[str, list[WrkResult]] = {name: [] for name in ports}
        cpu_us: dict[str, list[float]] = {name: [] for name in ports}
        for name, port in ports.items():
            run_scenario(port, plans[name][scenario_name], WARMUP_SECONDS, args.connections)
        for _ in range(args.repeat):
            for name, port in ports.items():
                scenario = plans[name][scenario_name]
                before, server_before = meter.sample(), meter.server_seconds(port)
                result = run_scenario(port, scenario, args.duration, args.connections)
                server_used = meter.server_seconds(port) - server_before
                foreign = meter.foreign_share(before, meter.sample())
                result = replace(result, foreign_cpu=foreign)
                runs[name].append(result)
                cpu_us[name].append(1e6 * server_used / max(result.requests, 1))
                log.info(
                    "%-8s %s: %.0f req/s, p99 %.2f ms, %.1f µs CPU/req, other processes "
                    "%.0f%% CPU%s",
                    name,
                    scenario_name,
                    result.requests_per_s,
                    result.p99_ms,
                    cpu_us[name][-1],
                    100 * foreign,
                    f" ({result.problem})" if result.problem else "",
                )
        for name in ports:
            results[name][scenario_name] = Measured(tuple(runs[name]), tuple(cpu_us[name]))
    return results


# --- report --------------------------------------------------------------------------------


@dataclass
class Report:
    """Everything measured, printed as plain text at the end."""

    articles: int
    args: argparse.Namespace
    granian_flags: Sequence[str]
    # server -> scenario -> runs; nginx's runs are kept per server they alternated with.
    load: dict[str, dict[str, Measured]] = field(default_factory=dict)
    nginx_load: dict[str, dict[str, Measured]] = field(default_factory=dict)
    memory: dict[str, Memory] = field(default_factory=dict)
    cold: dict[tuple[str, int, str], ColdStart] = field(default_factory=dict)
    feed_extensions: list[str] = field(default_factory=list)
    sizes: dict[str, str] = field(default_factory=dict)
    facts: list[str] = field(default_factory=list)


def table(rows: list[list[str]]) -> list[str]:
    """Format rows as a plain table with aligned columns separated by |."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [" | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return [line.rstrip() for line in lines]


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def load_table(report: Report) -> list[str]:
    """The side-by-side table: medians, spreads and ratios per scenario and server."""
    header = ["scenario", "server", "req/s", "(range)", "p99"]
    header += ["nginx req/s", "(range)", "nginx p99", "ratio", "target"]
    header += ["CPU/req", "nginx CPU/req", "CPU ratio"]
    rows = [header]
    for server, results in report.load.items():
        for name, mine in results.items():
            ref = report.nginx_load[server][name]
            ratio = mine.requests_per_s / ref.requests_per_s
            target = f">= {TARGET_RATIO} {verdict(ratio >= TARGET_RATIO)}"
            rows.append(
                [
                    name,
                    server,
                    f"{mine.requests_per_s:,.0f}",
                    mine.spread,
                    f"{mine.p99_ms:.2f} ms",
                    f"{ref.requests_per_s:,.0f}",
                    ref.spread,
                    f"{ref.p99_ms:.2f} ms",
                    f"{ratio:.2f}",
                    target if name.startswith("feed") else "",
                    f"{mine.cpu_us_per_request:.1f} µs",
                    f"{ref.cpu_us_per_request:.1f} µs",
                    f"{ref.cpu_us_per_request / mine.cpu_us_per_request:.2f}",
                ]
            )
    problems = [
        f"  ! {server} {name}: {measured.problem}"
        for loads in (report.load, report.nginx_load)
        for server, results in loads.items()
        for name, measured in results.items()
        if measured.problem
    ]
    problems = problems or ["  (every run: only the expected status, no socket errors)"]
    foreign = [
        m.foreign_cpu
        for loads in (report.load, report.nginx_load)
        for r in loads.values()
        for m in r.values()
    ]
    noisy = max(foreign, default=0.0)
    note = f"  other processes took at most {100 * noisy:.0f}% of the CPUs during a run"
    if noisy > NOISY_SHARE:
        note += " — the machine was not idle; numbers are noisy"
    return [*table(rows), *problems, note]


def memory_lines(report: Report) -> list[str]:
    lines = []
    for server, mem in report.memory.items():
        judged = ""
        if server != "nginx" and server not in FLOORS:
            ok = mem.pss_mb < TARGET_MEMORY_MB
            judged = f"  target < {TARGET_MEMORY_MB:.0f} MB (PSS): {verdict(ok)}"
        lines.append(
            f"memory {server:<8} {mem.processes} processes: RSS {mem.rss_mb:.0f} MB, "
            f"PSS {mem.pss_mb:.0f} MB{judged}"
        )
    return lines


def cold_start_lines(report: Report) -> list[str]:
    lines = []
    for (server, articles, mode), cold in report.cold.items():
        judged = ""
        if articles == report.articles:
            judged = f"  target < {TARGET_COLD_SECONDS:.0f} s: "
            judged += verdict(cold.all_feeds < TARGET_COLD_SECONDS)
        lines.append(
            f"cold start {server:<8} {articles:>6} articles, {mode:<9}: every feed "
            f"{cold.all_feeds:5.2f} s (healthz {cold.healthz:5.2f} s){judged}"
        )
    return lines


def render(report: Report) -> str:
    """Return the report as the text the script prints."""
    args = report.args
    out = [
        f"feedsvc vs nginx, same bytes — {report.articles} articles; wrk -t{WRK_THREADS} "
        f"-c{args.connections} -d{args.duration}s --latency, median of {args.repeat} runs "
        f"alternating with nginx's, after a {WARMUP_SECONDS} s warm-up each",
        "",
        *load_table(report),
        "",
        *(f"{what}: {size}" for what, size in report.sizes.items()),
        "",
        *memory_lines(report),
        "",
        *cold_start_lines(report),
        "",
        "ratio = the server's median req/s / nginx's; p99 = median of the runs' p99.",
        "CPU/req = the server's CPU time (all processes, user + system) during a run / answers;",
        "  CPU ratio = nginx's / the server's: unlike req/s, it holds on a busy machine.",
        "floor-wsgi, floor-rsgi = granian with the same flags serving the nginx root through",
        "  bench/floor_app.py (no feedsvc): granian's own cost, the best a Python app can do.",
        "cold start = process spawn until /healthz and every feed answered 200 once: "
        f"{len(report.feed_extensions) * (1 + SECTIONS)} URLs, /feed.* and /<section>.* for "
        + ", ".join(report.feed_extensions)
        + ";",
        "  1 client: poll /healthz, then fetch each feed in turn; "
        f"{COLD_CLIENTS} clients: all URLs at once; a new connection per request.",
        "memory = master + workers after the load runs; PSS counts pages shared by forks once.",
        "wrk runs on the same cores as the server under test, for feedsvc and nginx alike.",
        "",
        "granian: " + shlex.join(report.granian_flags),
        "gunicorn: " + shlex.join(GUNICORN_FLAGS),
        "command: " + shlex.join([sys.executable, *sys.argv]),
        *report.facts,
    ]
    return "\n".join(out) + "\n"


def machine_facts(nginx: str, wrk: str) -> list[str]:
    """Return lines naming the machine and the versions of everything measured."""

    def version(argv: list) -> str:
        try:
            done = subprocess.run(list(map(str, argv)), capture_output=True, text=True, check=False)
        except OSError:
            return "?"
        return ((done.stdout + done.stderr).strip().splitlines() or ["?"])[0]

    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return [
        f"machine: nproc {len(os.sched_getaffinity(0))}, {cpu}, {pages / 2**30:.0f} GiB RAM, "
        f"Linux {platform.release()}, Python {platform.python_version()}",
        f"feedsvc: git {git_state()}",
        "versions: "
        + "; ".join(
            [
                version([*python_tool("granian"), "--version"]),
                version([*python_tool("gunicorn"), "--version"]),
                version([nginx, "-v"]),
                version([wrk, "-v"]).split(" Copyright")[0],
            ]
        ),
    ]


# --- the run -------------------------------------------------------------------------------


def require_tools() -> tuple[str, str]:
    """Return the paths of nginx and wrk, or stop with how to install them."""
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])
    nginx, wrk = shutil.which("nginx", path=search), shutil.which("wrk", path=search)
    if not (nginx and wrk):
        missing = " and ".join(name for name, path in (("nginx", nginx), ("wrk", wrk)) if not path)
        raise BenchError(f"{missing} not found; install with: apt-get install nginx wrk")
    for tool in ("granian", "gunicorn"):
        if importlib.util.find_spec(tool) is None:
            raise BenchError(f"{tool} missing; run with the project's .venv/bin/python")
    return nginx, wrk


class Nginx:
    """nginx serving what the first warm feedsvc sent, started on first use."""

    def __init__(self, procs: Processes, nginx: str, workdir: Path, report: Report):
        self.procs, self.nginx, self.workdir, self.report = procs, nginx, workdir, report
        self.root = workdir / "nginx-root"
        self.started: Started | None = None
        self.port = 0

    def ensure(self, feedsvc_port: int, paths: list[str]) -> int:
        """Copy feedsvc's bytes, start nginx and check it sends them; return its port."""
        if self.started is None:
            served = copy_to_nginx_root(feedsvc_port, paths, self.root)
            log.info("nginx root: %d files in %s", 2 * len(paths), self.root)
            self.started = start_nginx(self.procs, self.nginx, self.workdir, self.root, FEED_PATH)
            self.port = self.started.port
            verify_nginx_bytes(self.port, served)
            self.note_sizes(served)
        return self.port

    def note_sizes(self, served: dict[str, bytes]) -> None:
        for path in (FEED_PATH, self.report.args.page):
            identity = nginx_file(self.root, path).stat().st_size
            self.report.sizes[path] = f"{identity:,} B, gzip {len(served[path]):,} B"

    def stop(self) -> None:
        if self.started is not None:
            self.procs.stop(self.started)
            self.started = None


def verify_nginx_bytes(port: int, served: dict[str, bytes]) -> None:
    """Check nginx sends byte for byte the gzip body feedsvc sent."""
    for path, body in served.items():
        reply = expect(fetch(port, path, GZIP), 200, f"nginx {path} gzip", "gzip")
        if reply.body != body:
            raise BenchError(f"nginx {path}: gzip body differs from feedsvc's")


def bench_server(
    procs: Processes,
    server: str,
    sites: dict[int, Path],
    workdir: Path,
    report: Report,
    nginx: Nginx,
) -> None:
    """Cold starts, then load runs (alternating with nginx's) and memory of one server."""
    args = report.args
    if server in FLOORS:
        bench_floor(procs, server, workdir, report, nginx)
        return
    big = sites[report.articles]
    if not args.skip_cold_start:
        cold, _, _ = measure_cold_start(procs, server, big, workdir, report, concurrent=False)
        report.cold[server, report.articles, "1 client"] = cold
    cold, started, port = measure_cold_start(
        procs, server, big, workdir, report, concurrent=True, keep_running=True
    )
    if not args.skip_cold_start:
        report.cold[server, report.articles, f"{COLD_CLIENTS} clients"] = cold
    try:
        nginx_port = nginx.ensure(port, [*feed_paths(big, report.feed_extensions), args.page])
        ports = {server: port, "nginx": nginx_port}
        results = paired_load_runs(ports, args.page, args, CpuMeter(procs))
        report.load[server] = results[server]
        report.nginx_load[server] = results["nginx"]
        report.memory[server] = measure_memory(started.pids())
        report.memory.setdefault("nginx", measure_memory(nginx.started.pids()))
    finally:
        procs.stop(started)
    if args.skip_cold_start:
        return
    small = sites[SMALL_SITE]
    for concurrent, mode in ((False, "1 client"), (True, f"{COLD_CLIENTS} clients")):
        cold, _, _ = measure_cold_start(procs, server, small, workdir, report, concurrent)
        report.cold[server, SMALL_SITE, mode] = cold


def bench_floor(procs: Processes, server: str, workdir: Path, report: Report, nginx: Nginx) -> None:
    """Load runs (alternating with nginx's) of granian serving nginx's root without feedsvc."""
    if nginx.started is None:
        raise BenchError(f"{server} serves the bytes a feedsvc server sent: list one before it")
    port = free_port()
    argv = server_argv(server, port, report.granian_flags)
    env = {**os.environ, "FLOOR_ROOT": str(nginx.root)}
    started = procs.start(server, argv, env, workdir / f"{server}.log", port)
    try:
        wait_ok(started, FEED_PATH, started.started_at + STARTUP_TIMEOUT)
        ports = {server: port, "nginx": nginx.port}
        results = paired_load_runs(ports, report.args.page, report.args, CpuMeter(procs))
        report.load[server] = results[server]
        report.nginx_load[server] = results["nginx"]
        report.memory[server] = measure_memory(started.pids())
    finally:
        procs.stop(started)


def run(args: argparse.Namespace, procs: Processes, workdir: Path) -> Report:
    """Run every measurement and return the report."""
    nginx_path, wrk = require_tools()
    granian_flags = shlex.split(args.granian_flags) if args.granian_flags else GRANIAN_FLAGS
    report = Report(args.articles, args, granian_flags, facts=machine_facts(nginx_path, wrk))
    sites = {n: ensure_corpus(n) for n in {args.articles, SMALL_SITE}}
    load_before = check_idle()
    started, port = start_server(procs, args.servers[0], sites[SMALL_SITE], workdir, granian_flags)
    try:
        wait_ok(started, "/healthz", started.started_at + STARTUP_TIMEOUT)
        report.feed_extensions = discover_feed_extensions(port)
    finally:
        procs.stop(started)
    log.info("feed formats linked from the home page: %s", ", ".join(report.feed_extensions))
    nginx = Nginx(procs, nginx_path, workdir, report)
    try:
        for server in args.servers:
            bench_server(procs, server, sites, workdir, report, nginx)
    finally:
        nginx.stop()
    load_after = Path("/proc/loadavg").read_text().split()[:3]
    report.facts.append(
        f"load average (1, 5, 15 min): {' '.join(load_before)} before, {' '.join(load_after)} after"
        " (the run itself adds about 2)"
    )
    return report


def check_idle() -> list[str]:
    """Warn when something else keeps the CPUs busy: every number would be noisy."""
    before = [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    time.sleep(IDLE_CHECK_SECONDS)
    after = [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    busy = [b - a for a, b in zip(before, after, strict=True)]
    idle = busy[3] + busy[4]  # idle + iowait
    used = 1 - idle / max(sum(busy), 1)
    if used > 0.10:
        log.warning(
            "the CPUs are %.0f%% busy before the run started; results will be noisy "
            "(another benchmark running?)",
            100 * used,
        )
    return Path("/proc/loadavg").read_text().split()[:3]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=10000, help="size of the big site")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections")
    parser.add_argument("--repeat", type=int, default=3, help="wrk runs per scenario and server")
    parser.add_argument(
        "--servers",
        default="granian",
        type=lambda text: [s for s in text.split(",") if s],
        help=f"feedsvc servers to measure, comma-separated from {','.join(SERVERS)}",
    )
    parser.add_argument("--granian-flags", help="replace GRANIAN_FLAGS (one quoted string)")
    parser.add_argument("--page", default="/news/", help="HTML page to load (default /news/)")
    parser.add_argument("--skip-cold-start", action="store_true", help="only the load runs")
    parser.add_argument("--out", type=Path, help="also write the report to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (configs, logs)")
    args = parser.parse_args(argv)
    unknown = set(args.servers) - set(SERVERS)
    if unknown or not args.servers:
        parser.error(f"--servers takes {','.join(SERVERS)}; got {','.join(args.servers)}")
    if args.servers[0] in FLOORS:
        parser.error(f"{args.servers[0]} serves what feedsvc sent: list granian or gunicorn first")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging()
    procs = Processes()
    workdir = Path(tempfile.mkdtemp(prefix="feedsvc-serve-bench-"))
    # Ctrl-C and SIGTERM unwind through the finally below, which stops our servers; SIGINT
    # is set explicitly because a shell starting us in the background ignores it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        report = run(args, procs, workdir)
    except BenchError as exc:
        log.error("serve_bench: %s", exc)
        return 1
    except KeyboardInterrupt:
        log.error("serve_bench: interrupted; stopping what it started")
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not stop the cleanup
        procs.stop_all()
        if args.keep:
            log.info("kept %s", workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    text = render(report)
    sys.stdout.write(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
