"""Answer GET and HEAD from bytes compressed, tagged and given headers once per content change."""

from __future__ import annotations

import gzip
import hashlib
import logging
import math
import re
import threading
import time
import weakref
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from functools import lru_cache
from types import MappingProxyType

import brotli
from werkzeug.datastructures import MIMEAccept
from werkzeug.http import parse_accept_header, parse_date, parse_etags, parse_list_header

from .heap import Reclaimer

logger = logging.getLogger(__name__)

Header = tuple[str, str]

IDENTITY = "identity"
GZIP = "gzip"
BROTLI = "br"
# Measured on 200 KB of feed-like text: gzip 6 ≈ 4-5 ms and brotli 8 ≈ 3.5-4.5 ms; gzip 9 and
# brotli 9 cost 3-4x the time for under 1 % smaller bodies, brotli 10-11 take 60-170 ms.
GZIP_LEVEL = 6
BROTLI_QUALITY = 8
ETAG_SUFFIXES = MappingProxyType({IDENTITY: "", GZIP: "-gz", BROTLI: "-br"})
# What compressing a feed (brotli 8, 400 kB) takes besides its bytes, freed after: 7 MB.
COMPRESSOR_WORKING_BYTES = 7 * 1024 * 1024
# Bodies shorter than this are offered as identity only: compressing them barely pays off.
MIN_COMPRESSED_BODY = 256
# What a compressed coding is counted as before it is made (a fraction of the body): feed
# text compresses to 15-25 % of its size, so the two codings together stay below half.
UNMADE_CODING_SHARE = 0.25
# Bytes a representation holds besides its bodies (validators, header lines, the objects
# answering each coding), measured with tracemalloc once every coding is asked for: about
# 4 kB, and 2.5 kB more with the twin answering browsers. A 10 kB page is 14 kB held.
REPRESENTATION_BYTES = 4096
BROWSER_TWIN_BYTES = 2560
ALLOWED_METHODS = ("GET", "HEAD")
BROWSER_ETAG_SUFFIX = "-x"
_FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/feed+json")

_CODING_ALIASES = MappingProxyType({"x-gzip": GZIP})
# A weight named without a value: "gzip;q" or "gzip;q=".
_EMPTY_WEIGHT = re.compile(r";[ \t]*[Qq][ \t]*(?:=[ \t]*)?(?:;|\Z)")
# Distinct header values whose parse is kept (per process); a client inventing a new value
# per request only ever costs its own parse.
PARSED_HEADERS_CACHED = 512
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_MANAGED_HEADERS = frozenset(
    "content-type content-length content-encoding etag last-modified cache-control vary".split()
)


@dataclass(frozen=True)
class Variant:
    """One content coding of a representation, with its own strong validator."""

    body: bytes
    etag: str

    def __post_init__(self) -> None:
        """Refuse a validator clients could not echo back verbatim."""
        tag = self.etag
        if len(tag) < 2 or tag[0] != '"' or tag[-1] != '"' or '"' in tag[1:-1]:
            raise ValueError(f"not a quoted strong ETag: {tag!r}")


class Encodings(Mapping[str, Variant]):
    """A body's variants: identity given, each compressed coding made on its first use.

    An edit re-renders a handful of documents of which readers may never ask most codings:
    compressing them all eagerly cost half of an edit's CPU. Each coding's ETag follows from
    the identity ETag, so a 304 needs no compression, and the bytes are deterministic (gzip
    with mtime=0), so every worker making them gives the same. Made once, thread-safely.
    """

    def __init__(self, identity: Variant, codings: Iterable[str] = ()):
        self._identity: Variant | None = identity
        self._codings = (IDENTITY, *(c for c in codings if c != IDENTITY))
        unknown = set(self._codings) - set(ETAG_SUFFIXES)
        if unknown:
            raise ValueError(f"unknown content codings: {sorted(unknown)}")
        self._made: dict[str, Variant] = {IDENTITY: identity}
        self._etag = identity.etag
        self._size = len(identity.body)
        self._reclaimer: Reclaimer | None = None  # see pack()
        # Set by pack_when_gzipped until gzip is made: who packs then, and what to call.
        self._when_gzipped: tuple[Reclaimer, Callable[[], None]] | None = None
        self._lock = threading.Lock()

    def __getitem__(self, coding: str) -> Variant:
        variant = self._made.get(coding)
        if variant is not None:
            return variant
        if coding not in self._codings:
            raise KeyError(coding)
        if coding == IDENTITY:  # packed: made for each request, not kept
            return Variant(self._plain(), self.etag(IDENTITY))
        later = None
        with self._lock:
            variant = self._made.get(coding)
            if variant is None:
                started = time.perf_counter()
                plain = self._plain()
                body = _compress(plain, coding)
                variant = Variant(body, self.etag(coding))
                self._made[coding] = variant
                if self._reclaimer is not None:  # packed: the compressor's work given back
                    self._reclaimer.freed(COMPRESSOR_WORKING_BYTES)
                later = self._when_gzipped if coding == GZIP else None
                if later is not None:
                    self._when_gzipped = None
                    self._drop_plain(later[0])
                elapsed_ms = (time.perf_counter() - started) * 1000
                logger.debug(
                    "made %s: %d → %d bytes in %.1f ms",
                    coding,
                    len(plain),
                    len(body),
                    elapsed_ms,
                )
        if later is not None:  # packed now: outside the lock, the plain bytes given back
            del plain
            later[1]()
            later[0].freed(self._size + COMPRESSOR_WORKING_BYTES)
        return variant

    def __iter__(self):
        return iter(self._codings)

    def __len__(self) -> int:
        return len(self._codings)

    def __contains__(self, coding: object) -> bool:
        return coding in self._codings

    def __eq__(self, other: object) -> bool:
        """Compare without compressing: equal identity and codings make equal variants.

        A packed body (see pack) keeps no identity: its ETag, a digest, stands for it.
        """
        if isinstance(other, Encodings):
            if self._identity is None or other._identity is None:
                return self._etag == other._etag and self._codings == other._codings
            return self._identity == other._identity and self._codings == other._codings
        return Mapping.__eq__(self, other)

    __hash__ = None  # type: ignore[assignment]

    def etag(self, coding: str) -> str:
        """Return the ETag of `coding` without making its bytes."""
        if coding == IDENTITY:
            return self._etag
        return self._etag[:-1] + ETAG_SUFFIXES[coding] + '"'

    def held_bytes(self) -> int:
        """Return the bytes held, counting each coding not yet made at its expected share."""
        size = self.size()
        made = self._made
        return sum(
            len(made[coding].body) if coding in made else int(size * UNMADE_CODING_SHARE)
            for coding in self._codings
            if self.keeps(coding)
        )

    def size(self) -> int:
        """Return the length of the plain body."""
        return self._size

    def keeps(self, coding: str) -> bool:
        """Tell whether `coding`'s bytes, once made, are kept (and may be kept by callers)."""
        return coding != IDENTITY or self._identity is not None

    def pack(self, reclaimer: Reclaimer | None = None) -> None:
        """Keep the body gzip-compressed only, from now on (a worker that follows does).

        Nearly every feed reader asks for gzip: its bytes are made now, if not yet, and
        the plain ones (four to six times larger) are dropped. A client taking no gzip
        then gets them decompressed for its request (1 to 2 ms for 400 kB), and brotli is
        made from them once, on its first request; bytes and ETags stay as they were.
        `reclaimer` hears of each plain body so made, freed once sent: malloc keeps such
        large blocks for reuse unless given back (see heap.py).
        """
        if GZIP not in self._codings or self._identity is None:
            return
        self[GZIP]
        with self._lock:
            self._drop_plain(reclaimer)

    def _drop_plain(self, reclaimer: Reclaimer | None) -> None:
        """Keep no plain bytes from now on (the caller holds the lock)."""
        self._reclaimer = reclaimer
        self._identity = None
        self._made.pop(IDENTITY, None)

    def pack_when_gzipped(self, reclaimer: Reclaimer, then: Callable[[], None]) -> None:
        """Pack (see pack) once a reader asks for gzip, then call `then`; now if one has.

        A feed no reader asks for keeps its plain bytes rather than cost a compression
        on every edit (an edit renders six feeds again: 60 ms of gzip at 400 kB each).
        """
        if GZIP not in self._codings or self._identity is None:
            return  # nothing to pack, or packed already
        with self._lock:
            if self._identity is not None and GZIP not in self._made:
                self._when_gzipped = (reclaimer, then)
                return
        self.pack(reclaimer)
        then()

    def _plain(self) -> bytes:
        """Return the plain body, the source of every compressed coding."""
        identity = self._identity
        if identity is not None:
            return identity.body
        if self._reclaimer is not None:
            self._reclaimer.freed(self._size)
        return gzip.decompress(self._made[GZIP].body)


class _Prepared:
    """What `respond` sends for one variant: validators at once, body and length on first 200."""

    __slots__ = (
        "_coding",
        "_content_type",
        "_last_modified",
        "_ok",
        "_variants",
        "etag",
        "not_modified_head",
        "weak_etag",
    )

    def __init__(
        self,
        coding: str,
        variants: Mapping[str, Variant],
        etag: str,
        content_type: str,
        last_modified: str,
    ):
        self._coding = coding
        self._variants = variants
        self._content_type = content_type
        self._last_modified = last_modified
        self.etag = etag
        self.weak_etag = "W/" + etag
        self.not_modified_head: tuple[Header, ...] = (
            ("ETag", etag),
            ("Last-Modified", last_modified),
        )
        self._ok: tuple[tuple[Header, ...], bytes] | None = None

    def ok(self) -> tuple[tuple[Header, ...], bytes]:
        """Return the 200 header lines (up to Cache-Control) and the body, made once."""
        ok = self._ok
        if ok is None:
            body = self._variants[self._coding].body
            head = [("Content-Type", self._content_type), ("Content-Length", str(len(body)))]
            if self._coding != IDENTITY:
                head.append(("Content-Encoding", self._coding))
            ok = self._ok = ((*head, *self.not_modified_head), body)
            if not self.kept():  # checked after: pack() may run meanwhile
                self._ok = None
        return ok

    def kept(self) -> bool:
        """Tell whether this variant's bytes are kept (see Encodings.pack)."""
        variants = self._variants
        return not isinstance(variants, Encodings) or variants.keeps(self._coding)

    def forget(self) -> None:
        """Drop the answer made, unless its bytes are kept."""
        if not self.kept():
            self._ok = None

    @property
    def body(self) -> bytes:
        """Return this variant's bytes (compressing them the first time)."""
        return self.ok()[1]


@dataclass(frozen=True)
class Representation:
    """A resource's bytes in every coding we serve, with the headers precomputed."""

    content_type: str
    last_modified: int
    variants: Mapping[str, Variant]
    max_age: int
    expires_at: float | None = None
    extra_headers: tuple[Header, ...] = ()
    # Sent instead of content_type to browsers: they show application/rss+xml as bare
    # text, but style application/xml with the document's stylesheet.
    browser_content_type: str | None = None
    last_modified_http: str = field(init=False, repr=False, compare=False)
    _prepared: Mapping[str, _Prepared] = field(init=False, repr=False, compare=False)
    _for_browsers: Mapping[str, _Prepared] | None = field(init=False, repr=False, compare=False)
    _tail: tuple[Header, ...] = field(init=False, repr=False, compare=False)
    _static_cache_control: Header | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Validate once and precompute every header string so requests do no formatting."""
        _check_header_value("Content-Type", self.content_type)
        if isinstance(self.last_modified, bool) or not isinstance(self.last_modified, int):
            raise TypeError("last_modified must be whole POSIX seconds (int)")
        if self.expires_at is not None and not math.isfinite(self.expires_at):
            raise ValueError("expires_at must be a finite POSIX time or None")
        variants = _check_variants(self.variants)
        extras = _check_extra_headers(self.extra_headers)
        last_modified_http = formatdate(self.last_modified, usegmt=True)
        static = None
        if self.expires_at is None:
            static = ("Cache-Control", _cache_control_value(self.max_age, None, 0.0))
        prepared = {
            coding: _Prepared(
                coding, variants, _etag_of(variants, coding), self.content_type, last_modified_http
            )
            for coding in variants
        }
        for_browsers = None
        vary = "Accept-Encoding"
        if self.browser_content_type is not None:
            _check_header_value("Content-Type", self.browser_content_type)
            vary = "Accept-Encoding, Accept"
            # Another media type is another representation: another ETag, the same bytes.
            for_browsers = MappingProxyType(
                {
                    coding: _Prepared(
                        coding,
                        variants,
                        _etag_of(variants, coding)[:-1] + BROWSER_ETAG_SUFFIX + '"',
                        self.browser_content_type,
                        last_modified_http,
                    )
                    for coding in variants
                }
            )
        setter = object.__setattr__
        if not isinstance(variants, Encodings):
            variants = MappingProxyType(variants)
        setter(self, "variants", variants)
        setter(self, "extra_headers", extras)
        setter(self, "last_modified_http", last_modified_http)
        setter(self, "_prepared", MappingProxyType(prepared))
        setter(self, "_for_browsers", for_browsers)
        setter(self, "_tail", (("Vary", vary), *extras))
        setter(self, "_static_cache_control", static)

    def pack(self, reclaimer: Reclaimer | None = None) -> None:
        """Keep the body gzip-compressed only (see Encodings.pack); the same answers."""
        if isinstance(self.variants, Encodings):
            self.variants.pack(reclaimer)
            self._forget_unkept()

    def pack_when_gzipped(self, reclaimer: Reclaimer) -> None:
        """Pack (see pack) once a reader asks for gzip: now if one has."""
        if isinstance(self.variants, Encodings) and self.variants.keeps(IDENTITY):
            # Through a weak reference: no cycle to wait for the collector if never packed.
            forget = weakref.WeakMethod(self._forget_unkept)
            self.variants.pack_when_gzipped(reclaimer, lambda: _call_if_alive(forget))

    def _forget_unkept(self) -> None:
        for prepared in (self._prepared, self._for_browsers or {}):
            for variant in prepared.values():
                variant.forget()

    def held_bytes(self) -> int:
        """Return the bytes this representation holds (or will, once every coding is asked)."""
        if isinstance(self.variants, Encodings):
            bodies = self.variants.held_bytes()
        else:
            bodies = sum(len(variant.body) for variant in self.variants.values())
        twin = BROWSER_TWIN_BYTES if self._for_browsers is not None else 0
        return bodies + REPRESENTATION_BYTES + twin


def _call_if_alive(method: weakref.WeakMethod) -> None:
    alive = method()
    if alive is not None:
        alive()


def _check_variants(variants: Mapping[str, Variant]) -> Mapping[str, Variant]:
    """Return `variants` (a private copy unless lazy), refusing unknown codings or no identity."""
    if isinstance(variants, Encodings):
        return variants
    copy = dict(variants)
    unknown = set(copy) - set(ETAG_SUFFIXES)
    if unknown:
        raise ValueError(f"unknown content codings: {sorted(unknown)}")
    if IDENTITY not in copy:
        raise ValueError("an identity variant is required: it is the fallback for every client")
    return copy


def _etag_of(variants: Mapping[str, Variant], coding: str) -> str:
    """Return a variant's ETag, without compressing a lazy one."""
    if isinstance(variants, Encodings):
        return variants.etag(coding)
    return variants[coding].etag


def _check_extra_headers(headers: Iterable[Header]) -> tuple[Header, ...]:
    """Return `headers` as a tuple, refusing ones that would clash with ours or inject lines."""
    checked = []
    for name, value in headers:
        if not _HEADER_NAME.match(name) or name.lower() in _MANAGED_HEADERS:
            raise ValueError(f"extra header name not allowed: {name!r}")
        _check_header_value(name, value)
        checked.append((name, value))
    return tuple(checked)


def _check_header_value(name: str, value: str) -> None:
    """Refuse a header value that could split the response."""
    if any(char in value for char in "\r\n\0"):
        raise ValueError(f"control character in {name} header value")


def build_representation(
    body: bytes,
    content_type: str,
    last_modified: int,
    max_age: int,
    expires_at: float | None = None,
    extra_headers: Iterable[Header] = (),
    browser_content_type: str | None = None,
) -> Representation:
    """Derive `body`'s ETags once; its compressed codings are made on first request."""
    tag = hashlib.sha256(body).hexdigest()[:32]
    return Representation(
        content_type=content_type,
        last_modified=last_modified,
        variants=encodings(body, f'"{tag}"'),
        max_age=max_age,
        expires_at=expires_at,
        extra_headers=tuple(extra_headers),
        browser_content_type=browser_content_type,
    )


def encodings(body: bytes, etag: str) -> Encodings:
    """Return `body`'s variants: identity, and (unless tiny) br and gzip made when asked."""
    # A coding that does not shrink the body (tiny bodies) only costs the client CPU.
    codings = (BROTLI, GZIP) if len(body) >= MIN_COMPRESSED_BODY else ()
    return Encodings(Variant(body, etag), codings)


def _compress(body: bytes, coding: str) -> bytes:
    """Return `body` in one compressed coding; mtime=0 keeps gzip bytes deterministic."""
    if coding == BROTLI:
        return brotli.compress(body, mode=brotli.MODE_TEXT, quality=BROTLI_QUALITY)
    return gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)


def choose_encoding(accept_encoding: str | None, available: Collection[str]) -> str:
    """Pick the coding to send per RFC 9110 §12.5.3, falling back to identity, never to 406.

    Ties prefer br, then gzip, then identity. A member with a malformed weight is ignored,
    duplicates keep their highest weight, and an unlisted identity ranks below any coding
    the client accepts.
    """
    if not accept_encoding:
        return IDENTITY
    for coding in _coding_preference(accept_encoding):
        if coding in available:
            return coding
    return IDENTITY


@lru_cache(maxsize=PARSED_HEADERS_CACHED)
def _coding_preference(accept_encoding: str) -> tuple[str, ...]:
    """Return the compressed codings the client takes over identity, most wanted first.

    Cached by the raw header: pollers send a handful of distinct values, so a request
    pays one dict lookup instead of a parse.
    """
    weights = _coding_weights(accept_encoding)
    star = weights.get("*", 0.0)
    wanted = {coding: weights.get(coding, star) for coding in (BROTLI, GZIP)}
    floor = weights.get(IDENTITY, star)
    ranked = sorted(wanted, key=lambda coding: -wanted[coding])  # stable: br wins a tie
    return tuple(coding for coding in ranked if wanted[coding] > 0.0 and wanted[coding] >= floor)


def _coding_weights(value: str) -> dict[str, float]:
    """Map each listed coding (lower-cased, aliases folded) to its highest weight."""
    weights: dict[str, float] = {}
    for member in parse_list_header(value):
        # werkzeug reads a bare "q" or "q=" as no weight (1); like any other malformed
        # weight it makes the member unusable.
        if _EMPTY_WEIGHT.search(member):
            continue
        for listed, weight in parse_accept_header(member):
            coding = listed.partition(";")[0].strip().lower()
            coding = _CODING_ALIASES.get(coding, coding)
            if coding:
                weights[coding] = max(weight, weights.get(coding, 0.0))
    return weights


def respond(
    rep: Representation,
    method: str,
    environ: Mapping[str, str],
    now: float,
    extra: tuple[Header, ...] = (),
) -> tuple[str, list[Header], bytes]:
    """Answer a GET or HEAD for `rep`: 200 with the negotiated variant, or 304.

    Any other method gets 405 with an Allow header, so conditional headers never turn
    an unsafe request into a 304. `extra` headers (for a cache tier) go with 200 and 304.
    """
    if method not in ALLOWED_METHODS:
        allow = [("Allow", ", ".join(ALLOWED_METHODS)), ("Content-Length", "0")]
        return "405 Method Not Allowed", allow, b""
    prepared = rep._prepared
    if rep._for_browsers is not None and is_browser(environ.get("HTTP_ACCEPT")):
        prepared = rep._for_browsers
    variant = prepared[choose_encoding(environ.get("HTTP_ACCEPT_ENCODING"), prepared)]
    cache_control = rep._static_cache_control or (
        "Cache-Control",
        _cache_control_value(rep.max_age, rep.expires_at, now),
    )
    if _is_not_modified(rep, variant, environ):
        return (
            "304 Not Modified",
            [*variant.not_modified_head, cache_control, *rep._tail, *extra],
            b"",
        )
    # A HEAD makes the coding too: its Content-Length is the GET's.
    ok_head, body = variant.ok()
    return "200 OK", [*ok_head, cache_control, *rep._tail, *extra], body if method == "GET" else b""


@lru_cache(maxsize=PARSED_HEADERS_CACHED)
def is_browser(accept: str | None) -> bool:
    """Tell a browser navigating to a feed from a feed reader: it ranks HTML above every feed type.

    Browsers get feeds as application/xml, which they style with the feed's stylesheet;
    `text/html;q=0` or a plain `*/*` asks for no page, so it gets the feed's own type.
    """
    if not accept:
        return False
    ranked = parse_accept_header(accept, MIMEAccept)
    return ranked.quality("text/html") > max(ranked.quality(kind) for kind in _FEED_TYPES)


def wsgi_respond(
    rep: Representation,
    environ: Mapping[str, str],
    start_response: Callable[[str, list[Header]], object],
    now: float,
    extra: tuple[Header, ...] = (),
) -> list[bytes]:
    """Serve `rep` to a WSGI server: call start_response and return the body iterable."""
    method = environ.get("REQUEST_METHOD", "GET")
    status, headers, body = respond(rep, method, environ, now, extra)
    start_response(status, headers)
    return [body] if body else []


def _cache_control_value(max_age: int, expires_at: float | None, now: float) -> str:
    """Return Cache-Control, never promising freshness past a scheduled change."""
    return f"public, max-age={fresh_for(max_age, expires_at, now)}"


def fresh_for(max_age: int, expires_at: float | None, now: float) -> int:
    """Return the seconds a copy may be reused: `max_age`, cut short by a scheduled change."""
    if expires_at is not None:
        max_age = min(max_age, math.floor(expires_at - now))
    return max(max_age, 0)


def _is_not_modified(rep: Representation, variant: _Prepared, environ: Mapping[str, str]) -> bool:
    """Evaluate If-None-Match, or If-Modified-Since only when the former is absent (§13.2.2)."""
    if_none_match = environ.get("HTTP_IF_NONE_MATCH")
    # A blank field carries no entity-tags; treat it as absent rather than as "never matches".
    if if_none_match and not if_none_match.isspace():
        if if_none_match == variant.etag or if_none_match == variant.weak_etag:
            return True
        return _listed_etags(if_none_match).matches(variant.etag)
    if_modified_since = environ.get("HTTP_IF_MODIFIED_SINCE")
    if not if_modified_since:
        return False
    if if_modified_since == rep.last_modified_http:
        return True
    since = parse_http_date(if_modified_since)
    return since is not None and rep.last_modified <= since


@dataclass(frozen=True)
class _ListedTags:
    """The quoted entity-tags of an If-None-Match list (weak or strong), or "*"."""

    tags: frozenset[str]
    star: bool

    def matches(self, etag: str) -> bool:
        """Compare weakly, as If-None-Match does (RFC 9110 §13.1.2)."""
        return self.star or etag in self.tags


@lru_cache(maxsize=PARSED_HEADERS_CACHED)
def _listed_etags(if_none_match: str) -> _ListedTags:
    """Parse If-None-Match once per distinct value; junk members simply do not match."""
    parsed = parse_etags(if_none_match)
    listed = parsed.as_set(include_weak=True)
    # werkzeug also takes an unquoted word as a tag; a validator must be quoted to match.
    quoted = frozenset(f'"{tag}"' for tag in listed if f'"{tag}"' in if_none_match)
    return _ListedTags(quoted, parsed.star_tag or "*" in listed)


@lru_cache(maxsize=PARSED_HEADERS_CACHED)
def parse_http_date(value: str) -> float | None:
    """Return the POSIX time of an HTTP-date (any of the three RFC 9110 forms), else None."""
    moment = parse_date(value)
    return None if moment is None else moment.timestamp()
