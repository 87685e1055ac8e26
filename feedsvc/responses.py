"""Answer GET and HEAD from bytes compressed, tagged and given headers once per content change."""

from __future__ import annotations

import gzip
import hashlib
import logging
import math
import re
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC
from email.utils import formatdate, parsedate_to_datetime
from types import MappingProxyType

import brotli

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
ALLOWED_METHODS = ("GET", "HEAD")
BROWSER_ETAG_SUFFIX = "-x"
_FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/feed+json")

_CODING_ALIASES = MappingProxyType({"x-gzip": GZIP})
# Lenient qvalue: plain decimals only (no sign, exponent or "_"); values above 1 are capped.
_QVALUE = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)\Z")
# One complete member of an If-None-Match list; junk members simply do not match.
_ETAG_MEMBER = re.compile(r'(?:^|,)[ \t]*(?:[Ww]/)?("[^"]*"|\*)[ \t]*(?=,|\Z)')
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


@dataclass(frozen=True)
class _Prepared:
    """What `respond` sends for one variant, built once so requests only copy it."""

    body: bytes
    etag: str
    weak_etag: str
    ok_head: tuple[Header, ...]
    not_modified_head: tuple[Header, ...]


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
            coding: _prepare(coding, variant, self.content_type, last_modified_http)
            for coding, variant in variants.items()
        }
        for_browsers = None
        vary = "Accept-Encoding"
        if self.browser_content_type is not None:
            _check_header_value("Content-Type", self.browser_content_type)
            vary = "Accept-Encoding, Accept"
            for_browsers = MappingProxyType(
                {
                    coding: _prepare(
                        coding,
                        # Another media type is another representation: another ETag.
                        Variant(variant.body, variant.etag[:-1] + BROWSER_ETAG_SUFFIX + '"'),
                        self.browser_content_type,
                        last_modified_http,
                    )
                    for coding, variant in variants.items()
                }
            )
        setter = object.__setattr__
        setter(self, "variants", MappingProxyType(variants))
        setter(self, "extra_headers", extras)
        setter(self, "last_modified_http", last_modified_http)
        setter(self, "_prepared", MappingProxyType(prepared))
        setter(self, "_for_browsers", for_browsers)
        setter(self, "_tail", (("Vary", vary), *extras))
        setter(self, "_static_cache_control", static)


def _check_variants(variants: Mapping[str, Variant]) -> dict[str, Variant]:
    """Return a private copy of `variants`, refusing unknown codings or a missing identity."""
    copy = dict(variants)
    unknown = set(copy) - set(ETAG_SUFFIXES)
    if unknown:
        raise ValueError(f"unknown content codings: {sorted(unknown)}")
    if IDENTITY not in copy:
        raise ValueError("an identity variant is required: it is the fallback for every client")
    return copy


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


def _prepare(coding: str, variant: Variant, content_type: str, last_modified: str) -> _Prepared:
    """Build the header lines for one variant, up to (not including) Cache-Control."""
    validators = (("ETag", variant.etag), ("Last-Modified", last_modified))
    ok_head = [("Content-Type", content_type), ("Content-Length", str(len(variant.body)))]
    if coding != IDENTITY:
        ok_head.append(("Content-Encoding", coding))
    return _Prepared(
        body=variant.body,
        etag=variant.etag,
        weak_etag="W/" + variant.etag,
        ok_head=(*ok_head, *validators),
        not_modified_head=validators,
    )


def build_representation(
    body: bytes,
    content_type: str,
    last_modified: int,
    max_age: int,
    expires_at: float | None = None,
    extra_headers: Iterable[Header] = (),
    browser_content_type: str | None = None,
) -> Representation:
    """Compress `body` once and derive its ETags, so serving it never hashes or compresses."""
    started = time.perf_counter()
    tag = hashlib.sha256(body).hexdigest()[:32]
    variants = {IDENTITY: Variant(body, f'"{tag}"')}
    for coding, compressed in _compress(body).items():
        # A coding that does not shrink the body (tiny bodies) only costs the client CPU.
        if len(compressed) < len(body):
            variants[coding] = Variant(compressed, f'"{tag}{ETAG_SUFFIXES[coding]}"')
    rep = Representation(
        content_type=content_type,
        last_modified=last_modified,
        variants=variants,
        max_age=max_age,
        expires_at=expires_at,
        extra_headers=tuple(extra_headers),
        browser_content_type=browser_content_type,
    )
    sizes = {coding: len(variant.body) for coding, variant in variants.items()}
    elapsed_ms = (time.perf_counter() - started) * 1000
    logger.debug("built %s: sizes %s in %.1f ms", content_type, sizes, elapsed_ms)
    return rep


def _compress(body: bytes) -> dict[str, bytes]:
    """Return `body` in each compressed coding; mtime=0 keeps gzip bytes deterministic."""
    return {
        BROTLI: brotli.compress(body, mode=brotli.MODE_TEXT, quality=BROTLI_QUALITY),
        GZIP: gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0),
    }


def choose_encoding(accept_encoding: str | None, available: Collection[str]) -> str:
    """Pick the coding to send per RFC 9110 §12.5.3, falling back to identity, never to 406.

    Ties prefer br, then gzip, then identity. A member with a malformed weight is ignored,
    duplicates keep their highest weight, and an unlisted identity ranks below any coding
    the client accepts.
    """
    if not accept_encoding:
        return IDENTITY
    weights = _parse_accept_encoding(accept_encoding)
    star = weights.get("*", 0.0)
    best, best_q = IDENTITY, 0.0
    for coding in (BROTLI, GZIP):
        if coding in available:
            q = weights.get(coding, star)
            if q > best_q:
                best, best_q = coding, q
    if best_q > 0.0 and best_q >= weights.get(IDENTITY, star):
        return best
    return IDENTITY


def _parse_accept_encoding(value: str) -> dict[str, float]:
    """Map each listed coding (lower-cased, aliases folded) to its weight."""
    if ";" not in value:  # the common browser/poller form: no weights, all equal
        codings = (member.strip() for member in value.lower().split(","))
        return {_CODING_ALIASES.get(coding, coding): 1.0 for coding in codings}
    weights: dict[str, float] = {}
    for member in value.split(","):
        coding, _, params = member.partition(";")
        coding = coding.strip().lower()
        coding = _CODING_ALIASES.get(coding, coding)
        weight = _parse_weight(params) if params else 1.0
        if coding and weight is not None:
            weights[coding] = max(weight, weights.get(coding, 0.0))
    return weights


def _parse_weight(params: str) -> float | None:
    """Return the q parameter of a member (1 when absent), or None when it is malformed."""
    weight = 1.0
    for param in params.split(";"):
        name, _, raw = param.partition("=")
        if name.strip().lower() == "q":
            raw = raw.strip()
            if not _QVALUE.match(raw):
                return None
            weight = min(float(raw), 1.0)
    return weight


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
    body = variant.body if method == "GET" else b""
    return "200 OK", [*variant.ok_head, cache_control, *rep._tail, *extra], body


def is_browser(accept: str | None) -> bool:
    """Tell a browser navigating to a feed (it asks for HTML) from a feed reader."""
    return (
        accept is not None
        and "text/html" in accept
        and not any(feed_type in accept for feed_type in _FEED_TYPES)
    )


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
        return _etag_listed(if_none_match, variant)
    if_modified_since = environ.get("HTTP_IF_MODIFIED_SINCE")
    if not if_modified_since:
        return False
    if if_modified_since == rep.last_modified_http:
        return True
    since = parse_http_date(if_modified_since)
    return since is not None and rep.last_modified <= since


def _etag_listed(if_none_match: str, variant: _Prepared) -> bool:
    """Tell whether an If-None-Match value names `variant` by weak comparison, or is "*"."""
    if if_none_match == variant.etag or if_none_match == variant.weak_etag:
        return True
    return any(tag in ("*", variant.etag) for tag in _ETAG_MEMBER.findall(if_none_match))


def parse_http_date(value: str) -> float | None:
    """Return the POSIX time of an HTTP-date (any of the three RFC 9110 forms), else None."""
    try:
        moment = parsedate_to_datetime(value)
        if moment.tzinfo is None:  # asctime and "-0000" dates carry no zone; HTTP means GMT
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
