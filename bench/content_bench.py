"""Content-side costs of live reload: full load, write → served latency, per-request cost, memory.

    python bench/content_bench.py [--sizes 100,10000] [--repeats 20]

Sites come from bench/corpus.py (`--sections 8 --seed 1`), cached in /tmp/feedsvc-bench/<N>
and generated there when missing; every edit goes to a temporary copy, so the cache stays
pristine. Servers listen on 127.0.0.1 only, and every process started here is stopped here.
Progress is logged to stderr; the results table goes to stdout.

What the numbers mean:

1. Full load, median of fresh processes (imports and caches count as they would at a restart;
   the OS file cache is warm). `import` is `import feedsvc` (Flask, feedgen, cmark, …);
   `first snapshot()` reads and parses every file and renders every feed; `load_site()` only
   parses; `flask --app wsgi check` is the admin command's wall time, interpreter start included.
   `first request` is how long a fresh granian worker takes to answer its first request.
2. Write → served: an article file is created, edited (in place with open(..., "w"), and
   through a temporary file and os.replace, as editors and rsync save), renamed and deleted;
   the clock runs from the end of that file operation until the section feed and the site
   feed both show the change on every worker. Each worker is polled (every --poll-ms) over a
   keep-alive connection known to be accepted by that worker (found through /proc), with
   If-None-Match, as feed readers poll. Changes are spaced past the next whole second: feedsvc
   gives every new feed version a later Last-Modified, so a change within the second after the
   previous one waits for the clock; the "again at once" row measures exactly that case.
3. Per-request cost under granian: wrk (-t1 -c8) throughput, and the median latency of a
   sequential keep-alive client; the ratio is 10k/100 per request (time, not rate), which
   should be ~1 for answers precomputed per snapshot. "First render" rows are the first
   request for a page after a content change (a new snapshot starts with an empty page cache).
4. Memory: RSS and PSS (from /proc/<pid>/smaps_rollup), summed over the server's processes.

    python bench/content_bench.py --parse-cpu 10000 [--against /work/main] [--parse-rounds 5]

prints instead what reading one article file costs: CPU time (process_time) of
loader.read_content_file over every file of the corpus, in one process with one parse
context, as a first start's reader processes do, and the share of it that the front matter
(split_front_matter: YAML) takes. With --against, another checkout's code reads the same
files, in fresh processes taking turns with this one's, so both see the same load.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import http.client
import json
import logging
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (
    HOST,
    PROJECT_ROOT,
    SECTIONS,
    SEED,
    Memory,
    Processes,
    Reply,
    Started,
    child_env,
    copy_site,
    descendants,
    ensure_corpus,
    feed_paths,
    fetch_on,
    git_state,
    measure_memory,
    median,
    p95,
    python_tool,
    run_wrk,
    setup_logging,
    start_feedsvc,
    wait_listening,
)

SECTION = "news"  # the busiest section of a corpus
EVENT_DEADLINE = 30.0  # seconds to wait for one change to be served
FIRST_REQUEST_TIMEOUT = 300.0
RATIO_WARN = 1.5  # a per-request ratio above this is reported as "not ~1"

log = logging.getLogger("content_bench")


# ---------------------------------------------------------------- 1. full load


def child_main(mode: str, content: str) -> None:
    """Run inside a fresh process: time imports, create_app and the first snapshot or parse."""
    started = time.perf_counter()
    os.environ["FEEDSVC_CONTENT_DIR"] = content
    import feedsvc
    from feedsvc.loader import load_site

    imported = time.perf_counter()
    app = feedsvc.create_app()
    created = time.perf_counter()
    store = app.extensions["feedsvc"]
    if mode == "app":
        site = store.snapshot().site
        store.close()
    else:
        site = load_site(store.settings)
    done = time.perf_counter()
    result = {
        "import": imported - started,
        "create_app": created - imported,
        "work": done - created,
        "articles": len(site.articles),
        "problems": len(site.problems),
    }
    print(json.dumps(result))


def run_child(mode: str, content: Path) -> tuple[dict, float]:
    """Run child_main in a fresh interpreter; return its timings and the process wall time."""
    command = [sys.executable, str(Path(__file__).resolve()), "--child", mode, str(content)]
    started = time.perf_counter()
    run = subprocess.run(command, cwd=PROJECT_ROOT, env=child_env(), capture_output=True, text=True)
    wall = time.perf_counter() - started
    if run.returncode != 0:
        raise RuntimeError(f"child {mode} failed:\n{run.stderr[-2000:]}")
    return json.loads(run.stdout.strip().splitlines()[-1]), wall


def time_check(content: Path) -> tuple[float, str]:
    """Time `flask --app wsgi check` on a site; return (seconds, its last output line)."""
    command = [*python_tool("flask"), "--app", "wsgi", "check"]
    env = child_env(FEEDSVC_CONTENT_DIR=str(content))
    started = time.perf_counter()
    run = subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    lines = run.stdout.strip().splitlines()
    return wall, f"exit {run.returncode}: {lines[-1] if lines else run.stderr[-200:]}"


def measure_load(site: Path, runs: int) -> dict[str, float | str]:
    """Median timings of full loads of `site`, each in a fresh process."""
    samples: dict[str, list[float]] = {}
    check_note = ""

    def add(key: str, value: float) -> None:
        samples.setdefault(key, []).append(value)

    for run in range(runs):
        log.info("full load of %s, run %d/%d", site, run + 1, runs)
        app, wall = run_child("app", site)
        add("import", app["import"])
        add("create_app", app["create_app"])
        add("snapshot", app["work"])
        add("app_total", app["create_app"] + app["work"])
        add("app_wall", wall)
        parse, _ = run_child("parse", site)
        add("import", parse["import"])
        add("load_site", parse["work"])
        seconds, check_note = time_check(site)
        add("check", seconds)
    result: dict[str, float | str] = {key: median(values) for key, values in samples.items()}
    result["articles"] = f"{app['articles']} published+scheduled, {app['problems']} problems"
    result["check_note"] = check_note
    return result


# ---------------------------------------------------------------- per-file parse CPU


def parse_cpu_child(content: str, rounds: str) -> None:
    """Run inside a fresh process: the CPU time of reading every file, best of `rounds`.

    The feedsvc read is the one of the checkout in $BENCH_CODE_ROOT (this one by default).
    """
    sys.path.insert(0, os.environ.get("BENCH_CODE_ROOT", str(PROJECT_ROOT)))
    import config
    from feedsvc import loader, parsing
    from feedsvc.media import media_sizes
    from feedsvc.settings import Settings

    root = Path(content)
    defaults = {key: getattr(config, key) for key in dir(config) if key.isupper()}
    settings = Settings.from_config({**defaults, "CONTENT_DIR": content})
    tree = loader.scan_tree(root)
    texts = [(root / rel).read_text(encoding="utf-8") for rel in tree.files]
    sizes = media_sizes(root)
    best_read = best_front = math.inf
    for _ in range(int(rounds)):
        context = loader.parse_context(settings)
        with loader.cycle_collection_paused():
            started = time.process_time()
            states = [loader.read_content_file(root, rel, context, sizes) for rel in tree.files]
            read = time.process_time() - started
            started = time.process_time()
            for rel, text in zip(tree.files, texts, strict=True):
                with contextlib.suppress(parsing.ContentError):
                    parsing.split_front_matter(text, rel)
            front = time.process_time() - started
        del states
        best_read, best_front = min(best_read, read), min(best_front, front)
    files = len(tree.files)
    print(json.dumps({"files": files, "read": best_read / files, "front": best_front / files}))


def run_parse_cpu(code: Path, content: Path, rounds: int) -> dict:
    """Time parse_cpu_child with the feedsvc of checkout `code`, in a fresh interpreter."""
    command = [sys.executable, str(Path(__file__).resolve()), "--child", "parse-cpu", str(content)]
    command += ["--parse-rounds", str(rounds)]
    env = child_env(BENCH_CODE_ROOT=str(code))
    run = subprocess.run(command, cwd=code, env=env, capture_output=True, text=True)
    if run.returncode != 0:
        raise RuntimeError(f"parse-cpu child ({code}) failed:\n{run.stderr[-2000:]}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def measure_parse_cpu(size: int, codes: list[Path], runs: int, rounds: int) -> str:
    """Per-file read CPU of each checkout, taking turns; a table of the best runs."""
    site = ensure_corpus(size)
    loads: list[float] = []
    best: dict[Path, dict] = {}
    for run in range(runs):
        for code in codes if run % 2 == 0 else codes[::-1]:
            log.info("per-file parse CPU, run %d/%d: %s", run + 1, runs, code)
            loads.append(os.getloadavg()[0])
            result = run_parse_cpu(code, site, rounds)
            if code not in best or result["read"] < best[code]["read"]:
                best[code] = result
    heads = ["code", "files", "ms/file", "front matter", "the rest", "vs first"]
    first = best[codes[0]]
    rows = [
        [
            f"{code} ({git_state(code)})",
            str(result["files"]),
            ms(result["read"], 3),
            ms(result["front"], 3),
            ms(result["read"] - result["front"], 3),
            ratio(result["read"], first["read"]),
        ]
        for code, result in best.items()
    ]
    head = (
        f"Per-file parse CPU (process_time, best of {runs} processes × {rounds} passes), "
        f"{size} articles, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, "
        f"1-min load average {min(loads):.1f}–{max(loads):.1f}, Python {platform.python_version()}"
    )
    return head + "\n" + table(heads, rows)


# ---------------------------------------------------------------- servers


def server_argv(kind: str, port: int) -> list[str]:
    """granian with two workers, or the werkzeug dev server (`flask run`)."""
    if kind == "granian":
        return [
            *python_tool("granian"),
            *("--interface", "wsgi", "--host", HOST, "--port", str(port)),
            *("--workers", "2", "wsgi:app"),
        ]
    return [*python_tool("flask"), "--app", "wsgi", "run", "--host", HOST, "--port", str(port)]


@contextlib.contextmanager
def running_server(kind: str, content: Path, workdir: Path) -> Iterator[Started]:
    """Start a server on 127.0.0.1 for `content`; stop it and its workers on the way out."""
    procs = Processes()
    log_path = workdir / f"{kind}-{content.name}.log"
    server = start_feedsvc(procs, kind, partial(server_argv, kind), content, log_path)
    try:
        wait_listening(server, workers=2 if kind == "granian" else 0)
        server.workers = descendants(server.pid) if kind == "granian" else [server.pid]
        log.info("%s on port %d: pid %d, workers %s", kind, server.port, server.pid, server.workers)
        yield server
    finally:
        procs.stop_all()


# ---------------------------------------------------------------- per-worker connections


def server_side_inode(server_port: int, client_port: int) -> str | None:
    """Find the server end of our connection in /proc/net/tcp: its socket inode."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as rows:
            next(rows)
            for row in rows:
                fields = row.split()
                local, remote = fields[1].rsplit(":", 1)[1], fields[2].rsplit(":", 1)[1]
                if int(local, 16) == server_port and int(remote, 16) == client_port:
                    return fields[9]
    return None


def socket_owner(server_port: int, client_port: int, pids: list[int]) -> int | None:
    """Return which of `pids` accepted our connection from `client_port`."""
    inode = server_side_inode(server_port, client_port)
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                        return pid
    return None


class WorkerConnections:
    """One keep-alive connection per worker process, so each worker can be asked on its own."""

    def __init__(self, server: Started):
        self.server = server
        self.conns: dict[int, http.client.HTTPConnection] = {}
        self.first_response: dict[int, float] = {}
        self.repins = 0

    def pin_all(self) -> None:
        """Open connections until every worker holds one; a first request loads its content."""
        self._pin(set(self.server.workers))

    def _pin(self, wanted: set[int], attempts: int = 400) -> None:
        spare: list[http.client.HTTPConnection] = []  # held open a while so accepts move on
        try:
            for _ in range(attempts):
                missing = wanted - self.conns.keys()
                if not missing:
                    return
                conn = http.client.HTTPConnection(HOST, self.server.port, FIRST_REQUEST_TIMEOUT)
                conn.connect()
                started = time.perf_counter()
                fetch_on(conn, "/healthz", {})
                elapsed = time.perf_counter() - started
                owner = self.owner(conn)
                if owner is not None:
                    self.first_response.setdefault(owner, elapsed)
                if owner in missing:
                    self.conns[owner] = conn
                    continue
                spare.append(conn)
                if len(spare) > 16:
                    spare.pop(0).close()
        finally:
            for conn in spare:
                conn.close()
        raise RuntimeError(f"no connection reached workers {sorted(missing)} in {attempts} tries")

    def owner(self, conn: http.client.HTTPConnection) -> int | None:
        """Return the worker that accepted `conn`, a connection that has answered a request."""
        if len(self.server.workers) == 1:  # also for servers that close every connection
            return self.server.workers[0]
        if conn.sock is None:
            return None
        client_port = conn.sock.getsockname()[1]
        return socket_owner(self.server.port, client_port, self.server.workers)

    def get(self, worker: int, path: str, headers: dict[str, str] | None = None) -> Reply:
        """GET on `worker`'s connection, reconnecting to the same worker if it was closed."""
        if self.conns[worker].sock is None and len(self.server.workers) > 1:
            self.conns.pop(worker)  # a new connection might reach another worker
            self.repins += 1
            self._pin({worker})
        try:
            return fetch_on(self.conns[worker], path, headers or {})
        except (OSError, http.client.HTTPException):
            self.conns.pop(worker).close()
            self.repins += 1
            self._pin({worker})
            return fetch_on(self.conns[worker], path, headers or {})

    def close(self) -> None:
        for conn in self.conns.values():
            conn.close()


def warm(server: Started, conns: WorkerConnections, content: Path) -> list[str]:
    """Load the content in every worker and fetch every feed and the main pages once."""
    conns.pin_all()
    paths = feed_paths(content)
    for worker in server.workers:
        for path in [*paths, "/", f"/{SECTION}/"]:
            status, _, _ = conns.get(worker, path, {"Accept-Encoding": "gzip"})
            if status != 200:
                raise RuntimeError(f"warm-up: {path} answered {status}")
    return paths


# ---------------------------------------------------------------- 2. write → served


Check = Callable[[bytes], bool]


@dataclass
class Poller:
    """Poll feeds on every worker with If-None-Match until a check holds on each of them."""

    conns: WorkerConnections
    interval: float
    etags: dict[tuple[int, str], str] = field(default_factory=dict)
    slowest: float = 0.0  # the slowest single poll of the last wait, for diagnosis
    repinned: int = 0  # connections re-opened during the last wait

    def wait(self, checks: dict[str, Check], since: float) -> tuple[float, float] | None:
        """Return (first worker, all workers) seconds after `since`, or None on time-out."""
        pending = {(w, path) for w in self.conns.server.workers for path in checks}
        served: dict[int, float] = {}
        deadline = since + EVENT_DEADLINE
        self.slowest, repins = 0.0, self.conns.repins
        while pending and time.perf_counter() < deadline:
            for worker, path in sorted(pending):
                headers = {"Accept-Encoding": "gzip"}
                if (worker, path) in self.etags:
                    headers["If-None-Match"] = self.etags[worker, path]
                started = time.perf_counter()
                status, head, body = self.conns.get(worker, path, headers)
                self.slowest = max(self.slowest, time.perf_counter() - started)
                if status != 200:
                    continue
                self.etags[worker, path] = head.get("etag", "")
                if head.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                if checks[path](body):
                    pending.discard((worker, path))
                    if not any(w == worker for w, _ in pending):
                        served[worker] = time.perf_counter() - since
            if pending:
                time.sleep(self.interval)
        self.repinned = self.conns.repins - repins
        if pending:
            return None
        return min(served.values()), max(served.values())


def article_text(title: str, when: datetime) -> str:
    return (
        f"---\ntitle: {title}\ndate: {when:%Y-%m-%dT%H:%M:%SZ}\nauthor: Bench Writer\n"
        "summary: An article written by the content benchmark.\n---\n\n"
        "A short body, enough to render.\n"
    )


def retitle(text: str, title: str) -> str:
    return re.sub(r"^title: .*$", f"title: {title}", text, count=1, flags=re.MULTILINE)


def write_in_place(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as file:
        file.write(text)


def write_replace(path: Path, text: str) -> None:
    """Save the way editors and rsync do: a hidden temporary file, then os.replace."""
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(handle, "w", encoding="utf-8") as file:
        file.write(text)
    os.replace(temp, path)


def after_next_second() -> None:
    """Sleep past the next whole second, so a change never waits for a newer Last-Modified."""
    time.sleep(1.05 - time.time() % 1.0)


SCENARIOS = (
    "create file",
    "edit title, in place",
    "edit title, os.replace",
    "edit again at once (<1 s)",
    "rename file",
    "delete file",
)
SCENARIO_TITLES = ("new", "edited in place", "replaced", "edited again")


def has(*needles: bytes) -> Check:
    """A check that a feed body contains every one of `needles`."""
    return lambda body: all(needle in body for needle in needles)


def lacks(needle: bytes) -> Check:
    """A check that a feed body no longer contains `needle`."""
    return lambda body: needle not in body


def every(*checks: Check) -> Check:
    return lambda body: all(check(body) for check in checks)


def measure_writes(
    poller: Poller, content: Path, repeats: int, token: str
) -> dict[str, list[tuple[float, float] | None]]:
    """Run `repeats` create/edit/rename/delete cycles on one article; time each until served."""
    results: dict[str, list[tuple[float, float] | None]] = {name: [] for name in SCENARIOS}
    feeds = (f"/{SECTION}.xml", "/feed.xml")

    def served(name: str, change: Callable[[], object], check: Check, gap: bool = True) -> None:
        if gap:
            after_next_second()
        change()
        outcome = poller.wait(dict.fromkeys(feeds, check), time.perf_counter())
        if outcome is None:
            log.warning("%s: not served within %.0f s", name, EVENT_DEADLINE)
        elif outcome[1] > 1.0:
            log.info(
                "  slow: %s took %.0f ms (1st worker %.0f); slowest poll %.0f ms, %d reconnects",
                *(name, outcome[1] * 1000, outcome[0] * 1000),
                *(poller.slowest * 1000, poller.repinned),
            )
        results[name].append(outcome)

    for n in range(repeats):
        slug, moved = f"bench-{token}-{n}", f"bench-{token}-{n}-renamed"
        path, new_path = content / SECTION / f"{slug}.md", content / SECTION / f"{moved}.md"
        new, inplace, replaced, again = (f"Bench {token} {n} {s}" for s in SCENARIO_TITLES)
        text = article_text(new, datetime.now(UTC) - timedelta(minutes=1))
        served(SCENARIOS[0], partial(write_in_place, path, text), has(new.encode()))
        text = retitle(text, inplace)
        served(SCENARIOS[1], partial(write_in_place, path, text), has(inplace.encode()))
        text = retitle(text, replaced)
        served(SCENARIOS[2], partial(write_replace, path, text), has(replaced.encode()))
        text = retitle(text, again)
        served(SCENARIOS[3], partial(write_in_place, path, text), has(again.encode()), gap=False)
        link = f"/{SECTION}/{moved}/".encode()
        old_link = f"/{SECTION}/{slug}/".encode()
        rename = partial(os.rename, path, new_path)
        served(SCENARIOS[4], rename, every(has(link), lacks(old_link)))
        served(SCENARIOS[5], new_path.unlink, lacks(link))
        log.info("  cycle %d/%d: %s", n + 1, repeats, format_cycle(results))
    return results


def format_cycle(results: dict[str, list[tuple[float, float] | None]]) -> str:
    last = [r[-1] for r in results.values()]
    return " ".join("timeout" if r is None else f"{r[1] * 1000:.0f}" for r in last) + " ms"


# ---------------------------------------------------------------- 3. per-request cost


def wrk_sample(url: str, headers: dict[str, str], seconds: int) -> dict[str, float]:
    """Run wrk -t1 -c8 against `url`; return req/s, mean and median latency (s), errors."""
    run = run_wrk(url, headers, seconds, threads=1, connections=8)
    return {
        "rps": run.requests_per_s,
        "mean": run.mean_ms / 1000,
        "p50": run.p50_ms / 1000,
        "bad": float(run.bad_status),
        "socket_errors": float(run.socket_errors),
    }


def client_loop(port: int, path: str, headers: dict[str, str], count: int) -> dict[str, float]:
    """Time `count` sequential GETs on one keep-alive connection; return median/p95 and size."""
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        for _ in range(20):
            status, _, body = fetch_on(conn, path, headers)
        times = []
        for _ in range(count):
            started = time.perf_counter()
            status, _, body = fetch_on(conn, path, headers)
            times.append(time.perf_counter() - started)
    finally:
        conn.close()
    return {"median": median(times), "p95": p95(times), "status": status, "bytes": len(body)}


def newest_items(conns: WorkerConnections, feed: str, count: int) -> list[str]:
    """Return the site paths of the newest `count` items of an RSS feed."""
    worker = conns.server.workers[0]
    _, _, body = conns.get(worker, feed)
    base = f"http://{HOST}:{conns.server.port}"
    links = [item.findtext("link") for item in ET.fromstring(body).iter("item")]
    return [link.removeprefix(base) for link in links[:count] if link]


@dataclass
class RequestTarget:
    """One warmed granian server of the per-request comparison, and what it is asked."""

    result: SizeResult
    server: Started
    conns: WorkerConnections
    content: Path
    scenarios: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)
    articles: list[str] = field(default_factory=list)


def request_scenarios(conns: WorkerConnections, article: str) -> dict:
    """Name → (path, headers) of the requests whose per-request cost is compared."""
    gz = {"Accept-Encoding": "gzip"}
    _, head, _ = conns.get(conns.server.workers[0], "/feed.xml", gz)
    return {
        "feed GET, gzip": ("/feed.xml", gz),
        "feed 304 (If-None-Match)": ("/feed.xml", {**gz, "If-None-Match": head["etag"]}),
        "article page, cached": (article, gz),
        "section page, cached": (f"/{SECTION}/", gz),
        "home page, cached": ("/", gz),
        "/healthz": ("/healthz", gz),
    }


def first_render_round(target: RequestTarget, n: int) -> None:
    """Change the content, wait for the new snapshot, time the first renders on every worker."""
    conns = target.conns
    victim = sorted((target.content / "food").glob("[!_]*.md"))[-1]  # a change no feed shows
    before = {w: conns.get(w, "/healthz")[2] for w in conns.server.workers}
    with open(victim, "ab") as file:
        file.write(b"\n")
    deadline = time.monotonic() + EVENT_DEADLINE
    for worker, old in before.items():
        while conns.get(worker, "/healthz")[2] == old:
            if time.monotonic() > deadline:
                raise RuntimeError("a content change never reached /healthz")
            time.sleep(0.01)
    time.sleep(0.3)  # let any trailing refresh finish: time the render, not a busy worker
    article = target.articles[n % len(target.articles)]
    for worker in conns.server.workers:
        for name, path in (("home", "/"), ("section", f"/{SECTION}/"), ("article", article)):
            started = time.perf_counter()
            status, _, body = conns.get(worker, path, {"Accept-Encoding": "gzip"})
            target.result.renders.setdefault(name, []).append(time.perf_counter() - started)
            target.result.render_bytes[name] = len(body)
            if status != 200:
                raise RuntimeError(f"{path} answered {status}")


def request_round(target: RequestTarget, name: str, args: argparse.Namespace) -> None:
    """Time one scenario once with the sequential client and once with wrk."""
    path, headers = target.scenarios[name]
    for worker in target.server.workers:  # every worker holds the page before timing
        target.conns.get(worker, path, headers)
    loop = client_loop(target.server.port, path, headers, args.client_requests)
    wrk = wrk_sample(target.server.url(path), headers, args.wrk_seconds)
    sample = {**loop, **{f"wrk_{k}": v for k, v in wrk.items()}}
    target.result.requests.setdefault(name, []).append(sample)


def measure_request_costs(
    results: list[SizeResult], sites: dict[int, Path], workdir: Path, args: argparse.Namespace
) -> None:
    """Serve every size at once and alternate between them, so drift in load hits all alike."""
    with contextlib.ExitStack() as stack:
        targets = []
        for n, result in enumerate(results):
            content = copy_site(sites[result.articles], workdir, f"requests-{n}")
            server = stack.enter_context(running_server("granian", content, workdir))
            conns = WorkerConnections(server)
            stack.callback(conns.close)
            warm(server, conns, content)
            articles = newest_items(conns, f"/{SECTION}.xml", args.render_rounds + 1)
            target = RequestTarget(result, server, conns, content, articles=articles[1:])
            target.scenarios = request_scenarios(conns, articles[0])
            targets.append(target)
        for n in range(args.render_rounds):
            log.info("first renders, round %d/%d", n + 1, args.render_rounds)
            for target in targets:
                first_render_round(target, n)
        for n in range(args.request_rounds):
            for name in targets[0].scenarios:
                log.info("per-request cost, round %d/%d: %s", n + 1, args.request_rounds, name)
                for target in targets if n % 2 == 0 else targets[::-1]:
                    request_round(target, name, args)
        for target in targets:
            target.result.memory["granian, after requests"] = measure_memory(target.server.pids())


# ---------------------------------------------------------------- one size, end to end


@dataclass
class SizeResult:
    articles: int
    load: dict = field(default_factory=dict)
    first_request: dict[str, list[float]] = field(default_factory=dict)
    writes: dict[str, dict] = field(default_factory=dict)  # server kind -> scenario -> samples
    renders: dict[str, list[float]] = field(default_factory=dict)
    render_bytes: dict[str, int] = field(default_factory=dict)  # gzip body of each first render
    requests: dict[str, list[dict[str, float]]] = field(default_factory=dict)  # one per round
    memory: dict[str, Memory] = field(default_factory=dict)


def measure_writes_on(kind: str, site: Path, workdir: Path, args, result: SizeResult) -> None:
    """Start `kind` on a copy of `site`, warm it, and time changes until served."""
    content = copy_site(site, workdir, f"{kind}-{result.articles}")
    with running_server(kind, content, workdir) as server:
        conns = WorkerConnections(server)
        try:
            warm(server, conns, content)
            result.first_request[kind] = list(conns.first_response.values())
            result.memory[f"{kind}, after warm-up"] = measure_memory(server.pids())
            log.info("%s, %d articles: %d change cycles", kind, result.articles, args.repeats)
            poller = Poller(conns, args.poll_ms / 1000)
            token = os.urandom(3).hex()
            result.writes[kind] = measure_writes(poller, content, args.repeats, token)
        finally:
            conns.close()
    shutil.rmtree(content, ignore_errors=True)


# ---------------------------------------------------------------- report


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        first = str(cells[0]).ljust(widths[0])
        rest = (str(c).rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))
        return "  ".join([first, *rest]).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)])


def ms(seconds: float, digits: int = 0) -> str:
    return "-" if math.isnan(seconds) else f"{seconds * 1000:.{digits}f}"


def us(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{seconds * 1e6:.0f}"


def ratio(big: float, small: float, flag: bool = False) -> str:
    if not small or math.isnan(small) or math.isnan(big):
        return "-"
    value = big / small
    mark = "  NOT ~1" if flag and value > RATIO_WARN else ""
    return f"{value:.2f}{mark}"


def report_load(results: list[SizeResult]) -> str:
    rows_spec = [
        ("import feedsvc", "import"),
        ("create_app()", "create_app"),
        ("first snapshot() (parse + render feeds)", "snapshot"),
        ("create_app() + first snapshot()", "app_total"),
        ("  process wall (python start → snapshot)", "app_wall"),
        ("load_site() alone (parse only)", "load_site"),
        ("flask --app wsgi check (wall)", "check"),
    ]
    rows = [
        [label]
        + [ms(r.load[key]) for r in results]
        + [ratio(results[-1].load[key], results[0].load[key])]
        for label, key in rows_spec
    ]
    for kind in ("granian", "werkzeug"):
        if all(kind in r.first_request for r in results):
            values = [median(r.first_request[kind]) for r in results]
            label = f"first request to a fresh {kind} worker"
            rows.append([label, *map(ms, values), ratio(values[-1], values[0])])
    heads = ["ms (median)", *(f"{r.articles}" for r in results), "ratio"]
    notes = [f"  {r.articles}: {r.load['articles']}; check {r.load['check_note']}" for r in results]
    return table(heads, rows) + "\n" + "\n".join(notes)


def report_writes(results: list[SizeResult], kind: str) -> str:
    heads = ["change → served on every worker"]
    for r in results:
        heads += [f"{r.articles} med", "p95", "max", "1st wkr"]
    heads.append("ratio")
    rows = []
    for name in SCENARIOS:
        row, medians = [name], []
        for r in results:
            samples = r.writes.get(kind, {}).get(name, [])
            done = [s[1] for s in samples if s is not None]
            first = [s[0] for s in samples if s is not None]
            missing = len(samples) - len(done)
            row += [ms(median(done)), ms(p95(done)), ms(max(done, default=math.nan))]
            row.append(ms(median(first)) + (f" ({missing} t/o)" if missing else ""))
            medians.append(median(done))
        row.append(ratio(medians[-1], medians[0]))
        rows.append(row)
    return table(heads, rows)


def spread(pairs: list[tuple[float, float]]) -> str:
    """The lowest and highest per-round ratio big/small, to show how noisy a ratio is."""
    values = [big / small for big, small in pairs if small]
    return f"{min(values):.2f}–{max(values):.2f}" if len(values) > 1 else ""


def report_requests(results: list[SizeResult]) -> str:
    small, big = results[0], results[-1]
    s, b = small.articles, big.articles
    heads = ["request (granian, 2 workers)", f"bytes {s}", f"bytes {b}"]
    heads += [f"client µs {s}", f"{b}", "ratio", "rounds", f"wrk req/s {s}", f"{b}", "ratio"]
    heads.append("rounds")
    rows = []
    for name, a_rounds in small.requests.items():
        b_rounds = big.requests.get(name, [])
        if not b_rounds:
            continue
        both = a_rounds + b_rounds
        statuses = "/".join(str(code) for code in sorted({int(r["status"]) for r in both}))
        bad = " (wrk: non-2xx/3xx!)" if sum(r["wrk_bad"] for r in both) else ""
        a_us = [r["median"] for r in a_rounds]
        b_us = [r["median"] for r in b_rounds]
        a_rps = [r["wrk_rps"] for r in a_rounds]
        b_rps = [r["wrk_rps"] for r in b_rounds]
        rows.append(
            [
                f"{name} [{statuses}]{bad}",
                f"{a_rounds[0]['bytes']:.0f}",
                f"{b_rounds[0]['bytes']:.0f}",
                us(median(a_us)),
                us(median(b_us)),
                ratio(median(b_us), median(a_us), flag=True),
                spread(list(zip(b_us, a_us, strict=False))),
                f"{median(a_rps):.0f}",
                f"{median(b_rps):.0f}",
                ratio(median(a_rps), median(b_rps), flag=True),
                spread(list(zip(a_rps, b_rps, strict=False))),
            ]
        )
    for name, a_samples in small.renders.items():
        b_samples = big.renders.get(name, [])
        a, b = median(a_samples), median(b_samples)
        sizes = [str(r.render_bytes.get(name, "")) for r in (small, big)]
        row = [f"{name} page, first render (n={len(a_samples)})", *sizes]
        rows.append([*row, us(a), us(b), ratio(b, a, True), "", "", "", "", ""])
    return table(heads, rows)


def report_memory(results: list[SizeResult]) -> str:
    heads = ["MB (all processes)"]
    for r in results:
        heads += [f"RSS {r.articles}", f"PSS {r.articles}"]
    heads.append("PSS ratio")
    rows = []
    for label in results[0].memory:
        row = [label]
        for r in results:
            memory = r.memory.get(label, Memory(0, 0, 0))
            row += [f"{memory.rss_mb:.0f}", f"{memory.pss_mb:.0f}"]
        row.append(ratio(results[-1].memory[label].pss_kb, results[0].memory[label].pss_kb))
        rows.append(row)
    return table(heads, rows)


def report(results: list[SizeResult], args, servers: list[str]) -> str:
    head = (
        f"feedsvc content benchmark: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, git {git_state()}, "
        f"{os.cpu_count()} CPUs, 1-min load average {args.load_at_start:.1f} at the start and "
        f"{os.getloadavg()[0]:.1f} at the end, "
        f"Python {platform.python_version()}\n"
        f"sites: {', '.join(str(r.articles) for r in results)} articles from bench/corpus.py "
        f"--sections {SECTIONS} --seed {SEED}; {args.load_runs} load runs, {args.repeats} "
        f"change cycles, poll every {args.poll_ms} ms, wrk -t1 -c8 -d{args.wrk_seconds}s"
    )
    parts = [head, "", "1. Full load (fresh processes)", report_load(results)]
    for kind in servers:
        title = "granian --workers 2" if kind == "granian" else "werkzeug dev server (flask run)"
        parts += ["", f"2. Write → served, ms: {title}", report_writes(results, kind)]
    if len(results) > 1 and "granian" in servers:
        parts += ["", "3. Per-request cost (ratio = time per request, largest / smallest)"]
        parts += [report_requests(results)]
    parts += ["", "4. Memory of the server processes", report_memory(results)]
    found = flags(results, servers) if len(results) > 1 else []
    parts += ["", "Flags (largest vs smallest site)", *(f"- {line}" for line in found or ["none"])]
    return "\n".join(parts)


def flags(results: list[SizeResult], servers: list[str]) -> list[str]:
    """Say in words what is clearly not flat, or slow, so nobody has to read every cell."""
    small, big = results[0], results[-1]
    found = []
    if big.load["check"] > 5.0:
        found.append(f"flask check on {big.articles} articles takes {big.load['check']:.1f} s")
    for kind in servers:
        for name in SCENARIOS:
            a, b = (
                [s[1] for s in r.writes.get(kind, {}).get(name, []) if s is not None]
                for r in (small, big)
            )
            if len(b) < len(big.writes.get(kind, {}).get(name, [])):
                found.append(f"{kind}, {name}: some changes were never served")
            if a and b and median(b) > RATIO_WARN * median(a):
                found.append(
                    f"{kind}, {name}: served after {ms(median(b))} ms at {big.articles} articles "
                    f"vs {ms(median(a))} ms at {small.articles}: a change costs more in a big site"
                )
    for name, a_rounds in small.requests.items():
        a = median([r["median"] for r in a_rounds])
        b = median([r["median"] for r in big.requests.get(name, [])])
        a_rps = median([r["wrk_rps"] for r in a_rounds])
        b_rps = median([r["wrk_rps"] for r in big.requests.get(name, [])])
        if b > RATIO_WARN * a or a_rps > RATIO_WARN * b_rps:
            found.append(
                f"{name}: per-request ratio {b / a:.2f} (client), {a_rps / b_rps:.2f} (wrk)"
            )
    for name, a_samples in small.renders.items():
        a, b = median(a_samples), median(big.renders.get(name, []))
        if b > RATIO_WARN * a:
            sizes = f"{small.render_bytes.get(name)} vs {big.render_bytes.get(name)} gzip bytes"
            found.append(f"{name} page, first render: ratio {b / a:.2f} ({sizes})")
    return found


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,10000", help="article counts, comma-separated")
    parser.add_argument("--repeats", type=int, default=20, help="change cycles per server")
    parser.add_argument("--load-runs", type=int, default=3, help="fresh processes per load")
    parser.add_argument("--poll-ms", type=float, default=5.0, help="poll interval")
    parser.add_argument("--wrk-seconds", type=int, default=5)
    parser.add_argument("--client-requests", type=int, default=1000)
    parser.add_argument("--render-rounds", type=int, default=5)
    parser.add_argument("--request-rounds", type=int, default=3)
    parser.add_argument("--servers", default="granian,werkzeug")
    parser.add_argument("--parse-cpu", type=int, metavar="N", help="per-file parse CPU only")
    parser.add_argument("--against", type=Path, help="with --parse-cpu: another checkout")
    parser.add_argument("--parse-runs", type=int, default=3, help="fresh processes per checkout")
    parser.add_argument("--parse-rounds", type=int, default=3, help="passes per process")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "DIR"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child and args.child[0] == "parse-cpu":
        parse_cpu_child(args.child[1], str(args.parse_rounds))
        return 0
    if args.child:
        child_main(*args.child)
        return 0
    setup_logging()
    if args.parse_cpu:
        codes = [PROJECT_ROOT, *([args.against.resolve()] if args.against else [])]
        print(measure_parse_cpu(args.parse_cpu, codes, args.parse_runs, args.parse_rounds))
        return 0
    args.load_at_start = os.getloadavg()[0]
    sizes = sorted(int(size) for size in args.sizes.split(","))
    servers = [kind for kind in args.servers.split(",") if kind]
    sites = {size: ensure_corpus(size) for size in sizes}
    results = [SizeResult(size) for size in sizes]
    for result in results:
        result.load = measure_load(sites[result.articles], args.load_runs)
    workdir = Path(tempfile.mkdtemp(prefix="feedsvc-content-bench-"))
    try:
        for result in results:
            for kind in servers:
                measure_writes_on(kind, sites[result.articles], workdir, args, result)
        if "granian" in servers:
            measure_request_costs(results, sites, workdir, args)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(report(results, args, servers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
