"""The floor under any Python app behind granian: the bytes nginx serves, and nothing else.

serve_bench.py runs it (`--servers granian,floor-wsgi,floor-rsgi`) on the nginx root it
filled with feedsvc's bytes (FLOOR_ROOT): each answer is a dict lookup, so what it costs
is granian's own share, through its WSGI (`app`) or its RSGI (`rsgi_app`) interface. The
answers carry feedsvc's headers (ETag, Last-Modified, Cache-Control, Vary) and a 304 for
an If-None-Match naming the ETag; no other negotiation.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

LAST_MODIFIED = "Mon, 30 Nov 2026 10:00:00 GMT"
_TYPES = {
    ".xml": "application/rss+xml; charset=utf-8",
    ".atom": "application/atom+xml; charset=utf-8",
    ".json": "application/feed+json; charset=utf-8",
    ".html": "text/html; charset=utf-8",
}


@dataclass(frozen=True)
class Answer:
    """One coding of a file: its body, ETag and every header line, made once."""

    body: bytes
    etag: str
    ok: tuple[tuple[str, str], ...]
    not_modified: tuple[tuple[str, str], ...]


def answer(body: bytes, content_type: str, etag: str, coding: str | None) -> Answer:
    """Return the headers feedsvc sends with `body`, precomputed."""
    validators = (
        ("ETag", etag),
        ("Last-Modified", LAST_MODIFIED),
        ("Cache-Control", "public, max-age=300"),
        ("Vary", "Accept-Encoding"),
    )
    head = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
    if coding:
        head.append(("Content-Encoding", coding))
    return Answer(body, etag, (*head, *validators), validators)


def load(root: Path) -> dict[str, tuple[Answer, Answer | None]]:
    """Map each URL path under `root` to its identity answer and its gzip one (if any)."""
    answers = {}
    for number, path in enumerate(sorted(root.rglob("*"))):
        if not path.is_file() or path.suffix == ".gz":
            continue
        url = "/" + path.relative_to(root).as_posix()
        url = url.removesuffix("index.html")
        content_type = _TYPES.get(path.suffix, "application/octet-stream")
        identity = answer(path.read_bytes(), content_type, f'"floor-{number}"', None)
        packed = path.with_name(path.name + ".gz")
        gzipped = None
        if packed.is_file():
            gzipped = answer(packed.read_bytes(), content_type, f'"floor-{number}-gz"', "gzip")
        answers[url] = (identity, gzipped)
    return answers


def root() -> Path:
    """Return the folder to serve, which serve_bench.py names: never a guessed one."""
    folder = os.environ.get("FLOOR_ROOT")
    if not folder:
        raise RuntimeError("set FLOOR_ROOT to the folder to serve (serve_bench.py does)")
    return Path(folder)


ANSWERS = MappingProxyType(load(root()))
NOT_FOUND = (("Content-Length", "0"),)


def pick(path: str, accept_encoding: str | None) -> Answer | None:
    """Return the answer for `path`: gzip when the client names it, else identity."""
    found = ANSWERS.get(path)
    if found is None:
        return None
    identity, gzipped = found
    return gzipped if gzipped is not None and "gzip" in (accept_encoding or "") else identity


def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
    """WSGI: answer from ANSWERS."""
    found = pick(environ["PATH_INFO"], environ.get("HTTP_ACCEPT_ENCODING"))
    if found is None:
        start_response("404 Not Found", list(NOT_FOUND))
        return []
    if environ.get("HTTP_IF_NONE_MATCH") == found.etag:
        start_response("304 Not Modified", list(found.not_modified))
        return []
    start_response("200 OK", list(found.ok))
    return [found.body]


async def rsgi_app(scope, protocol) -> None:
    """RSGI: the same answers, sent with granian's response_bytes and response_empty."""
    headers = scope.headers
    found = pick(scope.path, headers.get("accept-encoding"))
    if found is None:
        protocol.response_empty(404, list(NOT_FOUND))
    elif headers.get("if-none-match") == found.etag:
        protocol.response_empty(304, list(found.not_modified))
    else:
        protocol.response_bytes(200, list(found.ok), found.body)
