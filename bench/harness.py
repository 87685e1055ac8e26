"""What every benchmark in bench/ shares: sites, processes, ports, HTTP, wrk, nginx, memory, time.

Benchmarks import it as `bench.harness` (each puts the project root on sys.path first), the
way tests share conftest. Only 127.0.0.1 is used; every process started through `Processes`
runs in its own session and is stopped again by its PID, with the children it forked.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import math
import os
import re
import resource
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import NamedTuple

PROJECT_ROOT = Path(__file__).resolve().parent.parent
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

from bench.corpus import MARKER, generate  # noqa: E402  (needs the project root on sys.path)

HOST = "127.0.0.1"
CACHE_DIR = Path("/tmp/feedsvc-bench")
SECTIONS, SEED = 8, 1  # every benchmark's cached corpora: never change one alone
# How long a starting server may take before a benchmark gives up on it.
STARTUP_TIMEOUT = 120.0

log = logging.getLogger("bench")

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
GRANIAN_FLAGS: tuple[str, ...] = (
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


class BenchError(Exception):
    """The benchmark cannot go on; the message says why."""


def setup_logging() -> None:
    """Log progress to stderr with the time, leaving stdout to the results."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr
    )


# --- sites ---------------------------------------------------------------------------------


def corpus_articles(site: Path) -> int:
    """Count the articles a corpus marker lists (-1 without one); complete when it reaches N."""
    try:
        lines = (site / MARKER).read_text(encoding="utf-8").splitlines()[1:]
    except OSError:
        return -1
    return sum(1 for line in lines if line.endswith(".md") and not line.endswith("/_index.md"))


def ensure_corpus(articles: int) -> Path:
    """Return the cached corpus of `articles` articles, generating it once if missing.

    Written beside the cache and renamed into place, so two benchmarks started together
    never see half a corpus; the loser of that race waits for the winner's.
    """
    target = CACHE_DIR / str(articles)
    if not target.exists():
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        scratch = CACHE_DIR / f".{articles}.tmp-{os.getpid()}"
        log.info("generating %d articles into %s", articles, target)
        log.info("%s", generate(scratch, articles, SECTIONS, SEED))
        try:
            os.rename(scratch, target)
        except OSError:  # another benchmark got there first; its corpus is the same bytes
            shutil.rmtree(scratch, ignore_errors=True)
    last, stalled_since = -1, time.monotonic()
    while (count := corpus_articles(target)) != articles:
        if count != last:
            last, stalled_since = count, time.monotonic()
        if time.monotonic() - stalled_since > 60:
            raise BenchError(f"{target} is incomplete ({count} of {articles}); remove it")
        log.info("waiting for another process to finish %s (%d/%d)", target, count, articles)
        time.sleep(2)
    return target


def copy_site(source: Path, workdir: Path, name: str) -> Path:
    """Copy a cached site into `workdir`, so edits never touch the cache."""
    target = workdir / name
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(MARKER))
    return target


def section_slugs(site: Path) -> list[str]:
    """Return the site's section folders (everything but media/ and hidden folders)."""
    return sorted(
        entry.name
        for entry in site.iterdir()
        if entry.is_dir() and not entry.name.startswith((".", "_")) and entry.name != "media"
    )


def feed_paths(site: Path, extensions: Sequence[str] = ("xml", "atom")) -> list[str]:
    """Return the URL path of every site and section feed in each format."""
    names = ["feed", *section_slugs(site)]
    return [f"/{name}.{ext}" for name in names for ext in extensions]


# --- processes -----------------------------------------------------------------------------


def child_env(**extra: str) -> dict[str, str]:
    """The environment for feedsvc processes: ours without FEEDSVC_* settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FEEDSVC_", "FLASK_"))}
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    env.update(extra)
    return env


def python_tool(name: str) -> list[str]:
    """Return the command running a tool installed beside this interpreter (granian, flask)."""
    return [sys.executable, "-m", name]


def granian_argv(
    port: int, flags: Sequence[str] = GRANIAN_FLAGS, workers: int | None = None
) -> list[str]:
    """Return the production granian command serving wsgi:app on 127.0.0.1:port."""
    flags = list(flags)
    if workers is not None:
        flags[flags.index("--workers") + 1] = str(workers)
    return [*python_tool("granian"), *flags, "--host", HOST, "--port", str(port), "wsgi:app"]


def start_feedsvc(
    procs: Processes,
    name: str,
    argv: Callable[[int], Sequence],
    content: Path,
    log_path: Path,
    port: int | None = None,
    tree: Path = PROJECT_ROOT,
    **env: str,
) -> Started:
    """Start `argv(port)` on `port` (else a free one) serving `content` at its own address,
    with the code of the checkout `tree`."""
    port = port or free_port()
    site_url = f"http://{HOST}:{port}"
    environment = child_env(FEEDSVC_CONTENT_DIR=str(content), FEEDSVC_SITE_URL=site_url, **env)
    return procs.start(name, argv(port), environment, log_path, port, cwd=tree)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def descendants(pid: int) -> list[int]:
    """Return the PIDs of pid's children, grandchildren, … (from /proc), children first."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop(0)
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            found += map(int, children)
            todo += map(int, children)
    return found


def _stat_fields(pid: int) -> list[str] | None:
    """Return the fields of /proc/<pid>/stat after the command name, or None."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def process_start_time(pid: int) -> str | None:
    """Return the kernel's start time of pid, to tell it from a later process reusing it."""
    fields = _stat_fields(pid)
    return fields[19] if fields else None


def cpu_ticks(pid: int, children: bool = False) -> int:
    """Return utime + stime of a process (all its threads), in clock ticks; `children`:
    with those of the children it has waited for (cutime + cstime)."""
    fields = _stat_fields(pid)
    if not fields:
        return 0
    ticks = int(fields[11]) + int(fields[12])
    return ticks + int(fields[13]) + int(fields[14]) if children else ticks


@dataclass
class Started:
    """A process a benchmark started, where its output goes, and its port if it serves."""

    name: str
    popen: subprocess.Popen
    log_path: Path
    started_at: float  # time.perf_counter() just before the spawn
    port: int = 0
    workers: list[int] = field(default_factory=list)  # filled by whoever waits for them

    @property
    def pid(self) -> int:
        return self.popen.pid

    def pids(self) -> list[int]:
        """This process and every process below it."""
        return [self.pid, *descendants(self.pid)]

    def url(self, path: str) -> str:
        return f"http://{HOST}:{self.port}{path}"

    def log_tail(self, lines: int = 15) -> str:
        """Return the end of the process's output, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(text[-lines:])


# A benchmarked process: reads nothing, logs stderr with stdout, in a session of its own.
_DETACHED = MappingProxyType(
    {"stdin": subprocess.DEVNULL, "stderr": subprocess.STDOUT, "start_new_session": True}
)


class Processes:
    """Start processes and stop exactly those again, by PID, with their children."""

    def __init__(self) -> None:
        self.running: list[Started] = []

    def start(
        self,
        name: str,
        argv: Sequence,
        env: dict,
        log_path: Path,
        port: int = 0,
        cwd: Path = PROJECT_ROOT,
    ) -> Started:
        """Spawn argv in its own session (Ctrl-C reaches only us), output to log_path.

        `cwd`: the checkout whose code it runs (`python -m` puts it first on sys.path).
        """
        argv = [str(arg) for arg in argv]
        log.info("starting %s: %s (in %s)", name, shlex.join(argv), cwd)
        with log_path.open("ab") as out:
            started_at = time.perf_counter()
            popen = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, **_DETACHED)
        started = Started(name, popen, log_path, started_at, port)
        self.running.append(started)
        return started

    @contextlib.contextmanager
    def running_server(
        self, name: str, argv: Sequence, env: dict, log_path: Path, port: int
    ) -> Iterator[Started]:
        """Start a server for the length of a `with` block; stop it on the way out."""
        started = self.start(name, argv, env, log_path, port)
        try:
            yield started
        finally:
            self.stop(started)

    def stop(self, started: Started, timeout: float = 15.0) -> None:
        """Ask the process to stop, then kill it and any child it left behind."""
        if started in self.running:
            self.running.remove(started)
        children = [(pid, process_start_time(pid)) for pid in descendants(started.pid)]
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
            while process_start_time(pid) == start_time and time.monotonic() < deadline:
                time.sleep(0.05)
            if start_time is not None and process_start_time(pid) == start_time:
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


def wait_listening(started: Started, workers: int = 0, timeout: float = 60.0) -> None:
    """Wait until the server accepts connections and has forked `workers` processes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if started.popen.poll() is not None:
            raise BenchError(f"{started.name} exited early:\n{started.log_tail()}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, started.port), 0.5):
            if len(descendants(started.pid)) >= workers:
                return
        time.sleep(0.1)
    raise BenchError(f"{started.name} did not listen on {started.port} within {timeout} s")


def wait_ok(started: Started, path: str, deadline: float) -> float:
    """Fetch path until it answers 200 (the server is still starting); return when it did.

    `deadline` is a time.perf_counter() value.
    """
    while True:
        if started.popen.poll() is not None:
            raise BenchError(f"{started.name} exited early:\n{started.log_tail()}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            if fetch(started.port, path).status == 200:
                return time.perf_counter()
        if time.perf_counter() > deadline:
            raise BenchError(f"{path} did not answer 200 in time:\n{started.log_tail()}")
        time.sleep(0.02)


# --- HTTP ----------------------------------------------------------------------------------


class Reply(NamedTuple):
    """One HTTP answer, header names lower-cased; unpacks as (status, headers, body)."""

    status: int
    headers: dict[str, str]
    body: bytes


def fetch_on(conn: http.client.HTTPConnection, path: str, headers: dict | None = None) -> Reply:
    """GET path on an open (keep-alive) connection."""
    conn.request("GET", path, headers=headers or {})
    response = conn.getresponse()
    body = response.read()
    return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, body)


def fetch(port: int, path: str, headers: dict | None = None, timeout: float = 60.0) -> Reply:
    """GET path from 127.0.0.1:port on a fresh connection, as an independent poller would."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        return fetch_on(conn, path, headers)
    finally:
        conn.close()


def expect(reply: Reply, status: int, what: str, encoding: str | None = None) -> Reply:
    """Check one answer before benchmarking it, so wrk never measures the wrong thing."""
    if reply.status != status:
        raise BenchError(f"{what}: expected {status}, got {reply.status}")
    if encoding and reply.headers.get("content-encoding") != encoding:
        raise BenchError(f"{what}: expected Content-Encoding {encoding}, got {reply.headers}")
    return reply


# --- wrk -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class WrkResult:
    """What one wrk --latency run reports; times in milliseconds."""

    requests_per_s: float
    mean_ms: float
    p50_ms: float
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


_SIZE_UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}
_TIME_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}
_DURATION = r"([\d.]+)(us|ms|s|m)\b"


def wrk_argv(
    url: str, headers: dict[str, str], seconds: float, threads: int, connections: int
) -> list[str]:
    """Return the wrk command line for one run with latency percentiles."""
    wrk = shutil.which("wrk") or "wrk"
    argv = [wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    return [*argv, url]


def parse_wrk(output: str) -> WrkResult:
    """Read requests/s, latencies, totals and errors from wrk --latency output."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    mean = re.search(r"^\s*Latency\s+" + _DURATION, output, re.M)
    p50 = re.search(r"^\s*50%\s+" + _DURATION, output, re.M)
    p99 = re.search(r"^\s*99%\s+" + _DURATION, output, re.M)
    totals = re.search(r"(\d+) requests in [\d.]+\w+, ([\d.]+)(B|KB|MB|GB|TB) read", output)
    if not (rps and mean and p50 and p99 and totals):
        raise BenchError(f"cannot read wrk output:\n{output}")
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return WrkResult(
        requests_per_s=float(rps.group(1)),
        mean_ms=float(mean.group(1)) * _TIME_UNITS_MS[mean.group(2)],
        p50_ms=float(p50.group(1)) * _TIME_UNITS_MS[p50.group(2)],
        p99_ms=float(p99.group(1)) * _TIME_UNITS_MS[p99.group(2)],
        requests=int(totals.group(1)),
        bytes_read=float(totals.group(2)) * _SIZE_UNITS[totals.group(3)],
        bad_status=int(bad.group(1)) if bad else 0,
        socket_errors=sum(map(int, sockets.groups())) if sockets else 0,
    )


def run_wrk(
    url: str, headers: dict[str, str], seconds: float, threads: int = 1, connections: int = 8
) -> WrkResult:
    """Run wrk once against `url` and return what it reports."""
    argv = wrk_argv(url, headers, seconds, threads, connections)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    if done.returncode != 0:
        raise BenchError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    return parse_wrk(done.stdout)


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


def start_nginx(procs: Processes, nginx: str, workdir: Path, root: Path, ready: str) -> Started:
    """Write a config serving `root` statically and run nginx in the foreground on a free port.

    Returns once `ready` (a path under root) answers 200.
    """
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
    started = procs.start("nginx", argv, dict(os.environ), workdir / "nginx.log", port)
    wait_ok(started, ready, started.started_at + 10)
    return started


# --- memory and time -----------------------------------------------------------------------


@dataclass(frozen=True)
class Memory:
    """Memory of a group of processes (a server's master and workers), summed."""

    processes: int
    rss_kb: int
    pss_kb: int  # pages shared by forked workers counted once

    @property
    def rss_mb(self) -> float:
        return self.rss_kb / 1024

    @property
    def pss_mb(self) -> float:
        return self.pss_kb / 1024

    def __str__(self) -> str:
        return f"{self.processes} processes, RSS {self.rss_mb:.0f} MB, PSS {self.pss_mb:.0f} MB"


def measure_memory(pids: Sequence[int]) -> Memory:
    """Sum RSS and PSS over `pids`, from /proc/<pid>/smaps_rollup."""
    rss = pss = 0
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        fields = dict(re.findall(r"^(\w+):\s+(\d+) kB", text, re.M))
        rss += int(fields.get("Rss", 0))
        pss += int(fields.get("Pss", 0))
    return Memory(len(pids), rss, pss)


def cpu_seconds() -> float:
    """Return the CPU seconds of this process and its finished (waited-for) children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def median(values: Sequence[float]) -> float:
    """The median, or NaN for no values (a report cell reads "-")."""
    return statistics.median(values) if values else math.nan


def p95(values: Sequence[float]) -> float:
    """Nearest-rank 95th percentile, or NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def git_state() -> str:
    """Return the checkout's commit, and whether feedsvc/ has uncommitted changes."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), *args], capture_output=True, text=True, check=False
        )
        return done.stdout.strip()

    dirty = (
        " + uncommitted changes in feedsvc/"
        if git("status", "--porcelain", "--", "feedsvc")
        else ""
    )
    return f"{git('rev-parse', '--short', 'HEAD') or '?'}{dirty}"
