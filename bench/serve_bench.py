"""Measure feedsvc's production server side by side with nginx serving the same feed bytes.

    .venv/bin/python bench/serve_bench.py [--articles 10000] [--duration 10] [--connections 64]
        [--repeat 3] [--servers granian,gunicorn] [--granian-flags "--workers 2 ..."]
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
import contextlib
import email.utils
import gzip
import http.client
import logging
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from bench.corpus import MARKER, generate  # noqa: E402  (needs the project root on sys.path)

log = logging.getLogger("serve_bench")

VENV_BIN = PROJECT_ROOT / ".venv" / "bin"
CACHE_DIR = Path("/tmp/feedsvc-bench")
HOST = "127.0.0.1"
SECTIONS = 8
SEED = 1
SMALL_SITE = 100
# Chosen on a 2-core machine, 10,000 articles, feed GET / 304 / page req/s, PSS:
#   --workers 2 (defaults: many blocking threads)        31k / 54k / 57k, 391 MB
#   --workers 2 --blocking-threads 1 --runtime-threads 1 44k / 59k / 56k, 256 MB
#   --workers 2 --blocking-threads 4                     45k / 63k / 58k, 323 MB
#   --workers 1 --blocking-threads 1 --runtime-threads 2 49k / 66k / 63k, 148 MB  <- this
#   the same with --backpressure 64                      44k / 65k / 62k, 153 MB
#   --workers 1 --blocking-threads 2 --runtime-threads 2 30k / 60k / 50k, 155 MB
# (each with --http 1 --no-ws --log-level warning but the first; nginx did 67-78k / 89-116k
# / 72-80k alongside; 3 runs of 5 s each, medians.)
# One Python thread keeps the GIL uncontended while two Rust runtime threads do the I/O;
# one worker also loads the content once, not once per worker (cold start, memory).
# --http 1 and --no-ws skip protocol detection; access logging is off.
GRANIAN_FLAGS = (
    "--interface",
    "wsgi",
    "--workers",
    "1",
    "--blocking-threads",
    "1",
    "--runtime-threads",
    "2",
    "--http",
    "1",
    "--no-ws",
    "--log-level",
    "warning",
    "--no-access-log",
    "--respawn-failed-workers",
)
GUNICORN_FLAGS = ("--workers", "2", "--worker-class", "gthread", "--threads", "4")
SERVERS = ("granian", "gunicorn")
WRK_THREADS = 2
WARMUP_SECONDS = 3
COLD_CLIENTS = 4
IDLE_CHECK_SECONDS = 1.0
# Above this share of CPU taken by other processes during a run, the report says so.
NOISY_SHARE = 0.05
STARTUP_TIMEOUT = 120.0
FEED_PATH = "/feed.xml"
GZIP = {"Accept-Encoding": "gzip"}
# A 304 carries headers only; anything bigger means wrk got full bodies.
MAX_304_BYTES = 1024
TARGET_RATIO = 0.5
TARGET_COLD_SECONDS = 3.0
TARGET_MEMORY_MB = 250.0


class BenchError(Exception):
    """The benchmark cannot go on; the message says why."""


# --- processes -----------------------------------------------------------------------------


@dataclass
class Started:
    """A process this script started, and where its output goes."""

    name: str
    popen: subprocess.Popen
    log_path: Path
    started_at: float

    @property
    def pid(self) -> int:
        return self.popen.pid


class Processes:
    """Start processes and stop exactly those again, by PID, with their children."""

    def __init__(self) -> None:
        self.running: list[Started] = []

    def start(self, name: str, argv: Sequence[str], env: dict, log_path: Path) -> Started:
        """Spawn argv in its own session (Ctrl-C reaches only us), output to log_path."""
        log.info("starting %s: %s", name, shlex.join(map(str, argv)))
        with log_path.open("ab") as out:
            started_at = time.perf_counter()
            popen = subprocess.Popen(
                list(map(str, argv)),
                cwd=PROJECT_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started = Started(name, popen, log_path, started_at)
        self.running.append(started)
        return started

    def stop(self, started: Started, timeout: float = 15.0) -> None:
        """Ask the process to stop, then kill it and any child it left behind."""
        if started in self.running:
            self.running.remove(started)
        children = [(pid, _start_time(pid)) for pid in descendants(started.pid)]
        if started.popen.poll() is None:
            started.popen.send_signal(signal.SIGTERM)
            try:
                started.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("%s (pid %d) ignored SIGTERM; killing it", started.name, started.pid)
                started.popen.kill()
                started.popen.wait()
        deadline = time.monotonic() + timeout
        for pid, start_time in children:
            while _start_time(pid) == start_time and time.monotonic() < deadline:
                time.sleep(0.05)
            if start_time is not None and _start_time(pid) == start_time:  # same process, still up
                log.warning("killing leftover child %d of %s", pid, started.name)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    def stop_all(self) -> None:
        """Stop everything still running, newest first."""
        for started in reversed(list(self.running)):
            try:
                self.stop(started)
            except OSError as exc:
                log.warning("could not stop %s (pid %d): %s", started.name, started.pid, exc)


def descendants(pid: int) -> list[int]:
    """Return the PIDs of pid's children, grandchildren, … (from /proc)."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                found.append(child)
                todo.append(child)
    return found


def _start_time(pid: int) -> str | None:
    """Return the kernel's start time of pid, to tell it from a later process reusing it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def log_tail(path: Path, lines: int = 15) -> str:
    """Return the end of a server's log, for error messages."""
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:])


# --- HTTP ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """One HTTP answer; header names lower-cased."""

    status: int
    headers: dict[str, str]
    body: bytes


def fetch(port: int, path: str, headers: dict | None = None, timeout: float = 60.0) -> Reply:
    """GET path from 127.0.0.1:port on a fresh connection, as an independent poller would."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        body = response.read()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, body)
    finally:
        conn.close()


def fetch_ok(port: int, path: str, started: Started, deadline: float) -> float:
    """Fetch path until it answers 200 (server still starting); return when it did."""
    while True:
        if started.popen.poll() is not None:
            raise BenchError(f"{started.name} exited early:\n{log_tail(started.log_path)}")
        try:
            if fetch(port, path).status == 200:
                return time.perf_counter()
        except OSError:
            pass
        if time.perf_counter() > deadline:
            raise BenchError(f"{path} did not answer 200 within {STARTUP_TIMEOUT:.0f} s")
        time.sleep(0.02)


def expect(reply: Reply, status: int, what: str, encoding: str | None = None) -> Reply:
    """Check one answer before benchmarking it, so wrk never measures the wrong thing."""
    if reply.status != status:
        raise BenchError(f"{what}: expected {status}, got {reply.status}")
    if encoding and reply.headers.get("content-encoding") != encoding:
        raise BenchError(f"{what}: expected Content-Encoding {encoding}, got {reply.headers}")
    return reply


# --- the site ------------------------------------------------------------------------------


def ensure_corpus(articles: int) -> Path:
    """Return the cached site of `articles` articles, writing it first if missing or cut short."""
    out = CACHE_DIR / str(articles)
    if (out / MARKER).is_file() and count_articles(out) == articles:
        return out
    log.info("writing a %d-article site to %s", articles, out)
    summary = generate(out, articles, SECTIONS, SEED, force=True)
    log.info("%s", summary)
    return out


def count_articles(site: Path) -> int:
    """Count the article files (drafts included) in a generated site."""
    return sum(
        1
        for folder in site.iterdir()
        if folder.is_dir()
        for name in os.listdir(folder)
        if name.endswith(".md") and name != "_index.md"
    )


def section_slugs(site: Path) -> list[str]:
    """Return the site's section folders (everything but media/)."""
    return sorted(p.name for p in site.iterdir() if p.is_dir() and p.name != "media")


def feed_paths(site: Path, extensions: Sequence[str]) -> list[str]:
    """Return the URL path of every feed the site offers: site-wide and per section."""
    names = ["feed", *section_slugs(site)]
    return [f"/{name}.{ext}" for name in names for ext in extensions]


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
        return [VENV_BIN / "granian", *granian_flags, "--host", HOST, "--port", port, "wsgi:app"]
    if server == "gunicorn":
        return [VENV_BIN / "gunicorn", *GUNICORN_FLAGS, "--bind", f"{HOST}:{port}", "wsgi:app"]
    raise ValueError(server)


def start_feedsvc(
    procs: Processes, server: str, site: Path, workdir: Path, granian_flags: Sequence[str]
) -> tuple[Started, int]:
    """Start feedsvc with `server` on a free port, serving `site`; don't wait for it."""
    port = free_port()
    env = dict(os.environ)
    env.update(FEEDSVC_CONTENT_DIR=str(site), FEEDSVC_SITE_URL=f"http://{HOST}:{port}")
    argv = server_argv(server, port, granian_flags)
    started = procs.start(server, argv, env, workdir / f"{server}.log")
    return started, port


@dataclass(frozen=True)
class ColdStart:
    """Seconds from process start until /healthz, and until every feed, first answered."""

    healthz: float
    all_feeds: float


def cold_start_sequential(started: Started, port: int, feeds: list[str]) -> ColdStart:
    """One client: poll /healthz until it answers, then fetch each feed in turn."""
    deadline = started.started_at + STARTUP_TIMEOUT
    healthz = fetch_ok(port, "/healthz", started, deadline)
    done = healthz
    for path in feeds:
        done = fetch_ok(port, path, started, deadline)
    return ColdStart(healthz - started.started_at, done - started.started_at)


def cold_start_concurrent(started: Started, port: int, feeds: list[str]) -> ColdStart:
    """COLD_CLIENTS clients fetch /healthz and every feed at once, as a busy site sees it."""
    deadline = started.started_at + STARTUP_TIMEOUT
    paths = ["/healthz", *feeds]
    with ThreadPoolExecutor(COLD_CLIENTS) as pool:
        times = list(pool.map(lambda path: fetch_ok(port, path, started, deadline), paths))
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
    started, port = start_feedsvc(procs, server, site, workdir, report.granian_flags)
    try:
        measure = cold_start_concurrent if concurrent else cold_start_sequential
        result = measure(started, port, feed_paths(site, report.feed_extensions))
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

# nginx at its best for throughput: one worker per CPU, Debian's sendfile + tcp_nopush, no
# access log, no limit on requests per keep-alive connection (feedsvc's servers have none).
# tcp_nopush is why nginx's p99 for the 64 KB feed sits near 43 ms; with it off nginx made
# ~15 % fewer requests/s here at a p99 of ~6 ms, which would flatter feedsvc's ratio.
NGINX_CONF = """\
{user}worker_processes {workers};
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    types {{
        application/rss+xml xml;
        application/atom+xml atom;
        application/feed+json json;
        text/html html;
    }}
    default_type application/octet-stream;
    charset utf-8;
    charset_types application/rss+xml application/atom+xml application/feed+json;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    gzip_static on;
    gzip_vary on;
    etag on;
    server {{
        listen {host}:{port};
        root {root};
        index index.html;
        add_header Cache-Control "public, max-age=300";
    }}
}}
"""


def nginx_file(root: Path, path: str) -> Path:
    """Return where nginx finds the file for a URL path (a folder's index.html)."""
    relative = path.lstrip("/")
    return root / (relative + "index.html" if path.endswith("/") else relative)


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


def start_nginx(procs: Processes, nginx: str, workdir: Path, root: Path) -> tuple[Started, int]:
    """Write a config serving `root` and run nginx in the foreground on a free port."""
    port = free_port()
    conf_dir = workdir / "nginx"
    (conf_dir / "tmp").mkdir(parents=True, exist_ok=True)
    conf = conf_dir / "nginx.conf"
    user = "user root;\n" if os.geteuid() == 0 else ""
    workers = len(os.sched_getaffinity(0))
    conf.write_text(
        NGINX_CONF.format(user=user, workers=workers, dir=conf_dir, host=HOST, port=port, root=root)
    )
    argv = [nginx, "-p", conf_dir, "-c", conf, "-e", conf_dir / "error.log", "-g", "daemon off;"]
    started = procs.start("nginx", argv, dict(os.environ), workdir / "nginx.log")
    fetch_ok(port, FEED_PATH, started, started.started_at + 10)
    return started, port


# --- load ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """One wrk run: a path, request headers and what a correct answer looks like."""

    name: str
    path: str
    headers: dict[str, str]
    status: int
    body_bytes: int  # size of the body each answer must carry (0 for 304)


@dataclass(frozen=True)
class WrkResult:
    """What one wrk run reports."""

    requests_per_s: float
    p99_ms: float
    requests: int
    bytes_read: float
    bad_status: int  # answers outside 2xx/3xx
    socket_errors: int
    problem: str = ""
    # Share of the machine's CPU that processes other than ours used during the run.
    foreign_cpu: float = 0.0

    @property
    def bytes_per_request(self) -> float:
        return self.bytes_read / max(self.requests, 1)


_UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}
_TIME_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def parse_wrk(output: str) -> WrkResult:
    """Read requests/s, the 99th percentile, totals and errors from wrk --latency output."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p99 = re.search(r"^\s*99%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.M)
    totals = re.search(r"(\d+) requests in [\d.]+\w+, ([\d.]+)(B|KB|MB|GB|TB) read", output)
    if not (rps and p99 and totals):
        raise BenchError(f"cannot read wrk output:\n{output}")
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return WrkResult(
        requests_per_s=float(rps.group(1)),
        p99_ms=float(p99.group(1)) * _TIME_UNITS[p99.group(2)],
        requests=int(totals.group(1)),
        bytes_read=float(totals.group(2)) * _UNITS[totals.group(3)],
        bad_status=int(bad.group(1)) if bad else 0,
        socket_errors=sum(map(int, sockets.groups())) if sockets else 0,
    )


def run_wrk(wrk: str, port: int, scenario: Scenario, seconds: float, connections: int) -> WrkResult:
    """Run wrk once against 127.0.0.1:port and check the answers were the expected kind."""
    argv = [wrk, f"-t{WRK_THREADS}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for name, value in scenario.headers.items():
        argv += ["-H", f"{name}: {value}"]
    argv.append(f"http://{HOST}:{port}{scenario.path}")
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    if done.returncode != 0:
        raise BenchError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    result = parse_wrk(done.stdout)
    problems = []
    if result.bad_status:
        problems.append(f"{result.bad_status} non-2xx/3xx")
    if result.socket_errors:
        problems.append(f"{result.socket_errors} socket errors")
    per_request = result.bytes_per_request
    if scenario.status == 304 and per_request > MAX_304_BYTES:
        problems.append(f"{per_request:.0f} B per answer: not 304s")
    # wrk rounds the bytes it read to 3 digits: allow for that, not for missing bodies.
    if scenario.status == 200 and per_request < 0.98 * scenario.body_bytes:
        problems.append(f"{per_request:.0f} B per answer < body {scenario.body_bytes} B")
    if problems:
        result = replace(result, problem="; ".join(problems))
    return result


def scenarios_for(port: int, page_path: str, name: str) -> list[Scenario]:
    """Check each scenario once with a single request and describe it for wrk."""
    feed = expect(fetch(port, FEED_PATH, GZIP), 200, f"{name} {FEED_PATH} gzip", "gzip")
    etag = feed.headers.get("etag") or ""
    if not etag:
        raise BenchError(f"{name} {FEED_PATH}: no ETag")
    not_modified = {**GZIP, "If-None-Match": etag}
    expect(fetch(port, FEED_PATH, not_modified), 304, f"{name} {FEED_PATH} If-None-Match")
    page = expect(fetch(port, page_path, GZIP), 200, f"{name} {page_path} gzip", "gzip")
    return [
        Scenario("feed GET gzip", FEED_PATH, GZIP, 200, len(feed.body)),
        Scenario("feed 304", FEED_PATH, not_modified, 304, 0),
        Scenario("page GET gzip", page_path, GZIP, 200, len(page.body)),
    ]


@dataclass(frozen=True)
class Measured:
    """Several wrk runs of one scenario against one server, summarised by their medians."""

    runs: tuple[WrkResult, ...]

    @property
    def requests_per_s(self) -> float:
        return statistics.median(run.requests_per_s for run in self.runs)

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
        ours = sum(_cpu_ticks(pid) for pid in self.our_pids()) / self.hz
        times = os.times()  # this script, and wrk once it has been waited for
        ours += times.user + times.system + times.children_user + times.children_system
        return time.monotonic(), machine, ours

    def our_pids(self) -> list[int]:
        pids = []
        for started in self.procs.running:
            pids += [started.pid, *descendants(started.pid)]
        return pids

    def foreign_share(self, before: tuple, after: tuple) -> float:
        wall = (after[0] - before[0]) * self.cpus
        foreign = (after[1] - before[1]) - (after[2] - before[2])
        return max(foreign, 0.0) / wall if wall > 0 else 0.0


def _cpu_ticks(pid: int) -> int:
    """Return utime + stime of a process (all its threads), in clock ticks."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


def paired_load_runs(
    wrk: str, ports: dict[str, int], page_path: str, args: argparse.Namespace, meter: CpuMeter
) -> dict[str, dict[str, Measured]]:
    """Measure every scenario on every server, alternating servers run by run.

    Alternating spreads the machine's drift (other tenants, CPU frequency) over all servers
    instead of charging it to whichever ran last.
    """
    plans = {name: scenarios_for(port, page_path, name) for name, port in ports.items()}
    results: dict[str, dict[str, Measured]] = {name: {} for name in ports}
    for index in range(len(next(iter(plans.values())))):
        runs: dict[str, list[WrkResult]] = {name: [] for name in ports}
        for name, port in ports.items():
            run_wrk(wrk, port, plans[name][index], WARMUP_SECONDS, args.connections)
        for _ in range(args.repeat):
            for name, port in ports.items():
                scenario = plans[name][index]
                before = meter.sample()
                result = run_wrk(wrk, port, scenario, args.duration, args.connections)
                foreign = meter.foreign_share(before, meter.sample())
                result = replace(result, foreign_cpu=foreign)
                runs[name].append(result)
                log.info(
                    "%-8s %s: %.0f req/s, p99 %.2f ms, other processes %.0f%% CPU%s",
                    name,
                    scenario.name,
                    result.requests_per_s,
                    result.p99_ms,
                    100 * foreign,
                    f" ({result.problem})" if result.problem else "",
                )
        for name in ports:
            results[name][plans[name][index].name] = Measured(tuple(runs[name]))
    return results


# --- memory --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Memory:
    """Memory of a server: the master and its workers, summed."""

    processes: int
    rss_mb: float
    pss_mb: float


def measure_memory(pid: int) -> Memory:
    """Sum RSS and PSS (smaps_rollup) over pid and its descendants."""
    pids = [pid, *descendants(pid)]
    rss = pss = 0
    for each in pids:
        try:
            text = Path(f"/proc/{each}/smaps_rollup").read_text()
        except OSError:
            continue
        fields = dict(re.findall(r"^(\w+):\s+(\d+) kB", text, re.M))
        rss += int(fields.get("Rss", 0))
        pss += int(fields.get("Pss", 0))
    return Memory(len(pids), rss / 1024, pss / 1024)


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
    header = ["scenario", "server", "feedsvc req/s", "(range)", "feedsvc p99"]
    header += ["nginx req/s", "(range)", "nginx p99", "ratio", "target"]
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
        if server != "nginx":
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
        "ratio = feedsvc median req/s / nginx median req/s; p99 = median of the runs' p99.",
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

    commit = version(["git", "-C", PROJECT_ROOT, "rev-parse", "--short", "HEAD"])
    status = ["git", "-C", PROJECT_ROOT, "status", "--porcelain", "--", "feedsvc", "wsgi.py"]
    if version([*status, "config.py"]) != "?":
        commit += " + uncommitted changes in feedsvc/"

    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return [
        f"machine: nproc {len(os.sched_getaffinity(0))}, {cpu}, {pages / 2**30:.0f} GiB RAM, "
        f"Linux {platform.release()}, Python {platform.python_version()}",
        f"feedsvc: git {commit}",
        "versions: "
        + "; ".join(
            [
                version([VENV_BIN / "granian", "--version"]),
                version([VENV_BIN / "gunicorn", "--version"]),
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
        if not (VENV_BIN / tool).exists():
            raise BenchError(f"{VENV_BIN / tool} missing; run `make test` to create the venv")
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
            self.started, self.port = start_nginx(self.procs, self.nginx, self.workdir, self.root)
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
    wrk: str,
    nginx: Nginx,
) -> None:
    """Cold starts, then load runs (alternating with nginx's) and memory of one server."""
    args = report.args
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
        results = paired_load_runs(wrk, ports, args.page, args, CpuMeter(procs))
        report.load[server] = results[server]
        report.nginx_load[server] = results["nginx"]
        report.memory[server] = measure_memory(started.pid)
        report.memory.setdefault("nginx", measure_memory(nginx.started.pid))
    finally:
        procs.stop(started)
    if args.skip_cold_start:
        return
    small = sites[SMALL_SITE]
    for concurrent, mode in ((False, "1 client"), (True, f"{COLD_CLIENTS} clients")):
        cold, _, _ = measure_cold_start(procs, server, small, workdir, report, concurrent)
        report.cold[server, SMALL_SITE, mode] = cold


def run(args: argparse.Namespace, procs: Processes, workdir: Path) -> Report:
    """Run every measurement and return the report."""
    nginx_path, wrk = require_tools()
    granian_flags = shlex.split(args.granian_flags) if args.granian_flags else GRANIAN_FLAGS
    report = Report(args.articles, args, granian_flags, facts=machine_facts(nginx_path, wrk))
    sites = {n: ensure_corpus(n) for n in {args.articles, SMALL_SITE}}
    load_before = check_idle()
    started, port = start_feedsvc(procs, args.servers[0], sites[SMALL_SITE], workdir, granian_flags)
    try:
        fetch_ok(port, "/healthz", started, started.started_at + STARTUP_TIMEOUT)
        report.feed_extensions = discover_feed_extensions(port)
    finally:
        procs.stop(started)
    log.info("feed formats linked from the home page: %s", ", ".join(report.feed_extensions))
    nginx = Nginx(procs, nginx_path, workdir, report)
    try:
        for server in args.servers:
            bench_server(procs, server, sites, workdir, report, wrk, nginx)
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
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr
    )
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
