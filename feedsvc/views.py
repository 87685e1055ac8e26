"""Flask's part of the site: previews, media, /healthz, redirects, and error pages.

Every precomputed document (pages, feeds, the OPML file) is answered by the fast path
(fastpath.py, pages rendered by pages.py); what it does not know reaches Flask, and
an address Flask does not know either is not found, moved (301), or removed (410).

No URL value ever becomes a file path, except under /media/, where Werkzeug's
safe_join keeps requests inside the media folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from flask import Blueprint, Response, abort, current_app, g, request, send_file
from werkzeug.routing import BaseConverter
from werkzeug.security import safe_join
from werkzeug.utils import redirect

from .addresses import HEALTHZ, MEDIA, SITE_FEED
from .editorial import resolve
from .health import assess
from .media import MEDIA_DIR
from .models import Section
from .pages import PAGE_MAX_AGE, SEGMENT_SAFE, Pages, page_at
from .preview import KEY_PARAMETER, PREVIEW_PREFIX, key_matches, read_preview
from .snapshot import Snapshot
from .store import ContentStore
from .urls import encode_uri

bp = Blueprint("site", __name__)


class SlugConverter(BaseConverter):
    """Match a section or article slug only."""

    regex = r"[a-z0-9-]+"


def _add_converters(state) -> None:
    state.app.url_map.converters.setdefault("slug", SlugConverter)


# Recorded before any route, so the converter exists when the routes are added.
bp.record_once(_add_converters)

MEDIA_MAX_AGE = 3600
MAX_NAME_LENGTH = 255
# Moves are permanent, but an admin's mistake should not stay in browsers for ever.
REDIRECT_MAX_AGE = 3600
# Where create_app keeps the Pages renderer.
PAGES_EXTENSION = "feedsvc.pages"


def get_store() -> ContentStore:
    """Return the content store of the current app."""
    return current_app.extensions["feedsvc"]


def get_snapshot() -> Snapshot:
    """Return the snapshot this request works from, the same one for all its parts."""
    if "snapshot" not in g:
        g.snapshot = get_store().snapshot()
    return g.snapshot


def _render(template: str, **context) -> str:
    """Render a template as pages.py renders pages, under this request's path prefix."""
    pages: Pages = current_app.extensions[PAGES_EXTENSION]
    return pages.render(template, get_snapshot(), request.script_root, **context)


def _site_feed_links() -> list[dict]:
    return current_app.extensions[PAGES_EXTENSION].feed_links(SITE_FEED, "All articles")


@bp.get(f"{PREVIEW_PREFIX}/<slug:section>/<slug:slug>/")
def preview_page(section: str, slug: str):
    """Show a draft or scheduled article to the holder of its signed link; else 404."""
    settings = get_store().settings
    key = request.args.get(KEY_PARAMETER, "")
    if not key_matches(settings.preview_secret, section, slug, key):
        abort(404)
    article = read_preview(settings, section, slug) or abort(404)
    info = get_snapshot().site.sections.get(section) or Section(section, section.title())
    html = _render(
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
    While the content loads behind a stored publication, reports that publication; a
    follower asking the publisher for every answer (nothing published yet) reports what
    the publisher reports, with its own role.
    """
    store = get_store()
    stored = store.stored_publication()
    if stored is not None:
        report = {**stored.health, "publishing": store.role()}
        return report, 200, {"Cache-Control": "no-store"}
    borrowed = store.borrowed_answer(request.environ, request.path, request.script_root)
    if isinstance(borrowed, tuple):
        head, body = borrowed
        report = {**json.loads(body), "publishing": store.role()}
        return report, int(head["status"].split()[0]), {"Cache-Control": "no-store"}
    snapshot = get_snapshot()
    site = snapshot.site
    published = len(snapshot.published())
    health = assess(site, published, get_store().publisher_trouble())
    report = {
        "status": health.status,
        "reasons": list(health.reasons),
        "sections": len(site.sections),
        "articles": published,
        # Only a timed article can be scheduled: not the whole archive on every request.
        "scheduled": sum(1 for article in site.timely() if article.date > snapshot.as_of),
        "version": site.version,
        "publishing": get_store().role(),
        "problems": [problem.as_dict() for problem in site.problems],
    }
    return report, health.http_status, {"Cache-Control": "no-store"}


@bp.after_app_request
def keep_host_out_of_redirects(response: Response) -> Response:
    """Make redirect targets site-relative; Werkzeug's own slash redirects use the Host header."""
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
    # A follower holding no site (a missing media file) takes the publisher's answer.
    borrowed = get_store().borrowed_answer(request.environ, request.path, request.script_root)
    if isinstance(borrowed, tuple):
        head, body = borrowed
        return Response(body, status=head["status"], headers=[tuple(h) for h in head["headers"]])
    unrouted = error.code == 404 and request.url_rule is None  # no view: maybe a page's address
    if unrouted and page_at(request.path + "/") is not None:
        return _to_slash()
    if error.code == 404 and request.method in ("GET", "HEAD"):
        found = resolve(get_snapshot().routes, request.path)
        if found is not None and found[0] == 301:
            return _moved(found[1])
        if found is not None:
            return _gone()
    html = _render("error.html", error=error, feeds=_site_feed_links())
    return html, error.code


def _to_slash() -> Response:
    """Answer 308 to a page's address, which ends in a slash, as Werkzeug's routing would."""
    return redirect(_location(quote(request.path + "/", safe=SEGMENT_SAFE)), 308)


def _moved(path: str) -> Response:
    """Answer 301 to a page or feed's current address, keeping the query."""
    headers = {
        "Location": _location(encode_uri(path)),
        "Cache-Control": f"public, max-age={REDIRECT_MAX_AGE}",
    }
    return Response(status=301, headers=headers)


def _location(path: str) -> str:
    """Return where a redirect leads: `path` under the site's prefix, with the request's query."""
    query = request.query_string.decode("latin-1")
    return request.script_root + path + (f"?{query}" if query else "")


def _gone() -> Response:
    """Answer 410 with a short notice that says nothing of what the article held."""
    html = _render("gone.html", feeds=_site_feed_links())
    headers = {"Cache-Control": f"public, max-age={PAGE_MAX_AGE}"}
    return Response(html, status=410, headers=headers, mimetype="text/html")
