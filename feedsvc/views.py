"""HTTP answers: look things up in the current snapshot and hand them to templates or feeds.

No URL value ever becomes a file path, except under /media/, where Werkzeug's
safe_join keeps requests inside the media folder.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    render_template,
    request,
    send_file,
)
from werkzeug.security import safe_join

from .feeds import ATOM, FORMATS, RSS, feed_path, media_type
from .loader import MEDIA_DIR
from .models import Article
from .store import SITE_FEED, ContentStore

bp = Blueprint("site", __name__)

HOME_ARTICLES = 20
PAGE_MAX_AGE = 60
MEDIA_MAX_AGE = 3600
MAX_NAME_LENGTH = 255


def get_store() -> ContentStore:
    """Return the content store of the current app."""
    return current_app.extensions["feedsvc"]


def _now() -> datetime:
    return datetime.now(UTC)


def feed_links(name: str, title: str) -> list[dict]:
    """Return autodiscovery entries (RSS and Atom) for feed `name`."""
    settings = get_store().settings
    return [
        {
            "title": f"{title} ({label})",
            "type": FORMATS[fmt][1],
            "url": settings.absolute(feed_path(name, fmt)),
        }
        for fmt, label in ((RSS, "RSS"), (ATOM, "Atom"))
    ]


@bp.app_context_processor
def site_context() -> dict:
    """Give every template the settings and the sections for the navigation."""
    store = get_store()
    site = store.site
    return {
        "settings": store.settings,
        "sections": list(site.sections.values()),
        "sections_by_slug": site.sections,
    }


@bp.app_template_filter("long_date")
def long_date(moment: datetime) -> str:
    """Format a date for readers, e.g. "3 September 2026"."""
    return f"{moment.day} {moment:%B %Y}"


def _newest_update(articles: list[Article]) -> datetime | None:
    return max((article.updated for article in articles), default=None)


def _page(html: str, last_modified: datetime | None) -> Response:
    response = current_app.response_class(html, content_type="text/html; charset=utf-8")
    response.add_etag()
    if last_modified is not None:
        response.last_modified = min(last_modified, _now())
    response.cache_control.public = True
    response.cache_control.max_age = PAGE_MAX_AGE
    return response.make_conditional(request)


@bp.get("/")
def home():
    """Show the sections, the latest articles and every feed."""
    store = get_store()
    latest = store.site.published(_now())[:HOME_ARTICLES]
    feeds = feed_links(SITE_FEED, store.settings.site_title)
    for section in store.site.sections.values():
        feeds += feed_links(section.slug, section.title)
    html = render_template("home.html", articles=latest, feeds=feeds)
    return _page(html, _newest_update(latest))


@bp.get("/<section>/")
def section_page(section: str):
    """Show one section's articles, newest first."""
    site = get_store().site
    info = site.sections.get(section) or abort(404)
    articles = site.published(_now(), section)
    feeds = feed_links(section, info.title) + feed_links(SITE_FEED, get_store().settings.site_title)
    html = render_template("section.html", section=info, articles=articles, feeds=feeds)
    return _page(html, _newest_update(articles))


@bp.get("/<section>/<slug>/")
def article_page(section: str, slug: str):
    """Show one article in full."""
    site = get_store().site
    article = site.find(section, slug, _now()) or abort(404)
    info = site.sections[section]
    feeds = feed_links(section, info.title) + feed_links(SITE_FEED, get_store().settings.site_title)
    html = render_template("article.html", article=article, section=info, feeds=feeds)
    return _page(html, article.updated)


@bp.get("/<name>.xml", defaults={"fmt": RSS})
@bp.get("/<name>.atom", defaults={"fmt": ATOM})
def feed(name: str, fmt: str):
    """Serve a section's feed, or the whole site's as /feed.xml and /feed.atom."""
    store = get_store()
    rendered = store.feed(name, fmt, _now()) or abort(404)
    response = current_app.response_class(rendered.body, content_type=media_type(fmt))
    response.set_etag(rendered.etag)
    response.last_modified = min(rendered.last_modified, _now())
    response.cache_control.public = True
    response.cache_control.max_age = store.settings.feed_max_age
    return response.make_conditional(request)


@bp.get("/media/<path:filename>")
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


@bp.get("/healthz")
def healthz():
    """Report whether the site serves, what it holds and which files have problems."""
    site = get_store().site
    return {
        "status": "ok",
        "sections": len(site.sections),
        "articles": len(site.published(_now())),
        "scheduled": len(site.articles) - site.released_count(_now()),
        "version": site.version,
        "problems": [problem.as_dict() for problem in site.problems],
    }


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
    """Answer errors with a small page, never a stack trace."""
    html = render_template("error.html", error=error, feeds=feed_links(SITE_FEED, "All articles"))
    return html, error.code
