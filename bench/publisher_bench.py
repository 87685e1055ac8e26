"""Start with and without an index, edit → visible, memory: granian with 1, 2 and 4 workers.

    python bench/publisher_bench.py [--sizes 1000,10000] [--workers 1,2,4] [--edits 5]
                                    [--crawl [--crawl-pages N]] [--under-edits 10 [--repeats 3]]
                                    [--edit-coding gzip]
    python bench/publisher_bench.py --sizes 10000 --under-edits 10 --against /work/main
    python bench/publisher_bench.py --in-process [--sizes 1000,10000,100000] [--edits 5]
    python bench/publisher_bench.py --cold-phases [--sizes 10000,100000]
    python bench/publisher_bench.py --cold --sizes 10000,100000 --against /work/main [--repeats 2]
    python bench/publisher_bench.py --warm --sizes 100000 --workers 1,2 --against /work/main

For each size (a cached corpus from bench/corpus.py, copied so edits never touch the cache)
and each worker count, with a fresh state folder:

1. **cold start**: granian started, no index; the clock runs until every site and section
   feed (RSS, Atom and JSON) has answered 200, each on a fresh connection (from a first
   look, see feedsvc/firstlook.py, where the tree is large). Tag, author and archive feeds
   are rendered on their first request, from the live snapshot only. **cold → live**: on
   until /healthz says `"serving": "live"` with a generation (every file read in full, the
   index written).
2. **warm start**: the same server stopped and started again, on the same address, on
   the index it wrote (its feeds answered from the stored publication, if still current,
   while the content loads); **live**: until /healthz says `"serving": "live"` on
   `2 × workers` fresh connections in a row (the content loaded in every worker; memory
   and edits follow). Each with the CPU seconds the server's processes had used then
   (less noisy than the clock on a shared machine).
3. **edit → visible**: an article of the busiest section is retitled in place, and the
   clock runs until its section feed shows the new title on `2 × workers` fresh
   connections in a row (so every worker, with high probability); median and max.
   The polls ask for identity, or (`--edit-coding gzip`) gzip as most readers do, so
   the time includes compressing the new document.
4. **memory**: RSS and PSS (kB, /proc/<pid>/smaps_rollup) summed over granian's processes
   after the warm start, and again after `--crawl`ing every feed of /feeds.opml in every
   format (tag and author feeds included), if asked; with `--crawl-pages N`, also the home,
   section, older-section, tag and author pages and every N-th article page. With
   `--memory --workers 1,2` it also prints what each worker beyond the first adds (the
   difference of the PSS sums), the figure issue 11 bounds at 30 MB. `--memory` also
   measures the first start once it is live, before that restart: what a first start
   leaves in memory until the server is restarted.
5. **serving under edits** (`--under-edits SECONDS`): wrk polls a feed no edit touches
   (`/culture.xml`, gzip) for SECONDS, then at once again while an article of the busiest
   section is retitled once a second; then, with no requests, the server's CPU (all its
   processes) idle and with edits gives its CPU per edit. `--repeats` such rounds; medians
   with their range. With `--against DIR[,DIR]`, only this step, for each checkout's code
   served side by side (each on its own copy of the corpus), taking turns round by round.

   On a shared machine, requests/s swing with other tenants' load far more than edits move
   them (each run prints the share of CPU other processes took): compare servers only
   side by side, over repeats, and read the CPU per edit, which hardly depends on load.
   On a machine the server saturates, that CPU is what an edit takes from serving.

With `--in-process`, no server: the store is loaded in this process and the CPU time of
`store.refresh([path])` after each edit (re-read, assemble, feeds re-described, the site
and section feeds rendered) is measured, with its ratio to the smallest size's; so is
the CPU of a follower (a second store on the same state folder, as another worker is)
taking up each publication; then the CPU of a rescan that finds nothing changed (the
watcher's safety net, every 60 s); then the CPU of rendering the site feed again in each
format after one of its items changed.

With `--cold`, only a first start (one worker, or each count of `--workers`; no index, the
cached corpus served as it is, never edited): **every feed served** (the site and section
feeds, RSS, Atom and JSON, as in 1.) and **live** (every file read in full, /healthz says
`"serving": "live"`; a follower: `"index"`), each with the CPU seconds of the server's
processes and of the parsing processes they had ended then; with `--against DIR[,DIR]`,
each checkout's code in turn, round by round, on the same corpus (`--repeats` rounds, the
load average printed with each run).

With `--warm`, only warm restarts: each checkout's code starts once with no index (on the
cached corpus, only read), then again on the index it wrote, taking turns (`--repeats`
rounds): **every feed served** (from the stored publication) and **live**, each with the
CPU seconds of the server's processes and of those they ended.

With `--cold-phases`, no server either: a first start's first look (the site and section
feeds from every file's front matter, see feedsvc/firstlook.py) is timed, then the store
loads the cached corpus in this process with no index, as a first start does after it,
and the time of each phase is printed: reading
(wall; this process's CPU, mostly taking the parsed files back; the CPU of the worker
processes that parsed them), assembling, publishing (listings, feeds rendered) and
recording (the index written), from the store's own debug log of the refresh, each with
this process's CPU (less noisy on a shared machine); then a warm restart: a second store
loading the same content from the index it wrote (wall and CPU).

Servers listen on 127.0.0.1 only; every process started here is stopped here, by pid.
On a shared 2-core machine the numbers are noisy: the header prints the load average.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import logging
import os
import re
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (
    HOST,
    PROJECT_ROOT,
    Memory,
    Processes,
    Started,
    WrkResult,
    copy_site,
    cpu_ticks,
    ensure_corpus,
    feed_paths,
    fetch,
    granian_argv,
    measure_memory,
    median,
    run_wrk,
    setup_logging,
    start_feedsvc,
)
from bench.serve_bench import CpuMeter

log = logging.getLogger("publisher_bench")
START_TIMEOUT = 900.0
# What a publisher logs once a first start has settled (ContentStore._settle): from then
# on it holds what it keeps until a restart.
SETTLED = "first publication loaded again from the index"
SECTION = "news"  # the busiest section of a corpus
QUIET_FEED = "/culture.xml"  # a feed that edits of SECTION leave alone
FEED_EXTENSIONS = ("xml", "atom", "json")  # every format of the site and section feeds


def get(port: int, path: str, coding: str = "identity") -> tuple[int, bytes]:
    """GET on a fresh connection (so the kernel may pick any worker); the body decoded."""
    reply = fetch(port, path, {"Accept-Encoding": coding}, timeout=120)
    body = reply.body
    if reply.headers.get("content-encoding") == "gzip":
        body = gzip.decompress(body)
    return reply.status, body


@contextlib.contextmanager
def granian(
    content: Path,
    state: Path,
    workers: int,
    logs: Path,
    port: int | None = None,
    tree: Path | None = None,
    procs: Processes | None = None,
):
    """Start granian as the README's production command does, with `workers` workers.

    `tree`: serve the code of another checkout (e.g. /work/main), side by side.
    """
    procs = procs if procs is not None else Processes()
    argv = partial(granian_argv, workers=workers)
    log_path = logs / f"granian-{content.name}-{workers}.log"
    env = {"FEEDSVC_STATE_DIR": str(state)}
    started = time.monotonic()
    # `python -m granian` puts its working directory first on sys.path: the tree's code.
    tree = tree or PROJECT_ROOT
    server = start_feedsvc(procs, "granian", argv, content, log_path, port, tree, **env)
    try:
        yield server, started
    finally:
        procs.stop(server)


def serve_every_feed(server: Started, started: float, content: Path) -> float:
    """Return the seconds from the process start until every feed answered 200."""
    pending = feed_paths(content, FEED_EXTENSIONS)
    deadline = started + START_TIMEOUT
    while pending and time.monotonic() < deadline:
        if server.popen.poll() is not None:
            raise RuntimeError(server.log_tail())
        try:
            if get(server.port, pending[0])[0] == 200:
                pending.pop(0)
                continue
        except OSError:
            pass
        time.sleep(0.02)
    if pending:
        raise RuntimeError(f"not served within {START_TIMEOUT} s: {pending[:3]}")
    return time.monotonic() - started


def serve_listed_feeds(server: Started, started: float, content: Path) -> tuple[float, int]:
    """Return the seconds from the process start until every feed /feeds.opml lists, in every
    format, and the newest archive page of the site and each section had answered 200 once
    (a 503 asked again), and how many documents that was."""
    deadline = started + START_TIMEOUT
    paths: set[str] = set()
    for url in re.findall(rb'xmlUrl="([^"]+)"', _until_answered(server, "/feeds.opml", deadline)):
        stem = url.decode().split(str(server.port), 1)[1].rsplit(".", 1)[0]
        paths.update(f"{stem}.{ext}" for ext in FEED_EXTENSIONS)
    for stem in sorted({path.rsplit(".", 1)[0] for path in feed_paths(content)}):
        feed = _until_answered(server, f"{stem}.atom", deadline)
        link = re.search(rb'<link[^>]*"prev-archive"[^>]*>', feed)
        newest = re.search(rb"/archive/([0-9]+)\.atom", link.group(0)) if link else None
        if newest:
            number = int(newest.group(1))
            paths.update(f"{stem}/archive/{number}.{ext}" for ext in FEED_EXTENSIONS)
    for path in sorted(paths):
        _until_answered(server, path, deadline)
    return time.monotonic() - started, len(paths)


def _until_answered(server: Started, path: str, deadline: float) -> bytes:
    """GET `path` until it answers 200; return its body."""
    while time.monotonic() < deadline:
        try:
            status, body = get(server.port, path)
        except OSError:  # timed out: the code before the first look waits for the full read
            continue
        if status == 200:
            return body
        time.sleep(0.05)
    raise RuntimeError(f"{path} not served within {START_TIMEOUT} s")


def serve_live(server: Started, started: float, workers: int) -> float:
    """Return the seconds from the process start until every worker serves its live snapshot
    (or, a follower, the publisher's publication from the index), each worker seen so.

    A first start's live snapshot serves before it is recorded in the index; generation 0
    says it is not yet, and a stop then would leave a restart with no index to start from.
    """
    deadline = started + START_TIMEOUT
    seen = 0
    live: set = set()  # every worker, by pid: one still loading may seldom answer
    while seen < 2 * workers or len(live) < workers:
        if time.monotonic() > deadline:
            raise RuntimeError(f"not live within {START_TIMEOUT} s")
        reply = fetch(server.port, "/healthz", timeout=120)
        publishing = json.loads(reply.body).get("publishing", {})
        serving = publishing.get("serving", "live")
        recorded = publishing.get("generation", 1) > 0
        seen = seen + 1 if serving in ("live", "index") and recorded else 0  # index: a follower
        if seen:
            live.add(publishing.get("pid"))
        else:
            time.sleep(0.05)
    return time.monotonic() - started


def settled_count(server: Started) -> int:
    """Return how many first starts the server's log says have settled."""
    return server.log_path.read_text(errors="replace").count(SETTLED)


def wait_settled(server: Started, tree: Path, earlier: int) -> None:
    """Wait until a first start's publisher has settled, if the tree's code settles: /healthz
    says "live" for a moment between its first publication and the load again.
    `earlier`: settled_count before this start."""
    if SETTLED not in (tree / "feedsvc" / "store.py").read_text():
        return
    deadline = time.monotonic() + START_TIMEOUT
    while settled_count(server) <= earlier:
        if time.monotonic() > deadline:
            raise RuntimeError(f"not settled within {START_TIMEOUT} s")
        time.sleep(0.2)


def server_cpu_seconds(server: Started, children: bool = False) -> float:
    """Return the CPU seconds used so far by the server's processes (those still running);
    `children`: and by the processes they have ended (parsing processes)."""
    ticks = sum(cpu_ticks(pid, children) for pid in server.pids())
    return ticks / os.sysconf("SC_CLK_TCK")


def edit_times(
    server: Started, content: Path, workers: int, edits: int, coding: str = "identity"
) -> list[float]:
    """Retitle one article `edits` times; return each edit's time until seen everywhere.

    `coding`: what the polls accept; gzip, as most readers do, includes compressing.
    """
    path = newest_article(server, content)
    times = []
    for n in range(edits):
        text = path.read_text(encoding="utf-8")
        title = f"Edited {os.getpid()}-{n}-{time.time_ns()}"
        text = re.sub(r"(?m)^title: .*$", f'title: "{title}"', text, count=1)
        time.sleep(1.1)  # past the second: the previous version's Last-Modified is behind us
        start = time.monotonic()
        path.write_text(text, encoding="utf-8")
        streak = 0
        while streak < 2 * workers:
            if time.monotonic() - start > 60:
                raise RuntimeError(f"edit {n} not visible within 60 s")
            _, body = get(server.port, f"/{SECTION}.xml", coding)
            streak = streak + 1 if title.encode() in body else 0
            if not streak:
                time.sleep(0.005)
        times.append(time.monotonic() - start)
    return times


def newest_article(server: Started, content: Path) -> Path:
    """Return the file of the newest article of SECTION: it is in the feeds, edits show."""
    _, feed = get(server.port, f"/{SECTION}.xml")
    slug = re.search(rb"<item>.*?<link>[^<]*/([^/<]+)/</link>", feed, re.S).group(1).decode()
    return content / SECTION / f"{slug}.md"


class Editor:
    """Retitle one article once a second in a thread, while a `with` block runs."""

    def __init__(self, path: Path):
        self.path = path
        self.edits = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="editor")

    def __enter__(self) -> Editor:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            text = self.path.read_text(encoding="utf-8")
            title = f"Under load {os.getpid()}-{time.time_ns()}"
            text = re.sub(r"(?m)^title: .*$", f'title: "{title}"', text, count=1)
            self.path.write_text(text, encoding="utf-8")
            self.edits += 1


@dataclass(frozen=True)
class LoadRun:
    """One wrk run on QUIET_FEED: what it reports, and what the machine did meanwhile."""

    wrk: WrkResult
    server_cpu: float  # CPU seconds of the server's processes (master and workers)
    foreign_cpu: float  # share of the machine's CPU other processes took
    edits: int
    load: float  # 1-minute load average at the end


@dataclass
class UnderEdits:
    """Pairs of runs on one server: without edits, then at once with one edit a second."""

    label: str
    quiet: list[LoadRun] = field(default_factory=list)
    busy: list[LoadRun] = field(default_factory=list)

    def kept(self) -> list[float]:
        """Return each pair's requests/s with edits ÷ without."""
        return [
            b.wrk.requests_per_s / q.wrk.requests_per_s
            for q, b in zip(self.quiet, self.busy, strict=True)
        ]

    # Server CPU seconds per edit without load: (with edits − idle) ÷ edits, per repeat.
    edit_cpu: list[float] = field(default_factory=list)


def edit_cpu_run(server: Started, meter: CpuMeter, seconds: float, path: Path) -> float:
    """Return the server's CPU seconds per edit, in all its processes, with no requests.

    CPU time hardly depends on other tenants, unlike requests/s: on a machine the
    server saturates, what publishing and following cost per edit is what it takes
    from serving. Measured idle for `seconds`, then for `seconds` of edits.
    """
    before = meter.server_seconds(server.port)
    time.sleep(seconds)
    idle = meter.server_seconds(server.port) - before
    with Editor(path) as editor:
        time.sleep(seconds)
    time.sleep(0.5)  # the last edit's refresh
    busy = meter.server_seconds(server.port) - before - idle
    return (busy - idle * (seconds + 0.5) / seconds) / max(editor.edits, 1)


def load_run(server: Started, meter: CpuMeter, seconds: float, path: Path | None) -> LoadRun:
    """Poll QUIET_FEED (gzip) for `seconds`; with `path`, retitle it once a second meanwhile."""
    url, headers = server.url(QUIET_FEED), {"Accept-Encoding": "gzip"}
    before, server_before = meter.sample(), meter.server_seconds(server.port)
    editor = Editor(path) if path is not None else contextlib.nullcontext()
    with editor:
        result = run_wrk(url, headers, seconds)
    if path is not None:
        time.sleep(0.5)  # the last edit's refresh is this run's, not the next one's
    server_cpu = meter.server_seconds(server.port) - server_before
    foreign = meter.foreign_share(before, meter.sample())
    edits = editor.edits if path is not None else 0
    return LoadRun(result, server_cpu, foreign, edits, os.getloadavg()[0])


def serving_under_edits(
    servers: dict[str, tuple[Started, Path]], meter: CpuMeter, seconds: float, repeats: int
) -> dict[str, UnderEdits]:
    """Poll a feed no edit touches without edits, then with one edit a second, `repeats` times.

    Each pair runs back to back, and servers take turns pair by pair, so the machine's
    drift (other tenants) falls on every server and on both halves of a pair alike.
    """
    articles = {
        label: newest_article(server, content) for label, (server, content) in servers.items()
    }
    for label, (server, _) in servers.items():  # warm-up: connections, first edits
        run_wrk(server.url(QUIET_FEED), {"Accept-Encoding": "gzip"}, 2)
        load_run(server, meter, 3, articles[label])
    results = {label: UnderEdits(label) for label in servers}
    for n in range(repeats):
        for label, (server, _) in servers.items():
            quiet = load_run(server, meter, seconds, None)
            busy = load_run(server, meter, seconds, articles[label])
            results[label].quiet.append(quiet)
            results[label].busy.append(busy)
            results[label].edit_cpu.append(edit_cpu_run(server, meter, seconds, articles[label]))
            log.info(
                "%s pair %d: %.0f → %.0f req/s (%.0f%%), p99 %.2f → %.2f ms, %d edits,"
                " other processes %.0f%% / %.0f%% CPU, load %.2f",
                label,
                n + 1,
                quiet.wrk.requests_per_s,
                busy.wrk.requests_per_s,
                100 * busy.wrk.requests_per_s / quiet.wrk.requests_per_s,
                quiet.wrk.p99_ms,
                busy.wrk.p99_ms,
                busy.edits,
                100 * quiet.foreign_cpu,
                100 * busy.foreign_cpu,
                busy.load,
            )
            log.info(
                "%s pair %d: %.1f ms CPU per edit, no load",
                label,
                n + 1,
                1000 * results[label].edit_cpu[-1],
            )
    return results


def crawl(server: Started, content: Path) -> int:
    """Fetch every feed /feeds.opml lists and every archive page, in every format."""
    _, opml = get(server.port, "/feeds.opml")
    urls = re.findall(rb'xmlUrl="([^"]+)"', opml)
    paths = set()
    for url in urls:
        path = url.decode().split(str(server.port), 1)[1]
        stem = path.rsplit(".", 1)[0]
        paths.update(f"{stem}.{ext}" for ext in ("xml", "atom", "json"))
    stems = {path.rsplit(".", 1)[0] for path in feed_paths(content)}  # site and sections
    for stem in sorted(stems):
        _, feed = get(server.port, f"{stem}.atom")
        link = re.search(rb'<link[^>]*"prev-archive"[^>]*>', feed)
        newest = re.search(rb"/archive/([0-9]+)\.atom", link.group(0)) if link else None
        for number in range(1, int(newest.group(1)) + 1 if newest else 1):
            paths.update(f"{stem}/archive/{number}.{ext}" for ext in ("xml", "atom", "json"))
    for path in sorted(paths):
        get(server.port, path)
    return len(paths)


def crawl_pages(server: Started, content: Path, every: int) -> int:
    """Fetch the home page, every section page and its older pages, every tag and author
    page /feeds.opml leads to, and every `every`-th article page of each section."""
    _, opml = get(server.port, "/feeds.opml")
    paths = {"/"}
    for url in re.findall(rb'xmlUrl="([^"]+)"', opml):
        path = url.decode().split(str(server.port), 1)[1]
        if path.startswith(("/tags/", "/authors/")):
            paths.add(path.rsplit(".", 1)[0] + "/")
    for section in sorted(p for p in content.iterdir() if p.is_dir() and p.name != "media"):
        slugs = sorted(f.stem for f in section.glob("*.md") if not f.name.startswith("_"))
        paths.add(f"/{section.name}/")
        paths.update(f"/{section.name}/page/{n}/" for n in range(2, len(slugs) // 50 + 2))
        paths.update(f"/{section.name}/{slug}/" for slug in slugs[::every])
    for path in sorted(paths):
        get(server.port, path)  # a scheduled article or a short last page: 404, as a crawler
    return len(paths)


def memory_side_by_side(size: int, workers: int, trees: list[Path], args, workdir: Path) -> list:
    """For each tree's code in turn: memory after a warm start, after a crawl of every feed
    in every format, and after a crawl of the pages; one row each."""
    rows = []
    content = copy_site(ensure_corpus(size), workdir, f"site-{size}-{workers}-memory")
    for n, tree in enumerate(trees):
        state = workdir / f"state-{size}-{workers}-memory-{n}"
        row: dict = {"size": size, "workers": workers, "tree": str(tree)}
        port = None
        for start in ("cold", "warm"):  # the cold one writes the index the warm one reads
            with granian(content, state, workers, workdir, port, tree) as (server, started):
                port = server.port
                earlier = settled_count(server)  # the log is appended to, start after start
                serve_every_feed(server, started, content)
                row[start] = serve_live(server, started, workers)
                if start == "cold":  # what the first start leaves until a restart
                    wait_settled(server, tree, earlier)
                    time.sleep(1)
                    row["cold_mem"] = measure_memory(server.pids())
                    continue
                time.sleep(1)
                row["load"] = os.getloadavg()[0]
                row["warm_mem"] = measure_memory(server.pids())
                row["feeds"] = crawl(server, content)
                row["feeds_mem"] = measure_memory(server.pids())
                if args.crawl_pages:
                    row["pages"] = crawl_pages(server, content, args.crawl_pages)
                    row["pages_mem"] = measure_memory(server.pids())
                row["load_end"] = os.getloadavg()[0]
        log.info("%s", row)
        rows.append(row)
    return rows


def memory_report(rows: list[dict]) -> str:
    head = ["articles", "workers", "code", "load", "RSS/PSS MB first start", "warm"]
    head += ["after feeds", "after pages"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        pages = f"{mb(r['pages_mem'])} ({r['pages']} pages)" if "pages" in r else "—"
        cells = [f"{r['size']:,}", str(r["workers"]), r["tree"]]
        cells += [f"{r['load']:.1f}–{r['load_end']:.1f}", mb(r["cold_mem"]), mb(r["warm_mem"])]
        cells += [f"{mb(r['feeds_mem'])} ({r['feeds']} feeds)", pages]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def extra_worker_report(rows: list[dict]) -> str:
    """What each worker beyond the first adds (PSS), from rows of one size and code with one
    worker and with more: (PSS with n workers - PSS with one) / (n - 1)."""
    head = ["articles", "workers", "code", "extra worker PSS MB first start", "warm"]
    head += ["after feeds", "after pages"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    single = {(r["size"], r["tree"]): r for r in rows if r["workers"] == 1}
    for r in rows:
        one = single.get((r["size"], r["tree"]))
        if r["workers"] < 2 or one is None:
            continue
        cells = [f"{r['size']:,}", str(r["workers"]), r["tree"]]
        for key in ("cold_mem", "warm_mem", "feeds_mem", "pages_mem"):
            if key in r and key in one:
                extra = (r[key].pss_mb - one[key].pss_mb) / (r["workers"] - 1)
                cells.append(f"{extra:.0f}")
            else:
                cells.append("—")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) if len(lines) > 2 else ""


def measure(size: int, workers: int, args, workdir: Path) -> dict:
    content = copy_site(ensure_corpus(size), workdir, f"site-{size}-{workers}")
    state = workdir / f"state-{size}-{workers}"
    result: dict = {"size": size, "workers": workers}
    with granian(content, state, workers, workdir) as (server, started):
        result["cold"] = serve_every_feed(server, started, content)
        result["cold_mem"] = measure_memory(server.pids())
        # Then until every file is read in full (a first look answered before): the index
        # written, so the warm start below has it.
        result["cold_live"] = serve_live(server, started, workers)
        port = server.port
    # The same address (SITE_URL), as a restart has: every link in the feeds is the same.
    procs = Processes()
    with granian(content, state, workers, workdir, port, procs=procs) as (server, started):
        result["warm"] = serve_every_feed(server, started, content)
        result["warm_cpu"] = server_cpu_seconds(server)
        result["live"] = serve_live(server, started, workers)
        result["live_cpu"] = server_cpu_seconds(server)
        time.sleep(1)
        result["warm_mem"] = measure_memory(server.pids())
        times = edit_times(server, content, workers, args.edits, args.edit_coding)
        result["edit_p50"], result["edit_max"] = median(times), max(times)
        if args.under_edits:
            runs = serving_under_edits(
                {"this tree": (server, content)},
                CpuMeter(procs),
                args.under_edits,
                args.repeats,
            )
            result["under_edits"] = runs["this tree"]
        if args.crawl:
            result["crawled"] = crawl(server, content)
            result["crawl_mem"] = measure_memory(server.pids())
            if args.crawl_pages:
                result["pages"] = crawl_pages(server, content, args.crawl_pages)
                result["pages_mem"] = measure_memory(server.pids())
    log.info("%s", result)
    return result


def cold_start(
    size: int, trees: list[Path], rounds: int, workdir: Path, workers: int = 1
) -> list[dict]:
    """First starts of each tree's code, taking turns: every feed served, then live."""
    content = ensure_corpus(size)  # only read: no copy needed
    runs = []
    for n in range(rounds):
        for t, tree in enumerate(trees):
            logs = workdir / f"cold-logs-{t}"
            logs.mkdir(exist_ok=True)
            state = workdir / f"cold-state-{size}-{workers}-{t}-{n}"
            code = None if tree == PROJECT_ROOT else tree
            load = os.getloadavg()[0]
            run = {"size": size, "workers": workers, "tree": str(tree), "load": load}
            with granian(content, state, workers, logs, tree=code) as (server, started):
                time_start(run, server, started, content, workers, listed=True)
            log.info("%s", run)
            runs.append(run)
    return runs


def time_start(
    run: dict, server: Started, started: float, content: Path, workers: int, listed: bool = False
) -> None:
    """Record in `run` when every site and section feed had answered, then (`listed`) every
    feed /feeds.opml lists and each newest archive page, then every worker was live, each
    with the CPU of the server's processes and of those they ended."""
    run["served"] = serve_every_feed(server, started, content)
    run["served_cpu"] = server_cpu_seconds(server, children=True)
    log.info("%s", run)
    if listed:
        run["listed"], run["listed_count"] = serve_listed_feeds(server, started, content)
        run["listed_cpu"] = server_cpu_seconds(server, children=True)
        log.info("%s", run)
    try:
        run["live"] = serve_live(server, started, workers)
        run["live_cpu"] = server_cpu_seconds(server, children=True)
    except RuntimeError as exc:  # not live in time: the other figures stand
        log.warning("%s", exc)


def starts_report(runs: list[dict]) -> str:
    """One row per start (--cold, --warm): every feed served and live, with their CPU."""
    lines = [
        "| articles | workers | code | load avg | every feed served | its CPU | every listed"
        " feed and newest archive | its CPU | live | its CPU |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    nan = float("nan")
    lines += [
        f"| {r['size']:,} | {r['workers']} | {r['tree']} | {r['load']:.2f}"
        f" | {r['served']:.2f} s | {r['served_cpu']:.2f} s"
        + (
            f" | {r['listed']:.2f} s ({r['listed_count']}) | {r['listed_cpu']:.2f} s"
            if "listed" in r
            else " | – | –"
        )
        + f" | {r.get('live', nan):.2f} s"
        f" | {r.get('live_cpu', nan):.2f} s |"
        for r in runs
    ]
    return "\n".join(lines)


def warm_starts(size: int, workers: int, trees: list[Path], rounds: int, workdir: Path) -> list:
    """Warm restarts of each tree's code, taking turns, each on the index its own first
    start wrote (on its own copy of the corpus): every feed served, then live."""
    content = ensure_corpus(size)  # only read: no copy needed
    ports: dict[int, int] = {}
    for t, tree in enumerate(trees):  # the first start writes the index the others read
        state = workdir / f"warm-state-{size}-{workers}-{t}"
        with granian(content, state, workers, workdir, tree=tree) as (server, started):
            serve_every_feed(server, started, content)
            serve_live(server, started, workers)
            ports[t] = server.port  # the same address: the stored feeds' links are its own
    runs = []
    for _ in range(rounds):
        for t, tree in enumerate(trees):
            state = workdir / f"warm-state-{size}-{workers}-{t}"
            run = {"size": size, "workers": workers, "tree": str(tree), "load": os.getloadavg()[0]}
            procs = Processes()
            with granian(content, state, workers, workdir, ports[t], tree, procs) as (server, at):
                time_start(run, server, at, content, workers)
            log.info("%s", run)
            runs.append(run)
    return runs


def side_by_side(size: int, workers: int, trees: list[Path], args, workdir: Path) -> dict:
    """Serve each tree's code (this one first) on its own copy of a corpus; under edits only."""
    procs = Processes()
    servers: dict[str, tuple[Started, Path]] = {}
    with contextlib.ExitStack() as stack:
        for n, tree in enumerate(trees):
            label = "this tree" if n == 0 else str(tree)
            name = f"site-{size}-{workers}-{n}"
            content = copy_site(ensure_corpus(size), workdir, name)
            state = workdir / f"state-{size}-{workers}-{n}"
            running = granian(content, state, workers, workdir, None, tree, procs)
            server, started = stack.enter_context(running)
            serve_every_feed(server, started, content)
            serve_live(server, started, workers)
            servers[label] = (server, content)
        runs = serving_under_edits(servers, CpuMeter(procs), args.under_edits, args.repeats)
    return {"size": size, "workers": workers, "trees": runs}


def edit_cpu(size: int, edits: int, workdir: Path) -> dict:
    """Edit one article `edits` times in this process; return refresh CPU and wall seconds."""
    from feedsvc import create_app

    content = copy_site(ensure_corpus(size), workdir, f"in-process-{size}")
    config = {
        "CONTENT_DIR": str(content),
        "STATE_DIR": str(workdir / f"in-process-state-{size}"),
        "SITE_URL": f"http://{HOST}:8000",
        "WATCH_CONTENT": False,
    }
    store = create_app(config).extensions["feedsvc"]
    follower = None
    try:
        newest = store.snapshot().published(SECTION)[0]
        follower = follower_of(store)
        path = content / SECTION / f"{newest.slug}.md"
        rel = f"{SECTION}/{newest.slug}.md"
        cpu, wall, follows = [], [], []
        for n in range(edits):
            text = path.read_text(encoding="utf-8")
            text = re.sub(r"(?m)^title: .*$", f'title: "Edited {n}"', text, count=1)
            time.sleep(1.1)  # as a person would: no wait for a new Last-Modified second
            path.write_text(text, encoding="utf-8")
            started, clock = time.process_time(), time.perf_counter()
            store.refresh([rel])
            cpu.append(time.process_time() - started)
            wall.append(time.perf_counter() - clock)
            started = time.process_time()
            follower.follow()
            follows.append(time.process_time() - started)
        rescans = []
        for _ in range(3):  # the watcher's safety rescan, every 60 s: nothing changed
            started = time.process_time()
            store.refresh(None)
            rescans.append(time.process_time() - started)
        renders = render_cpu(store)
    finally:
        store.close()
        if follower is not None:
            follower.close()
    result = {"size": size, "cpu_p50": median(cpu), "cpu_max": max(cpu), "wall_p50": median(wall)}
    result["follow_p50"] = median(follows)
    result["rescan_p50"] = median(rescans)
    result["render"] = renders
    log.info("%s", result)
    return result


def follower_of(store):
    """Return a second store following `store`'s publications, as another worker does."""
    from feedsvc.editions import ValidatorHistory
    from feedsvc.index import ContentIndex
    from feedsvc.store import ContentStore

    follower = ContentStore(store.settings)
    follower._index = ContentIndex.for_settings(store.settings)
    follower._history = ValidatorHistory(follower._index)
    follower.follow()  # the whole publication first, as a worker starting
    return follower


def cold_phases(size: int, workdir: Path) -> dict:
    """Load the store from the cached corpus with no index; return its phases' seconds."""
    from feedsvc import create_app
    from feedsvc import store as store_module
    from feedsvc.assembly import SiteAssembler
    from feedsvc.store import ContentStore

    timings: dict = {}
    read = store_module.read_content_files
    phases = [(SiteAssembler, "assemble"), (ContentStore, "_publish"), (ContentStore, "_record")]
    originals = [getattr(owner, name) for owner, name in phases]

    def cpu_of(method, label):
        def timed(*args, **kwargs):
            cpu = time.process_time()
            try:
                return method(*args, **kwargs)
            finally:
                timings[label] = timings.get(label, 0.0) + time.process_time() - cpu

        return timed

    def timed_read(*args, **kwargs):
        wall, cpu, children = time.perf_counter(), time.process_time(), _children_cpu()
        try:
            return read(*args, **kwargs)
        finally:
            timings["read"] = time.perf_counter() - wall
            timings["read_cpu"] = time.process_time() - cpu
            timings["pool_cpu"] = _children_cpu() - children

    class RefreshLog(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.msg.startswith("refresh of") and len(record.args) >= 4:
                timings["refresh_ms"] = record.args[1:4]

    handler = RefreshLog(logging.DEBUG)
    store_log = logging.getLogger(store_module.__name__)
    level = store_log.level
    store_log.addHandler(handler)
    store_log.setLevel(logging.DEBUG)
    store_module.read_content_files = timed_read
    for (owner, name), method in zip(phases, originals, strict=True):
        setattr(owner, name, cpu_of(method, name.strip("_") + "_cpu"))
    config = {
        "CONTENT_DIR": str(ensure_corpus(size)),  # only read: no copy needed
        "STATE_DIR": str(workdir / f"cold-state-{size}"),
        "SITE_URL": f"http://{HOST}:8000",
        "WATCH_CONTENT": False,
    }
    look = first_look_phase(create_app(config).extensions["feedsvc"].settings)
    timings.clear()  # the first look's own assembling is not the load's
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        store = create_app(config).extensions["feedsvc"]
        articles = len(store.snapshot().site.articles)
        store.close()
        cold = dict(timings)  # the first start's: the warm restart's are not counted
        warm_wall, warm_cpu = time.perf_counter(), time.process_time()
        again = create_app(config).extensions["feedsvc"]
        assert len(again.snapshot().site.articles) == articles
        warm_wall, warm_cpu = time.perf_counter() - warm_wall, time.process_time() - warm_cpu
        again.close()
    finally:
        store_module.read_content_files = read
        for (owner, name), method in zip(phases, originals, strict=True):
            setattr(owner, name, method)
        store_log.removeHandler(handler)
        store_log.setLevel(level)
    read_and_assembled, published, recorded = cold.get("refresh_ms", (0.0, 0.0, 0.0))
    result = {
        "size": size,
        "articles": articles,
        "wall": time.perf_counter() - wall - warm_wall,
        "cpu": time.process_time() - cpu - warm_cpu,
        "pool_cpu": cold["pool_cpu"],
        "read": cold["read"],
        "read_cpu": cold["read_cpu"],
        "assemble": read_and_assembled / 1000 - cold["read"],
        "publish": published / 1000,
        "record": recorded / 1000,
        "assemble_cpu": cold["assemble_cpu"],
        "publish_cpu": cold["publish_cpu"],
        "record_cpu": cold["record_cpu"],
        "warm": warm_wall,
        "warm_cpu": warm_cpu,
        **look,
    }
    log.info("%s", result)
    return result


def first_look_phase(settings) -> dict:
    """Time a first start's first look (feedsvc/firstlook.py): wall, CPU here, CPU of parsers."""
    from feedsvc import firstlook

    minimum = firstlook.FIRST_LOOK_MIN_FILES
    firstlook.FIRST_LOOK_MIN_FILES = 0  # measured at every size
    wall, cpu, children = time.perf_counter(), time.process_time(), _children_cpu()
    try:
        found = firstlook.first_look(settings)
    finally:
        firstlook.FIRST_LOOK_MIN_FILES = minimum
    if found is not None and found.full is not None:
        found.full.close()  # the full read behind it: the load below is timed alone
    return {
        "look": time.perf_counter() - wall if found is not None else float("nan"),
        "look_cpu": time.process_time() - cpu,
        "look_pool_cpu": _children_cpu() - children,
    }


def _children_cpu() -> float:
    times = os.times()
    return times.children_user + times.children_system


def cold_phases_report(results: list[dict]) -> str:
    lines = [
        "| articles | load, wall | CPU here | CPU in parsers | reading, wall | its CPU here"
        " | assembling (CPU) | publishing (CPU) | recording (CPU) | warm restart (CPU)"
        " | first look, wall | its CPU here | in parsers |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['size']:,} | {r['wall']:.2f} s | {r['cpu']:.2f} s | {r['pool_cpu']:.2f} s"
        f" | {r['read']:.2f} s | {r['read_cpu']:.2f} s"
        f" | {r['assemble']:.2f} s ({r['assemble_cpu']:.2f} s)"
        f" | {r['publish']:.2f} s ({r['publish_cpu']:.2f} s)"
        f" | {r['record']:.2f} s ({r['record_cpu']:.2f} s)"
        f" | {r['warm']:.2f} s ({r['warm_cpu']:.2f} s) | {r['look']:.2f} s"
        f" | {r['look_cpu']:.2f} s | {r['look_pool_cpu']:.2f} s |"
        for r in results
    ]
    return "\n".join(lines)


def render_cpu(store, rounds: int = 20) -> dict[str, float]:
    """Return the median CPU seconds of rendering the site feed again, one item retitled.

    Each round retitles one of its items (a new Article, as an edit makes) and renders
    every format with an item memo that rendered the feed before, as the store's has.
    """
    from dataclasses import replace

    from feedsvc.feeds import render_feed
    from feedsvc.itemhtml import ItemHtmlMemo
    from feedsvc.jsonfeed import render_json_feed

    spec = store.snapshot().editions["feed"].spec
    memo = ItemHtmlMemo()
    render_json_feed(spec, store.settings, memo)
    for fmt in ("rss", "atom"):
        render_feed(spec, fmt, store.settings, memo)
    samples: dict[str, list[float]] = {"rss": [], "atom": [], "json": []}
    for n in range(rounds):
        articles = list(spec.articles)
        articles[3] = replace(articles[3], title=f"Rendered again {n}")
        edited = replace(spec, articles=tuple(articles))
        for fmt, times in samples.items():
            started = time.process_time()
            if fmt == "json":
                render_json_feed(edited, store.settings, memo)
            else:
                render_feed(edited, fmt, store.settings, memo)
            times.append(time.process_time() - started)
    return {fmt: median(times) for fmt, times in samples.items()}


def in_process_report(results: list[dict]) -> str:
    base = results[0]["cpu_p50"]
    lines = [
        f"| articles | refresh CPU p50 | CPU max | wall p50 | ÷ at {results[0]['size']:,}"
        " | follower CPU p50 | rescan CPU p50 (nothing changed) |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['size']:,} | {r['cpu_p50'] * 1000:.1f} ms | {r['cpu_max'] * 1000:.1f} ms"
        f" | {r['wall_p50'] * 1000:.1f} ms | {r['cpu_p50'] / base:.2f}"
        f" | {r['follow_p50'] * 1000:.1f} ms | {r['rescan_p50'] * 1000:.0f} ms |"
        for r in results
    ]
    items = len(results[0]["render"])
    lines += ["", "Site feed rendered again, one of its items retitled: CPU per document (p50)"]
    lines += [
        "",
        "| articles | " + " | ".join(results[0]["render"]) + " |",
        "|---|" + "---|" * items,
    ]
    lines += [
        f"| {r['size']:,} | "
        + " | ".join(f"{t * 1000:.2f} ms" for t in r["render"].values())
        + " |"
        for r in results
    ]
    return "\n".join(lines)


def mb(memory: Memory | None) -> str:
    return "—" if memory is None else f"{memory.rss_mb:.0f} / {memory.pss_mb:.0f}"


def report(results: list[dict]) -> str:
    head = ["articles", "workers", "cold start", "cold → live", "warm start", "live"]
    head += ["edit p50", "edit max"]
    head += ["RSS/PSS MB warm", "RSS/PSS MB after crawl"]
    rows = [
        [
            f"{r['size']:,}",
            str(r["workers"]),
            f"{r['cold']:.2f} s",
            f"{r['cold_live']:.2f} s",
            f"{r['warm']:.2f} s ({r['warm_cpu']:.2f} s CPU)",
            f"{r['live']:.2f} s ({r['live_cpu']:.2f} s CPU)",
            f"{r['edit_p50'] * 1000:.0f} ms",
            f"{r['edit_max'] * 1000:.0f} ms",
            mb(r["warm_mem"]),
            mb(r.get("crawl_mem")) + (f" ({r['crawled']} documents)" if "crawled" in r else ""),
        ]
        for r in results
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000", help="article counts, comma-separated")
    parser.add_argument(
        "--workers", default=None, help="granian worker counts (1,2,4; with --cold: 1)"
    )
    parser.add_argument("--edits", type=int, default=5, help="edits timed per server")
    parser.add_argument(
        "--edit-coding", default="identity", help="Accept-Encoding of edit → visible polls"
    )
    parser.add_argument("--crawl", action="store_true", help="fetch every feed, then memory")
    parser.add_argument(
        "--under-edits", type=int, default=0, help="seconds of wrk without and with edits"
    )
    parser.add_argument(
        "--in-process", action="store_true", help="CPU per edit in this process, no server"
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="pairs of runs without and with edits"
    )
    parser.add_argument(
        "--against",
        default="",
        help="other checkouts (comma-separated) served side by side; under edits only",
    )
    parser.add_argument(
        "--cold-phases", action="store_true", help="a first start's phases in this process"
    )
    parser.add_argument(
        "--memory", action="store_true", help="memory only: first start, warm, after crawls"
    )
    parser.add_argument(
        "--crawl-pages",
        type=int,
        default=0,
        help="with --memory or --crawl: the pages too, every Nth article page",
    )
    parser.add_argument(
        "--cold", action="store_true", help="first starts only: every feed served, live"
    )
    parser.add_argument(
        "--warm", action="store_true", help="warm restarts only: every feed served, live"
    )
    args = parser.parse_args(argv)
    if args.workers is None and not args.cold:
        args.workers = "1,2,4"
    setup_logging()
    load = os.getloadavg()
    results = []
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.cold or args.warm:
        trees = [PROJECT_ROOT, *(Path(t).resolve() for t in args.against.split(",") if t)]
        with tempfile.TemporaryDirectory(prefix="feedsvc-publisher-bench-") as tmp:
            for size in sizes:
                for workers in (int(w) for w in (args.workers or "1").split(",")):
                    if args.cold:
                        results += cold_start(size, trees, args.repeats, Path(tmp), workers)
                    else:
                        results += warm_starts(size, workers, trees, args.repeats, Path(tmp))
        print(f"load average at start {load[0]:.2f}, at end {os.getloadavg()[0]:.2f}")
        print(starts_report(results))
        return 0
    if args.cold_phases:
        with tempfile.TemporaryDirectory(prefix="feedsvc-publisher-bench-") as tmp:
            results = [cold_phases(size, Path(tmp)) for size in sizes]
        print(f"load average at start {load[0]:.2f}, at end {os.getloadavg()[0]:.2f}")
        print(cold_phases_report(results))
        return 0
    if args.in_process:
        with tempfile.TemporaryDirectory(prefix="feedsvc-publisher-bench-") as tmp:
            results = [edit_cpu(size, args.edits, Path(tmp)) for size in sizes]
        print(f"load average at start {load[0]:.2f}, at end {os.getloadavg()[0]:.2f}")
        print(in_process_report(results))
        return 0
    if args.memory:
        trees = [PROJECT_ROOT, *(Path(t).resolve() for t in args.against.split(",") if t)]
        with tempfile.TemporaryDirectory(prefix="feedsvc-publisher-bench-") as tmp:
            for size in sizes:
                for workers in (int(w) for w in args.workers.split(",")):
                    results += memory_side_by_side(size, workers, trees, args, Path(tmp))
        print(f"load average at start {load[0]:.2f}, at end {os.getloadavg()[0]:.2f}")
        print(memory_report(results))
        extra = extra_worker_report(results)
        if extra:
            print()
            print(extra)
        return 0
    if args.against:
        trees = [PROJECT_ROOT, *(Path(t).resolve() for t in args.against.split(","))]
        args.under_edits = args.under_edits or 10
        with tempfile.TemporaryDirectory(prefix="feedsvc-publisher-bench-") as tmp:
            for size in sizes:
                for workers in (int(w) for w in args.workers.split(",")):
                    results.append(side_by_side(size, workers, trees, args, Path(tmp)))
        print(f"load average at start {load[0]:.2f}, at end {os.getloadavg()[0]:.2f}")
        print(under_edits_report(results))
        return 0
    with tempfile.TemporaryDirectory(prefix="feedsvc-publisher-bench-") as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            for workers in (int(w) for w in args.workers.split(",")):
                results.append(measure(size, workers, args, Path(tmp)))
    end = os.getloadavg()[0]
    print(f"load average at start {load[0]:.2f}, at end {end:.2f}; CPUs {os.cpu_count()}")
    print(report(results))
    loaded = [r for r in results if "under_edits" in r]
    if loaded:
        print()
        print(under_edits_report(loaded))
    return 0


def under_edits_report(results: list[dict]) -> str:
    """One row per server: medians over the pairs, with their range (min–max)."""
    lines = [
        f"| articles | workers | code | {QUIET_FEED} gzip req/s, no edits | p99"
        " | req/s, 1 edit/s | p99 | throughput kept | server CPU per edit, no load"
        " | other processes' CPU |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        runs = r["trees"] if "trees" in r else {"this tree": r["under_edits"]}
        for label, ue in runs.items():
            foreign = [run.foreign_cpu for run in (*ue.quiet, *ue.busy)]
            cells = [
                f"{r['size']:,}",
                str(r["workers"]),
                label,
                spread([run.wrk.requests_per_s for run in ue.quiet], "{:,.0f}"),
                spread([run.wrk.p99_ms for run in ue.quiet], "{:.2f} ms"),
                spread([run.wrk.requests_per_s for run in ue.busy], "{:,.0f}"),
                spread([run.wrk.p99_ms for run in ue.busy], "{:.2f} ms"),
                spread([100 * k for k in ue.kept()], "{:.0f}%"),
                spread([1000 * c for c in ue.edit_cpu], "{:.0f} ms"),
                f"{100 * min(foreign):.0f}–{100 * max(foreign):.0f}%",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def spread(values: list[float], fmt: str) -> str:
    """Return the median, with the range when there is more than one value."""
    if len(values) == 1:
        return fmt.format(values[0])
    low, high = fmt.format(min(values)), fmt.format(max(values))
    return f"{fmt.format(median(values))} ({low}–{high})"


if __name__ == "__main__":
    sys.exit(main())
