"""The one responder for precomputed documents: pages, feeds and the OPML file, without Flask.

Each is rendered once per content version (pages and most feeds on their first request)
into bytes, so a request costs a dict lookup and a header check. Everything else
(media, /healthz, previews, redirects, errors) goes on to the Flask app.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from .addresses import HEALTHZ, MEDIA
from .edge import EdgePolicy
from .firstlook import NotYet
from .pages import Pages
from .renderlink import replay
from .responses import wsgi_respond
from .store import ContentStore

HEALTHZ_PATH = f"/{HEALTHZ}"
# Files, not documents: answered by Flask, in a follower too.
FILE_PREFIXES = (f"/{MEDIA}/", "/static/")


class FastPath:
    """WSGI middleware in front of the Flask app's own WSGI callable."""

    def __init__(
        self, app: Callable, store: ContentStore, pages: Pages, edge: EdgePolicy | None = None
    ):
        self.app = app
        self.store = store
        self.pages = pages
        self.edge = edge

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        # Every method: respond() answers 405 to anything but GET and HEAD.
        path = _site_path(environ.get("PATH_INFO", ""))
        root = _site_path(environ.get("SCRIPT_NAME", "")).rstrip("/")
        # Until the live snapshot is ready, the stored publication answers what it holds,
        # and /healthz says so; everything else waits for the live snapshot.
        rep = self.store.stored_answer(path, wait=True)
        if rep is None:
            if path == HEALTHZ_PATH:  # this process's own report, whatever it serves
                return self.app(environ, start_response)
            if path.startswith(FILE_PREFIXES):  # no document: Flask serves the file
                return self.app(environ, start_response)
            # A follower holding no site asks the publisher (renderlink.py).
            borrowed = self.store.borrowed_answer(environ, path, root)
            if isinstance(borrowed, tuple):
                return replay(*borrowed, start_response)
            # A first start's first look answers pages too, and says what it cannot yet.
            rep = borrowed or self.store.first_look_page(path, root, self.pages)
            if isinstance(rep, NotYet):
                return _not_yet(start_response)
            rep = rep or self.pages.answer(self.store.snapshot(), path, root)
        if rep is not None:
            now = time.time()
            extra = () if self.edge is None else self.edge.headers(path, rep.expires_at, now)
            return wsgi_respond(rep, environ, start_response, now, extra)
        return self.app(environ, start_response)


def _not_yet(start_response: Callable) -> Iterable[bytes]:
    """Answer 503 with Retry-After: a first start cannot answer this yet, and soon will."""
    body = b"Starting: every file is still being read. Try again in a few seconds.\n"
    start_response(
        "503 Service Unavailable",
        [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
            ("Retry-After", str(NotYet.RETRY_AFTER_SECONDS)),
            ("Cache-Control", "no-store"),
        ],
    )
    return [body]


class SitePrefix:
    """WSGI middleware serving a site whose SITE_URL has a path ("https://host/news").

    Links in pages, and redirects, are built from SCRIPT_NAME: it is set to
    the prefix unless the server or proxy passes one, and a proxy that forwards the path
    unchanged (/news/culture/) has the prefix taken off PATH_INFO.
    """

    def __init__(self, app: Callable, prefix: str):
        self.app = app
        self.prefix = prefix.rstrip("/")

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if not environ.get("SCRIPT_NAME"):
            path = environ.get("PATH_INFO", "")
            if path == self.prefix or path.startswith(self.prefix + "/"):
                environ["PATH_INFO"] = path[len(self.prefix) :] or "/"
            environ["SCRIPT_NAME"] = self.prefix
        return self.app(environ, start_response)


def _site_path(path_info: str) -> str:
    """Return the request path as the site's keys spell it: WSGI gives UTF-8 bytes as Latin-1."""
    if path_info.isascii():
        return path_info
    try:
        return path_info.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return path_info
