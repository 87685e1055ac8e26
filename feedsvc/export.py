"""The site as static files: crawl the app through its test client and write each answer.

Each file holds the bytes the app itself answers, found by crawling from the home page,
the feed list, every feed, media and static file; text gets a .gz twin for nginx's
gzip_static. freeze.py decides whether and where an export is published.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import json
import logging
import os
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote, unquote, urljoin, urlsplit

from flask import Flask
from lxml import etree
from werkzeug.test import Client, TestResponse

from .addresses import OPML_PATH
from .media import media_sizes
from .redirectmap import MAP_FILE, render_map
from .responses import parse_http_date
from .snapshot import Snapshot

log = logging.getLogger(__name__)

# Files are compressed once per export, not per request: the smallest output is worth it.
GZIP_LEVEL = 9
NOT_FOUND_PATH = "/404.html"
# The notice of an article taken down, for the web server's error_page 410.
GONE_PATH = "/410.html"
# No route answers this path: its answer is the site's own "not found" page.
MISSING_PATH = "/.freeze-not-found/"
REDIRECTS = frozenset({301, 302, 303, 307, 308})
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
    client = app.test_client()
    export = Export()

    exported = []

    def save(path: str, response: TestResponse) -> None:
        exported.append(path)
        save_response(client, root, path, response, export)

    crawl(client, seed_paths(app, snapshot), store.settings.site_url, save, report)
    save_not_found_page(client, root, export)
    save_moves(client, root, snapshot, exported, export)
    if store.snapshot().site.version != snapshot.site.version:
        raise FreezeError("the content changed during the export; run freeze again")
    return export


def seed_paths(app: Flask, snapshot: Snapshot) -> list[str]:
    """Return where a crawl starts: home, every feed and archive, OPML, media, static files."""
    feeds = sorted(path for edition in snapshot.editions.values() for path in edition.paths())
    files = list(media_sizes(app.extensions["feedsvc"].settings.content_dir))
    static = Path(app.static_folder) if app.static_folder else None
    if static is not None and static.is_dir():
        files += [
            f"{app.static_url_path}/{file.relative_to(static).as_posix()}"
            for file in sorted(static.rglob("*"))
            if file.is_file() and not file.name.startswith(".")
        ]
    return ["/", OPML_PATH, *snapshot.documents, *map(normal_path, [*feeds, *files])]


def crawl(
    client: Client, seeds: Iterable[str], site_url: str, visit: Callable, report: Report
) -> None:
    """Request the seeds and every same-site URL linked from an answer; visit each 200."""
    referrers: dict[str, str | None] = dict.fromkeys(seeds)
    queue = deque(referrers)
    while queue:
        path = queue.popleft()
        with contextlib.closing(client.get(path)) as response:
            for target in follow(path, response, referrers[path], site_url, visit):
                if target not in referrers:
                    referrers[target] = path
                    queue.append(target)
        report(len(referrers) - len(queue), len(referrers))


def follow(
    path: str, response: TestResponse, referrer: str | None, site_url: str, visit: Callable
) -> list[str]:
    """Handle one answer and return the site paths it leads to."""
    base = site_url + path
    status = response.status_code
    if status == 200:
        read_links = link_reader(response.mimetype)
        links = read_links(response.get_data()) if read_links else []
        visit(path, response)
        return [target for link in links if (target := site_path(link, base, site_url))]
    if status in REDIRECTS:
        target = site_path(response.headers.get("Location", ""), base, site_url)
        log.info("not exported: %s redirects to %s", path, target)
        return [target] if target else []
    if status >= 500:
        raise FreezeError(f"{path} answered {status}; fix the error and run freeze again")
    if referrer is None:
        log.info("not exported: %s answers %d", path, status)
    else:
        log.warning("broken link: %s (linked from %s) answers %d", path, referrer, status)
    return []


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


class _LinkParser(HTMLParser):
    """Collect href, src and srcset values of the elements that link to other files."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _HTML_LINK_TAGS:
            return
        for name, value in attrs:
            if value and name in ("href", "src"):
                self.links.append(value)
            elif value and name == "srcset":
                self.links += [item.split()[0] for item in value.split(",") if item.strip()]


def html_links(body: bytes) -> list[str]:
    """Return the URLs an HTML page links to, as written."""
    parser = _LinkParser()
    parser.feed(body.decode("utf-8", "replace"))
    parser.close()
    return parser.links


def xml_links(body: bytes) -> list[str]:
    """Return the URLs of a feed or OPML document: link elements, href/url attributes, outlines."""
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


def save_response(
    client: Client, root: Path, path: str, response: TestResponse, export: Export
) -> None:
    """Write an answer as the file that serves `path`, dated by its Last-Modified.

    The date makes nginx's Last-Modified and ETag the same in every export of unchanged
    content, so pollers keep getting 304 across exports.
    """
    try:
        file = output_file(root, path)
        file.parent.mkdir(parents=True, exist_ok=True)
        mtime = parse_http_date(response.headers.get("Last-Modified", ""))
        if not compressible(response.mimetype):
            export.add(write_file(file, response.iter_encoded(), mtime))
            return
        body = response.get_data()
        export.add(write_file(file, body, mtime))
        twin = gzip_twin(client, path, body, response)
        if twin is not None:
            export.add(write_file(file.with_name(file.name + ".gz"), twin, mtime))
    except ValueError as exc:
        log.warning("not exported: %s", exc)
    except OSError as exc:
        if exc.errno not in _UNSTORABLE:
            raise
        log.warning("not exported: %s cannot be stored as a file: %s", path, exc)


def write_file(file: Path, data: bytes | Iterable[bytes], mtime: float | None) -> int:
    """Create `file` with `data` and return its size; an existing file is never replaced."""
    with file.open("xb") as out:
        if isinstance(data, bytes):
            data = [data]
        size = sum(out.write(chunk) for chunk in data)
    if mtime is not None:
        os.utime(file, (mtime, mtime))
    return size


def gzip_twin(client: Client, path: str, body: bytes, response: TestResponse) -> bytes | None:
    """Return the .gz file for `body`: the app's own gzip bytes where it offers them, else ours.

    None when gzip would not make the body smaller; nginx then sends the file as it is.
    """
    twin = None
    if "accept-encoding" in response.vary:
        with contextlib.closing(client.get(path, headers={"Accept-Encoding": "gzip"})) as answer:
            if answer.status_code == 200 and answer.headers.get("Content-Encoding") == "gzip":
                twin = answer.get_data()
    if twin is None or gzip.decompress(twin) != body:  # the content changed in between
        twin = gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)
    return twin if len(twin) < len(body) else None


def save_not_found_page(client: Client, root: Path, export: Export) -> None:
    """Write the site's "not found" page as 404.html, for the web server's error_page."""
    with contextlib.closing(client.get(MISSING_PATH)) as response:
        if response.status_code == 404 and response.mimetype == "text/html":
            save_response(client, root, NOT_FOUND_PATH, response, export)
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
            save_response(client, root, GONE_PATH, response, export)
        else:
            log.warning("no 410 page exported: %s answered %d", probe, response.status_code)
