"""HTTP answers: look things up in the current snapshot and hand them to templates.

Feeds and the OPML file have no route here: the fast path (fastpath.py) answers every
request for them, and an address it does not know is not found.

No URL value ever becomes a file path, except under /media/, where Werkzeug's
safe_join keeps requests inside the media folder.
"""

from __future__ import annotations

import re
import time
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    render_template,
    request,
    send_file,
    url_for,
)
from werkzeug.routing import BaseConverter
from werkzeug.security import safe_join

from .addresses import (
    AUTHORS,
    HEALTHZ,
    MEDIA,
    OPML_PATH,
    PAGE,
    SITE_FEED,
    TAGS,
    Address,
    feed_path,
)
from .editions import modified_time
from .editorial import resolve
from .feeds import ATOM, FORMATS, JSON, RSS
from .health import assess
from .markup import with_image_sizes
from .media import MEDIA_DIR
from .models import Article, Section
from .preview import KEY_PARAMETER, PREVIEW_PREFIX, key_matches, read_preview
from .responses import Representation, build_representation, respond
from .slugs import name_slug
from .store import ContentStore, Snapshot
from .urls import encode_uri

bp = Blueprint("site", __name__)


class SlugConverter(BaseConverter):
    """Match a tag or author slug only, so /tags/x.xml is a feed, never a page to redirect."""

    regex = r"[a-z0-9-]+"


class NameConverter(BaseConverter):
    """Match a tag or author slug, which may hold letters of any script (see name_slug)."""

    regex = r"[^/.]+"


def _add_converters(state) -> None:
    state.app.url_map.converters.setdefault("slug", SlugConverter)
    state.app.url_map.converters.setdefault("name", NameConverter)


# Recorded before any route, so the converters exist when the routes are added.
bp.record_once(_add_converters)

HOME_ARTICLES = 20
SECTION_PAGE_SIZE = 50
PAGE_MAX_AGE = 60
MEDIA_MAX_AGE = 3600
MAX_NAME_LENGTH = 255
# Moves are permanent, but an admin's mistake should not stay in browsers for ever.
REDIRECT_MAX_AGE = 3600
HTML = "text/html; charset=utf-8"
# Where create_app keeps the EdgePolicy, when EDGE_MAX_AGE is set.
EDGE_EXTENSION = "feedsvc.edge"


def get_store() -> ContentStore:
    """Return the content store of the current app."""
    return current_app.extensions["feedsvc"]


def get_snapshot() -> Snapshot:
    """Return the snapshot this request works from, the same one for all its parts."""
    if "snapshot" not in g:
        g.snapshot = get_store().snapshot()
    return g.snapshot


def feed_links(name: str, title: str) -> list[dict]:
    """Return autodiscovery entries (RSS, Atom and JSON Feed) for feed `name`."""
    settings = get_store().settings
    return [
        {
            "title": f"{title} ({label})",
            "type": FORMATS[fmt][1],
            "url": settings.absolute(feed_path(name, fmt)),
        }
        for fmt, label in ((RSS, "RSS"), (ATOM, "Atom"), (JSON, "JSON Feed"))
    ]


@bp.app_context_processor
def site_context() -> dict:
    """Give every template the settings and the sections for the navigation."""
    site = get_snapshot().site
    return {
        "settings": get_store().settings,
        "sections": list(site.sections.values()),
        "sections_by_slug": site.sections,
    }


@bp.app_template_filter("slug")
def slug_filter(text: str) -> str:
    """Return the URL slug of a tag or author name."""
    return name_slug(text)


@bp.app_template_filter("uri")
def uri_filter(link: str) -> str:
    """Return a link as a page may hold it: spaces and letters outside ASCII percent-encoded."""
    return encode_uri(link.strip())


@bp.app_template_filter("long_date")
def long_date(moment: datetime) -> str:
    """Format a date for readers, e.g. "3 September 2026"."""
    return f"{moment.day} {moment:%B %Y}"


# An attribute holding a root-relative URL ("/media/x.png", not "//host/x"), as authors write.
_ROOT_RELATIVE = re.compile(r"""(\s(?:href|src|poster|cite)\s*=\s*["']?)/(?!/)""", re.IGNORECASE)


@bp.app_template_filter("site_path")
def site_path_filter(url: str) -> str:
    """Put the site's path prefix (SITE_URL's path) before a root-relative URL."""
    if url.startswith("/") and not url.startswith("//"):
        return request.script_root + url
    return url


@bp.app_template_filter("sized_images")
def sized_images_filter(html: str, sizes: tuple) -> str:
    """Give the body's local images their width and height (no layout shift)."""
    return with_image_sizes(html, sizes)


@bp.app_template_filter("site_links")
def site_links_filter(html: str) -> str:
    """Make an article body's root-relative links honour the site's path prefix."""
    root = request.script_root
    return _ROOT_RELATIVE.sub(lambda match: match.group(1) + root + "/", html) if root else html


class PrecomputedResponse(Response):
    """A response whose headers were computed with its bytes, sent as they are.

    Werkzeug would otherwise drop Last-Modified from a 304, which feed readers use.
    """

    def get_wsgi_headers(self, environ):
        return self.headers


def _answer(rep: Representation) -> Response:
    # Answered as a GET: Werkzeug drops the body of a HEAD and of a 304 itself.
    now = time.time()
    edge = current_app.extensions.get(EDGE_EXTENSION)
    extra = () if edge is None else edge.headers(request.path, rep.expires_at, now)
    status, headers, body = respond(rep, "GET", request.environ, now, extra)
    return PrecomputedResponse([body], status=status, headers=headers)


def _page(html: str, articles: list[Article], folder_mtime: float = 0.0) -> Response:
    """Answer with a page, kept so the next request for it never reaches Flask."""
    snapshot = get_snapshot()
    last_modified = modified_time(articles, [folder_mtime])
    rep = build_representation(
        html.encode(), HTML, last_modified, PAGE_MAX_AGE, snapshot.next_release
    )
    snapshot.pages.put(request.path, rep)
    return _answer(rep)


@bp.get("/")
def home():
    """Show the sections, the latest articles and every feed."""
    snapshot = get_snapshot()
    latest = snapshot.published()[:HOME_ARTICLES]
    feeds = feed_links(SITE_FEED, get_store().settings.site_title)
    for section in snapshot.site.sections.values():
        feeds += feed_links(section.slug, section.title)
    html = render_template("home.html", articles=latest, feeds=feeds, opml_path=OPML_PATH)
    folders = max((s.file_mtime for s in snapshot.site.sections.values()), default=0.0)
    return _page(html, latest, folders)


def _one_page(articles: tuple[Article, ...], page: int, endpoint: str, **values):
    """Return page `page` of a listing and its pager links; 404 past the last page."""
    pages = max(1, -(-len(articles) // SECTION_PAGE_SIZE))
    if page > pages:
        abort(404)
    pager = {
        "page": page,
        "pages": pages,
        "newer": url_for(endpoint, page=page - 1, **values) if page > 1 else None,
        "older": url_for(endpoint, page=page + 1, **values) if page < pages else None,
    }
    return articles[(page - 1) * SECTION_PAGE_SIZE : page * SECTION_PAGE_SIZE], pager


@bp.get("/<slug:section>/", defaults={"page": 1})
@bp.get(f"/<slug:section>/{PAGE}/<int(min=2):page>/")
def section_page(section: str, page: int):
    """Show one section's articles, newest first, SECTION_PAGE_SIZE to a page."""
    snapshot = get_snapshot()
    info = snapshot.site.sections.get(section) or abort(404)
    articles, pager = _one_page(
        snapshot.published(section), page, "site.section_page", section=section
    )
    feeds = feed_links(section, info.title) + feed_links(SITE_FEED, get_store().settings.site_title)
    html = render_template(
        "section.html", section=info, articles=articles, feeds=feeds, pager=pager
    )
    return _page(html, articles, info.file_mtime)


@bp.get(f"/{TAGS}/<name:slug>/", defaults={"kind": TAGS, "page": 1})
@bp.get(f"/{TAGS}/<name:slug>/{PAGE}/<int(min=2):page>/", defaults={"kind": TAGS})
@bp.get(f"/{AUTHORS}/<name:slug>/", defaults={"kind": AUTHORS, "page": 1})
@bp.get(f"/{AUTHORS}/<name:slug>/{PAGE}/<int(min=2):page>/", defaults={"kind": AUTHORS})
def listing_page(kind: str, slug: str, page: int):
    """Show the articles of one tag or one author, newest first."""
    snapshot = get_snapshot()
    listing = snapshot.listings.get(Address.named(kind, slug).name) or abort(404)
    articles, pager = _one_page(listing.articles, page, "site.listing_page", kind=kind, slug=slug)
    feeds = feed_links(listing.name, listing.label)
    feeds += feed_links(SITE_FEED, get_store().settings.site_title)
    html = render_template(
        "listing.html", kind=kind, listing=listing, articles=articles, feeds=feeds, pager=pager
    )
    return _page(html, articles)


@bp.get("/<slug:section>/<slug:slug>/")
def article_page(section: str, slug: str):
    """Show one article in full."""
    snapshot = get_snapshot()
    article = snapshot.find(section, slug) or abort(404)
    info = snapshot.site.sections[section]
    feeds = feed_links(section, info.title) + feed_links(SITE_FEED, get_store().settings.site_title)
    html = render_template("article.html", article=article, section=info, feeds=feeds)
    return _page(html, [article])


@bp.get(f"{PREVIEW_PREFIX}/<slug:section>/<slug:slug>/")
def preview_page(section: str, slug: str):
    """Show a draft or scheduled article to the holder of its signed link; else 404."""
    settings = get_store().settings
    key = request.args.get(KEY_PARAMETER, "")
    if not key_matches(settings.preview_secret, section, slug, key):
        abort(404)
    article = read_preview(settings, section, slug) or abort(404)
    info = get_snapshot().site.sections.get(section) or Section(section, section.title())
    html = render_template(
        "article.html", article=article, section=info, feeds=[], preview=True, noindex=True
    )
    headers = {"Cache-Control": "private, no-store", "X-Robots-Tag": "noindex, nofollow"}
    return html, 200, headers


@bp.get(f"/{MEDIA}/<path:filename>")
def media(filename: str):
    """Serve a file from the content's media folder, and nothing outside it."""
    if "\0" in filename or any(len(part) > MAX_NAME_LENGTH for part in filename.split("/")):
        abort(404)
    folder = (get_store().settings.content_dir / MEDIA_DIR).resolve()
    joined = safe_join(str(folder), filename) or abort(404)
    # safe_join stops "..", but a symlink inside media/ could still point anywhere.
    try:
        target = Path(joined).resolve()
        servable = target.is_relative_to(folder) and target.is_file()
    except OSError:  # a name too long for the file system, a link loop
        servable = False
    if not servable:
        abort(404)
    return send_file(target, max_age=MEDIA_MAX_AGE)


@bp.get(f"/{HEALTHZ}")
def healthz():
    """Report whether the site serves, what it holds and which files have problems.

    Answers 503 when failing, so a load balancer takes the process out of service.
    """
    snapshot = get_snapshot()
    site = snapshot.site
    published = len(snapshot.published())
    health = assess(site, published, get_store().publisher_trouble())
    report = {
        "status": health.status,
        "reasons": list(health.reasons),
        "sections": len(site.sections),
        "articles": published,
        "scheduled": sum(1 for article in site.articles if article.date > snapshot.as_of),
        "version": site.version,
        "publishing": get_store().role(),
        "problems": [problem.as_dict() for problem in site.problems],
    }
    return report, health.http_status, {"Cache-Control": "no-store"}


@bp.after_app_request
def keep_host_out_of_redirects(response: Response) -> Response:
    """Make redirect targets site-relative; Werkzeug's slash redirects use the Host header."""
    location = response.headers.get("Location")
    if location:
        parts = urlsplit(location)
        response.headers["Location"] = urlunsplit(("", "", parts.path, parts.query, ""))
    return response


@bp.app_errorhandler(400)
@bp.app_errorhandler(404)
@bp.app_errorhandler(405)
def error_page(error):
    """Answer errors with a small page, never a stack trace; moved and removed pages first."""
    if error.code == 404 and request.method in ("GET", "HEAD"):
        found = resolve(get_snapshot().routes, request.path)
        if found is not None and found[0] == 301:
            return _moved(found[1])
        if found is not None:
            return _gone()
    html = render_template("error.html", error=error, feeds=feed_links(SITE_FEED, "All articles"))
    return html, error.code


def _moved(path: str) -> Response:
    """Answer 301 to a page or feed's current address, keeping the query."""
    location = request.script_root + encode_uri(path)
    if request.query_string:
        location += "?" + request.query_string.decode("latin-1")
    headers = {"Location": location, "Cache-Control": f"public, max-age={REDIRECT_MAX_AGE}"}
    return Response(status=301, headers=headers)


def _gone() -> Response:
    """Answer 410 with a short notice that says nothing of what the article held."""
    html = render_template("gone.html", feeds=feed_links(SITE_FEED, "All articles"))
    headers = {"Cache-Control": f"public, max-age={PAGE_MAX_AGE}"}
    return Response(html, status=410, headers=headers, mimetype="text/html")
