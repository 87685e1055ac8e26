"""The site as static files: every document of one snapshot, written as the app sends it.

The snapshot says what the site publishes: its pages, feeds and archives, the OPML file;
the media and static folders add their files. Each is written from its representation,
with no request and no crawl, and text gets a .gz twin for nginx's gzip_static; only
the 404 and 410 error pages are asked of the app. Links are read only to warn of those
the export cannot answer. freeze.py decides whether and where an export is published.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import gzip
import json
import logging
import mimetypes
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import quote, unquote, urljoin, urlsplit

from flask import Flask
from werkzeug.test import Client, TestResponse

from .addresses import SITE_FEED, Address
from .editorial import Routes, resolve
from .media import MEDIA_DIR, media_sizes
from .pages import Pages, page_count
from .redirectmap import MAP_FILE, render_map
from .responses import GZIP, IDENTITY, Representation, parse_http_date
from .snapshot import Snapshot
from .views import PAGES_EXTENSION

log = logging.getLogger(__name__)

# Files are compressed once per export, not per request: the smallest output is worth it.
GZIP_LEVEL = 9
NOT_FOUND_PATH = "/404.html"
# The notice of an article taken down, for the web server's error_page 410.
GONE_PATH = "/410.html"
# No route answers this path: its answer is the site's own "not found" page.
MISSING_PATH = "/.freeze-not-found/"
# Characters a path segment keeps as they are (RFC 3986 pchar), besides letters, digits, "_.-~".
_SEGMENT_SAFE = "!$&'()*+,;=:@"
_HTML_LINK_TAGS = frozenset({"a", "area", "link", "img", "script", "source", "audio", "video"})
_XML_LINK_ATTRIBUTES = ("href", "src", "url", "xmlUrl", "htmlUrl")
_JSON_LINK_KEYS = frozenset(
    {"home_page_url", "feed_url", "next_url", "url", "external_url", "image", "banner_image"}
    | {"icon", "favicon", "avatar"}
)
_TEXT_TYPES = frozenset({"application/json", "application/xml", "application/javascript"})
# Errors that make one URL impossible to store as a file, not the export impossible.
_UNSTORABLE = frozenset({errno.EEXIST, errno.ENOTDIR, errno.EISDIR, errno.ENAMETOOLONG})

Report = Callable[[int, int], None]


class FreezeError(Exception):
    """An export that cannot be completed; nothing of it is published."""


@dataclass
class Export:
    """What an export wrote: files, .gz twins included, and their bytes."""

    files: int = 0
    size: int = 0

    def add(self, size: int) -> None:
        """Count one file of `size` bytes."""
        self.files += 1
        self.size += size


def export_site(app: Flask, root: Path, report: Report = lambda done, known: None) -> Export:
    """Write every page, feed and file of `app`'s site into the empty folder `root`."""
    store = app.extensions["feedsvc"]
    snapshot = store.snapshot()
    if snapshot.site.problems:
        log.warning("%d content problems: those files are left out", len(snapshot.site.problems))
    pages = app.extensions[PAGES_EXTENSION]
    documents = snapshot_documents(snapshot, pages, store.settings.path_prefix.rstrip("/"))
    files = site_files(app)
    known = len(documents) + len(files)
    export = Export()
    exported: list[str] = []
    links = LinkCheck(store.settings.site_url)
    for done, (path, render) in enumerate(documents, 1):
        rep = render()
        if rep is None:  # e.g. a tag whose slug no page address can hold
            log.info("not exported: %s has no page", path)
        elif save_representation(root, path, rep, export):
            exported.append(path)
            links.read(path, rep.content_type, rep.variants[IDENTITY].body)
        report(done, known)
    for done, (path, file) in enumerate(files, len(documents) + 1):
        if save_file(root, path, file, export):
            exported.append(path)
        report(done, known)
    client = app.test_client()
    save_not_found_page(client, root, export)
    save_moves(client, root, snapshot, exported, export)
    links.report_broken(set(exported), snapshot.routes)
    if store.snapshot().site.version != snapshot.site.version:
        raise FreezeError("the content changed during the export; run freeze again")
    return export


Render = Callable[[], Representation | None]


def snapshot_documents(snapshot: Snapshot, pages: Pages, prefix: str) -> list[tuple[str, Render]]:
    """List every page, feed and document the snapshot publishes, each with its renderer.

    Pages come first, home then listings then articles, so a broken link is reported
    from the page an editor wrote it in. `prefix` is the site's path prefix ("/news").
    """
    found = [Address.site()]
    for name, listing in snapshot.listings.items():
        if name == SITE_FEED:
            continue
        at = Address.from_name(name)
        count = page_count(len(listing.articles))
        found += [replace(at, page=number) for number in range(1, count + 1)]
    found += [Address.article(a.section, a.slug) for a in snapshot.published()]

    feeds = sorted(path for edition in snapshot.editions.values() for path in edition.paths())
    paths = [*(at.page_path for at in found), *snapshot.documents, *feeds]
    return [
        (normal_path(path), functools.partial(pages.answer, snapshot, path, prefix))
        for path in paths
    ]


def site_files(app: Flask) -> list[tuple[str, Path]]:
    """List the media and static files the app serves, each with the file that holds it."""
    content = app.extensions["feedsvc"].settings.content_dir
    media = (content / MEDIA_DIR).resolve()
    files = []
    for path in media_sizes(content):
        file = (content / path.lstrip("/")).resolve()
        if file.is_relative_to(media):  # the app serves no link that leads out of media/
            files.append((normal_path(path), file))
    static = Path(app.static_folder) if app.static_folder else None
    if static is not None and static.is_dir():
        files += [
            (normal_path(f"{app.static_url_path}/{file.relative_to(static).as_posix()}"), file)
            for file in sorted(static.rglob("*"))
            if file.is_file() and not file.name.startswith(".")
        ]
    return files


class LinkCheck:
    """Links read from exported documents, checked against what the export holds."""

    def __init__(self, site_url: str):
        self.site_url = site_url
        # Each site path linked to, with the first document that links to it.
        self.referrers: dict[str, str] = {}
        self._targets: dict[str, str | None] = {}

    def read(self, path: str, content_type: str, body: bytes) -> None:
        """Note the site paths the document at `path` links to."""
        read_links = link_reader(content_type.partition(";")[0].strip())
        if read_links is None:
            return
        base = self.site_url + path
        for link in set(read_links(body)):
            target = self._target(link, base)
            if target is not None:
                self.referrers.setdefault(target, path)

    def _target(self, link: str, base: str) -> str | None:
        """Return site_path(link), worked out once for a link that means the same anywhere."""
        if not link.startswith(("/", "http://", "https://")):  # relative to `base`
            return site_path(link, base, self.site_url)
        if link not in self._targets:  # navigation, feeds, items: the same on many pages
            self._targets[link] = site_path(link, base, self.site_url)
        return self._targets[link]

    def report_broken(self, exported: set[str], routes: Routes) -> None:
        """Warn of each link to a path the export neither holds nor redirects."""
        for target, referrer in self.referrers.items():
            if target in exported or target + "/" in exported:  # nginx adds the final slash
                continue
            found = resolve(routes, unquote(target))
            if found is not None and found[0] != 410:
                continue  # the redirect map sends it on
            status = 404 if found is None else 410  # what the web server will answer
            log.warning("broken link: %s (linked from %s) answers %d", target, referrer, status)


def site_path(link: str, base: str, site_url: str) -> str | None:
    """Return the site path `link`, found at URL `base`, points to; None if it leaves the site."""
    try:
        target = urlsplit(urljoin(base, link.strip()))
    except ValueError:  # e.g. a broken IPv6 address
        return None
    site = urlsplit(site_url)
    if (target.scheme, target.netloc.lower()) != (site.scheme, site.netloc.lower()):
        return None
    path, prefix = target.path or "/", site.path.rstrip("/")
    if prefix:
        if not path.startswith(prefix + "/"):
            return None
        path = path[len(prefix) :]
    return normal_path(path)


def normal_path(path: str) -> str:
    """Percent-encode a path one way only, so each URL is requested and written once."""
    return "/".join(quote(unquote(part), safe=_SEGMENT_SAFE) for part in path.split("/"))


def link_reader(mimetype: str) -> Callable[[bytes], list[str]] | None:
    """Return the function that lists the links of a document of this type, if it has links."""
    if mimetype == "text/html":
        return html_links
    if mimetype.endswith(("xml", "opml")):
        return xml_links
    if mimetype.endswith("json"):
        return json_links
    return None


def _lxml() -> tuple:
    """Return lxml's html and etree modules, imported when an export first reads links:
    a serving worker imports this module (with the CLI commands) but never exports."""
    import lxml.html
    from lxml import etree

    return lxml.html, etree


def html_links(body: bytes) -> list[str]:
    """Return the URLs an HTML page links to, as written: href, src and srcset values."""
    html, etree = _lxml()
    try:
        root = html.document_fromstring(body, parser=html.HTMLParser(encoding="utf-8"))
    except etree.ParserError:  # an empty document
        return []
    links = []
    for element in root.iter(*_HTML_LINK_TAGS):
        links += [value for name in ("href", "src") if (value := element.get(name))]
        if srcset := element.get("srcset"):
            links += [item.split()[0] for item in srcset.split(",") if item.strip()]
    return links


def xml_links(body: bytes) -> list[str]:
    """Return the URLs of a feed or OPML document: link elements, href/url attributes, outlines."""
    _, etree = _lxml()
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)
    try:
        root = etree.fromstring(body, parser)
    except etree.XMLSyntaxError as exc:
        log.warning("not an XML document, its links are not followed: %s", exc)
        return []
    links = [node.get("href") for node in root.itersiblings(preceding=True) if node.tag is etree.PI]
    for element in root.iter(etree.Element):
        links += [element.get(name) for name in _XML_LINK_ATTRIBUTES]
        if etree.QName(element).localname == "link" and len(element) == 0 and element.text:
            links.append(element.text)  # RSS <link>URL</link>
    return [link for link in links if link]


def json_links(body: bytes) -> list[str]:
    """Return the URLs of a JSON Feed document: home page, feed, items, images."""
    try:
        nodes = [json.loads(body)]
    except ValueError as exc:
        log.warning("not a JSON document, its links are not followed: %s", exc)
        return []
    links = []
    while nodes:
        node = nodes.pop()
        values = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in values:
            if isinstance(value, str) and key in _JSON_LINK_KEYS:
                links.append(value)
            elif isinstance(value, dict | list):
                nodes.append(value)
    return links


def output_file(root: Path, path: str) -> Path:
    """Return the file that serves site path `path`: /a/ → a/index.html, /a.xml → a.xml."""
    names = [unquote(part) for part in path.split("/")[1:]]
    if names[-1] == "":
        names[-1] = "index.html"
    for name in names:
        if name in ("", ".", "..") or "/" in name or "\0" in name:
            raise ValueError(f"{path} has no file name of its own")
    return root.joinpath(*names)


def compressible(mimetype: str) -> bool:
    """Tell whether a type is text that gzip shrinks (images and audio are compressed already)."""
    return (
        mimetype.startswith("text/")
        or mimetype.endswith(("+xml", "+json"))
        or (mimetype in _TEXT_TYPES)
    )


def save_representation(root: Path, path: str, rep: Representation, export: Export) -> bool:
    """Write a document as the file that serves `path`, dated by its Last-Modified.

    The date makes nginx's Last-Modified and ETag the same in every export of unchanged
    content, so pollers keep getting 304 across exports. The .gz twin is the
    representation's own gzip variant where it has one: the bytes the app sends.
    """
    body = rep.variants[IDENTITY].body
    twin = rep.variants.get(GZIP)
    mimetype = rep.content_type.partition(";")[0].strip()
    return save(root, path, body, twin and twin.body, mimetype, rep.last_modified, export)


def save_file(root: Path, path: str, file: Path, export: Export) -> bool:
    """Copy a media or static file as the app serves it, dated by its modification time."""
    mimetype = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    try:
        mtime = int(file.stat().st_mtime)  # Last-Modified holds whole seconds
        # Images, audio and video are copied a chunk at a time, never held whole.
        data = file.read_bytes() if compressible(mimetype) else _chunks(file)
    except OSError as exc:
        log.warning("not exported: %s cannot be read: %s", path, exc)
        return False
    return save(root, path, data, None, mimetype, mtime, export)


def _chunks(file: Path, size: int = 1 << 20) -> Iterator[bytes]:
    """Yield the bytes of `file` a chunk at a time."""
    with file.open("rb") as source:
        while chunk := source.read(size):
            yield chunk


def save_response(root: Path, path: str, response: TestResponse, export: Export) -> bool:
    """Write an answer of the app (an error page) as the file that serves `path`."""
    mtime = parse_http_date(response.headers.get("Last-Modified", ""))
    return save(root, path, response.get_data(), None, response.mimetype, mtime, export)


def save(
    root: Path,
    path: str,
    body: bytes | Iterable[bytes],
    twin: bytes | None,
    mimetype: str,
    mtime: float | None,
    export: Export,
) -> bool:
    """Write `body` (and a .gz twin if text) as the file that serves `path`; tell if written."""
    try:
        file = output_file(root, path)
        file.parent.mkdir(parents=True, exist_ok=True)
        export.add(write_file(file, body, mtime))
        if isinstance(body, bytes) and compressible(mimetype):
            twin = gzip_twin(body, twin)
            if twin is not None:
                export.add(write_file(file.with_name(file.name + ".gz"), twin, mtime))
    except ValueError as exc:
        log.warning("not exported: %s", exc)
        return False
    except OSError as exc:
        if exc.errno not in _UNSTORABLE:
            raise
        log.warning("not exported: %s cannot be stored as a file: %s", path, exc)
        return False
    return True


def write_file(file: Path, data: bytes | Iterable[bytes], mtime: float | None) -> int:
    """Create `file` with `data` and return its size; an existing file is never replaced."""
    with file.open("xb") as out:
        if isinstance(data, bytes):
            data = [data]
        size = sum(out.write(chunk) for chunk in data)
    if mtime is not None:
        os.utime(file, (mtime, mtime))
    return size


def gzip_twin(body: bytes, twin: bytes | None) -> bytes | None:
    """Return the .gz file for `body`: `twin` (the app's own gzip bytes) if given, else ours.

    None when gzip would not make the body smaller; nginx then sends the file as it is.
    """
    if twin is None:
        twin = gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)
    return twin if len(twin) < len(body) else None


def save_not_found_page(client: Client, root: Path, export: Export) -> None:
    """Write the site's "not found" page as 404.html, for the web server's error_page."""
    with contextlib.closing(client.get(MISSING_PATH)) as response:
        if response.status_code == 404 and response.mimetype == "text/html":
            save_response(root, NOT_FOUND_PATH, response, export)
        else:
            log.warning("no 404 page exported: %s answered %d", MISSING_PATH, response.status_code)


def save_moves(
    client: Client, root: Path, snapshot: Snapshot, exported: list[str], export: Export
) -> None:
    """Write the old addresses nginx answers 301 or 410 for, and the page of a 410.

    A site with none gets no map file: nginx's include pattern then matches nothing.
    """
    routes = snapshot.routes
    if routes.redirects or routes.moved_sections or routes.gone:
        export.add(write_file(root / MAP_FILE, render_map(routes, exported), None))
    if not routes.gone:
        return
    probe = normal_path(min(routes.gone))
    with contextlib.closing(client.get(probe)) as response:
        if response.status_code == 410:
            save_response(root, GONE_PATH, response, export)
        else:
            log.warning("no 410 page exported: %s answered %d", probe, response.status_code)
