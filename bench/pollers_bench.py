"""Abuse the production server the way a crowd of pollers does, and check it shrugs it off.

    .venv/bin/python bench/pollers_bench.py [--articles 10000] [--seconds 20]

Starts granian with serve_bench's flags on a generated site, then at the same time: wrk
with 1,000 connections polling a feed half with and half without If-None-Match, 200 slow
clients that dribble their request one byte at a time, and clients that ask for the
feed and hang up after the first bytes of the body. Prints the status codes seen, the
server's memory before, right after and after a second identical round (growth between
rounds means a leak), whether /healthz still answers quickly, and what the server logged.
Needs wrk (`apt-get install wrk`); only 127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import http.client
import logging
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (
    GRANIAN_FLAGS,
    HOST,
    STARTUP_TIMEOUT,
    Processes,
    ensure_corpus,
    fetch,
    granian_argv,
    measure_memory,
    parse_wrk,
    setup_logging,
    start_feedsvc,
    wait_ok,
    wrk_argv,
)

log = logging.getLogger("pollers_bench")
FEED = "/feed.xml"


def slow_client(port: int, seconds: float, stop_at: float) -> str:
    """Send a request one byte at a time over `seconds`, then read the answer's status."""
    request = f"GET {FEED} HTTP/1.1\r\nHost: {HOST}\r\nAccept-Encoding: gzip\r\n\r\n".encode()
    with socket.create_connection((HOST, port), timeout=30) as conn:
        for byte in request:
            if time.monotonic() > stop_at:
                return "gave up"
            conn.sendall(bytes([byte]))
            time.sleep(seconds / len(request))
        return conn.recv(64).split(b"\r\n", 1)[0].decode(errors="replace")


def dropping_client(port: int) -> str:
    """Ask for the full feed and hang up after its first bytes."""
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    conn.request("GET", FEED)
    response = conn.getresponse()
    response.read(100)
    conn.sock.shutdown(socket.SHUT_RDWR)
    conn.close()
    return str(response.status)


def crowd(port: int, seconds: int, etag: str) -> dict[str, int]:
    """Run every kind of client at once for `seconds`; count what each kind saw."""
    url = f"http://{HOST}:{port}{FEED}"
    wrk = [
        subprocess.Popen(wrk_argv(url, headers, seconds, 1, 500), stdout=subprocess.PIPE, text=True)
        for headers in ({}, {"If-None-Match": etag})
    ]
    outcomes: dict[str, int] = {}
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def record(outcome: str) -> None:
        with lock:
            outcomes[outcome] = outcomes.get(outcome, 0) + 1

    def run_slow() -> None:
        try:
            record("slow " + slow_client(port, seconds / 2, stop_at))
        except OSError as exc:
            record(f"slow {type(exc).__name__}")

    def run_dropping() -> None:
        while time.monotonic() < stop_at:
            try:
                record("dropped after " + dropping_client(port))
            except OSError as exc:
                record(f"dropping {type(exc).__name__}")

    threads = [threading.Thread(target=run_slow) for _ in range(200)]
    threads += [threading.Thread(target=run_dropping) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for process, name in zip(wrk, ("wrk plain", "wrk If-None-Match"), strict=True):
        run = parse_wrk(process.communicate()[0])
        seen = f"{run.requests} requests, {run.requests_per_s:.0f}/s, p99 {run.p99_ms:.1f} ms"
        record(f"{name}: {seen}, {run.bad_status} non-2xx/3xx, {run.socket_errors} socket errors")
    return outcomes


def healthz_ms(port: int) -> float:
    """Time one /healthz request on a fresh connection."""
    started = time.perf_counter()
    if fetch(port, "/healthz", timeout=10).status != 200:
        raise RuntimeError("/healthz did not answer 200")
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--articles", type=int, default=10000)
    parser.add_argument("--seconds", type=int, default=20)
    args = parser.parse_args()
    setup_logging()
    site = ensure_corpus(args.articles)
    procs = Processes()
    workdir = Path(tempfile.mkdtemp(prefix="pollers-bench-"))
    server = start_feedsvc(procs, "granian", granian_argv, site, workdir / "granian.log")
    port = server.port
    try:
        wait_ok(server, FEED, server.started_at + STARTUP_TIMEOUT)
        etag = fetch(port, FEED).headers["etag"]
        print(f"granian {' '.join(GRANIAN_FLAGS)}, {args.articles} articles")
        print(f"memory before:        {measure_memory(server.pids())}")
        for round_number in (1, 2):
            for outcome, count in sorted(crowd(port, args.seconds, etag).items()):
                print(f"  round {round_number}: {count:6} × {outcome}")
            print(f"memory after round {round_number}: {measure_memory(server.pids())}")
            print(f"/healthz right after: {healthz_ms(port):.1f} ms")
        print(f"server alive: {server.popen.poll() is None}")
        print("server log:", server.log_path.read_text().strip() or "(empty)")
    finally:
        procs.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
