"""The publisher answers, for the workers that follow it, what they hold no site for.

A follower answers the site and section feeds from the index (following.py) and holds no
site: a page, a tag, author or archive feed, the OPML file, an error page or a redirect
is asked of the publisher over a Unix socket, and answered from its snapshot, so every
worker serves the same bytes with the same validators, and an extra worker costs no
parsed article. The socket has an abstract name (no file; the kernel frees it when its
holder dies) derived from the state folder; each side checks that the other runs as the
same user. Messages are a JSON head and raw bytes: nothing received is ever unpickled.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from .responses import IDENTITY, Representation, encodings

log = logging.getLogger(__name__)

# How long a follower keeps trying to reach a publisher that is being replaced (a takeover
# takes up to watcher.TAKEOVER_SECONDS), counted from its first failed attempt in any thread,
# and how long it waits for one answer.
CONNECT_SECONDS = 3.0
CONNECT_RETRY_SECONDS = 0.05
ANSWER_SECONDS = 60.0
# The request headers a forwarded request keeps: what the publisher's answer depends on.
FORWARDED_HEADERS = (
    "HTTP_HOST",
    "HTTP_ACCEPT",
    "HTTP_ACCEPT_ENCODING",
    "HTTP_IF_NONE_MATCH",
    "HTTP_IF_MODIFIED_SINCE",
    "HTTP_USER_AGENT",
)
_LENGTH = struct.Struct("!I")
_CREDENTIALS = struct.Struct("3i")  # struct ucred: pid, uid, gid

# A publisher's answer: (head, body). The head holds "document" (a representation, the
# body its plain bytes) or "status" and "headers" (a whole response, the body its body).
Answer = tuple[dict, bytes]


def socket_name(state_dir: Path) -> str:
    """Return the abstract socket name of the publisher for `state_dir`."""
    digest = hashlib.sha256(os.path.realpath(state_dir).encode()).hexdigest()[:24]
    return f"\0feedsvc-{digest}"


class RenderService:
    """The publisher's side: a thread answering followers' requests with `answer`."""

    def __init__(self, state_dir: Path, answer: Callable[[dict], Answer]):
        self._name = socket_name(state_dir)
        self._answer = answer
        self._socket: socket.socket | None = None

    def start(self) -> bool:
        """Listen for followers (once); False (logged) if the name is taken or sockets fail."""
        if self._socket is not None:
            return True
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(self._name)
            listener.listen(64)
        except OSError as exc:
            listener.close()
            log.warning("cannot answer following workers (%s): they load the site", exc)
            return False
        self._socket = listener
        threading.Thread(target=self._accept, name="feedsvc-render", daemon=True).start()
        return True

    def close(self) -> None:
        """Stop listening: followers then wait for the next publisher."""
        listener, self._socket = self._socket, None
        if listener is not None:
            with contextlib.suppress(OSError):  # wakes the thread waiting in accept()
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()

    def _accept(self) -> None:
        while (listener := self._socket) is not None:
            try:
                conn, _ = listener.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                if not _same_user(conn):
                    return
                while True:  # a follower keeps its connection for the next request
                    request = _receive(conn)
                    if request is None:
                        return
                    head, body = self._answer(request[0])
                    _send(conn, head, body)
            except (OSError, ValueError):
                return
            except Exception:
                log.exception("answering a following worker failed")


class PublisherLink:
    """A follower's side: asks the publisher, one connection per thread, reconnecting."""

    def __init__(self, state_dir: Path):
        self._name = socket_name(state_dir)
        self._local = threading.local()
        # Every thread's connection, so that close() closes them all.
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        # When an attempt to reach the publisher first failed (time.monotonic()), until one
        # succeeds: every thread gives up CONNECT_SECONDS after it, not after its own wait.
        self._failing_since: float | None = None

    def ask(self, request: dict, keep_trying: Callable[[], bool]) -> Answer | None:
        """Return the publisher's answer; None if no publisher could be reached in time.

        `keep_trying` says whether waiting for a publisher (one taking over) still makes sense.
        Once no publisher has been reached for CONNECT_SECONDS, a request tries once.
        """
        while True:
            conn = getattr(self._local, "conn", None)
            fresh = conn is None
            try:
                if conn is None:
                    conn = self._connect()
                _send(conn, request, b"")
                answer = _receive(conn)
                if answer is None:
                    raise ConnectionError("the publisher closed the connection")
                self._failing_since = None
                return answer
            except (OSError, ValueError) as exc:
                self._drop(conn)
                if not fresh:  # a connection kept from a publisher since gone: try a new one
                    continue
                now, since = time.monotonic(), self._failing_since
                if since is None:
                    self._failing_since = since = now
                if now - since > CONNECT_SECONDS or not keep_trying():
                    log.info("no publisher to ask for %s: %s", request.get("path"), exc)
                    return None
                time.sleep(CONNECT_RETRY_SECONDS)

    def close(self) -> None:
        """Close every thread's connection (a thread asking again opens a new one)."""
        with self._lock:
            conns, self._open = self._open, set()
        for conn in conns:
            conn.close()

    def _drop(self, conn: socket.socket | None) -> None:
        self._local.conn = None
        if conn is not None:
            with self._lock:
                self._open.discard(conn)
            conn.close()

    def _connect(self) -> socket.socket:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            conn.settimeout(ANSWER_SECONDS)
            conn.connect(self._name)
            if not _same_user(conn):
                raise ConnectionError("the socket's holder runs as another user")
        except OSError:
            conn.close()
            raise
        self._local.conn = conn
        with self._lock:
            self._open.add(conn)
        return conn


def answering(store, pages, wsgi: Callable) -> Callable[[dict], Answer]:
    """Return the publisher's answer to a follower: the document, else the app's response."""

    def answer(request: dict) -> Answer:
        found = store.answer_follower(request["path"], request["root"], pages)
        if found is not None:
            return document_answer(*found)
        return response_answer(wsgi, request)

    return answer


def request_for(environ: dict, path: str, root: str) -> dict:
    """Describe a request for the publisher: the document at `path`, and the request itself."""
    forwarded = {key: environ[key] for key in FORWARDED_HEADERS if key in environ}
    return {
        "path": path,
        "root": root,
        "method": environ.get("REQUEST_METHOD", "GET"),
        "path_info": environ.get("PATH_INFO", ""),
        "script_name": environ.get("SCRIPT_NAME", ""),
        "query": environ.get("QUERY_STRING", ""),
        "headers": forwarded,
    }


def document_answer(rep: Representation, generation: int | None) -> Answer:
    """Return a representation as an answer: its plain bytes (the follower compresses)."""
    plain = rep.variants[IDENTITY]
    body, etag = plain.body, plain.etag
    head = {
        "document": {
            "content_type": rep.content_type,
            "last_modified": rep.last_modified,
            "etag": etag,
            "max_age": rep.max_age,
            "expires_at": rep.expires_at,
            "extra_headers": [list(header) for header in rep.extra_headers],
            "browser_content_type": rep.browser_content_type,
        },
        "generation": generation,
    }
    return head, body


def representation_of(head: dict, body: bytes) -> Representation:
    """Rebuild the representation a document answer describes."""
    doc = head["document"]
    return Representation(
        doc["content_type"],
        doc["last_modified"],
        encodings(body, doc["etag"]),
        doc["max_age"],
        doc["expires_at"],
        tuple(tuple(header) for header in doc["extra_headers"]),
        doc["browser_content_type"],
    )


def response_answer(wsgi: Callable, request: dict) -> Answer:
    """Run a forwarded request through the publisher's own app; return its whole response."""
    environ = {
        "REQUEST_METHOD": request["method"],
        "SCRIPT_NAME": request["script_name"],
        "PATH_INFO": request["path_info"],
        "QUERY_STRING": request["query"],
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "0",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": _EMPTY,
        "wsgi.errors": _Errors(),
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        **request["headers"],
    }
    started: list = []

    def start_response(status, headers, exc_info=None):
        started[:] = [status, headers]

    chunks = wsgi(environ, start_response)
    try:
        body = b"".join(chunks)
    finally:
        if hasattr(chunks, "close"):
            chunks.close()
    status, headers = started
    return {"status": status, "headers": [list(h) for h in headers]}, body


def replay(head: dict, body: bytes, start_response: Callable) -> Iterable[bytes]:
    """Send a whole response the publisher made, as it made it."""
    start_response(head["status"], [tuple(header) for header in head["headers"]])
    return [body]


class _Empty:
    """wsgi.input of a forwarded request: no body (only GET and HEAD reach a page)."""

    def read(self, *args) -> bytes:
        return b""

    def readline(self, *args) -> bytes:
        return b""


class _Errors:
    def write(self, text: str) -> None:
        log.error("%s", text.rstrip())

    def flush(self) -> None:
        pass


_EMPTY = _Empty()


def _same_user(conn: socket.socket) -> bool:
    """Tell whether the process at the other end runs as this one's user."""
    raw = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _CREDENTIALS.size)
    _pid, uid, _gid = _CREDENTIALS.unpack(raw)
    return uid == os.getuid()


def _send(conn: socket.socket, head: dict, body: bytes) -> None:
    encoded = json.dumps(head, separators=(",", ":")).encode()
    conn.sendall(b"".join((_LENGTH.pack(len(encoded)), encoded, _LENGTH.pack(len(body)), body)))


def _receive(conn: socket.socket) -> Answer | None:
    """Read one message; None if the other side closed the connection between messages."""
    start = _exactly(conn, _LENGTH.size, eof_ok=True)
    if start is None:
        return None
    head = json.loads(_exactly(conn, _LENGTH.unpack(start)[0]))
    body = _exactly(conn, _LENGTH.unpack(_exactly(conn, _LENGTH.size))[0])
    return head, body


def _exactly(conn: socket.socket, size: int, eof_ok: bool = False) -> bytes | None:
    parts, left = [], size
    while left:
        chunk = conn.recv(min(left, 1 << 20))
        if not chunk:
            if eof_ok and left == size:
                return None
            raise ConnectionError("the connection closed mid-message")
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)
