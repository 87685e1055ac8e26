"""feedsvc: publish a folder of Markdown articles as RSS, Atom and HTML."""

from __future__ import annotations

import multiprocessing.util
import weakref
from collections.abc import Mapping
from pathlib import Path

from flask import Flask

from . import cli, views
from .edge import EdgePolicy
from .fastpath import FastPath, SitePrefix
from .pages import Pages
from .purge import Purger
from .renderlink import answering
from .settings import Settings, SettingsError
from .store import ContentStore
from .watcher import ContentWatcher
from .websub import HubNotifier

__all__ = ["PROJECT_ROOT", "SettingsError", "create_app"]

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def create_app(test_config: Mapping | None = None) -> Flask:
    """Create and configure a feedsvc application.

    Settings flow one way: config.py defaults, then FEEDSVC_* environment variables,
    then `test_config`. Raises SettingsError, whose message is one line naming the key,
    the value and what is expected, when a setting is unusable.
    """
    app = Flask(__name__)
    # "//" in a path must not become a redirect; /media//etc/passwd is simply not found.
    app.url_map.merge_slashes = False
    app.config.from_pyfile(PROJECT_ROOT / "config.py")
    app.config.from_prefixed_env(prefix="FEEDSVC")
    if test_config is not None:
        app.config.from_mapping(test_config)
    settings = Settings.from_config(app.config)
    purger = Purger(settings) if settings.purge_urls else None
    notifier = None
    if settings.websub_hub:
        notifier = HubNotifier(settings.websub_hub, after=purger and purger.wait_idle)
    watcher = ContentWatcher if settings.watch_content else None
    store = ContentStore(settings, watcher, notifier, purger)
    _finish_recording_at_exit(store)
    edge = EdgePolicy(settings.edge_max_age) if settings.edge_max_age else None
    app.extensions["feedsvc"] = store
    pages = Pages(settings)
    app.extensions[views.PAGES_EXTENSION] = pages
    app.register_blueprint(views.bp)
    app.wsgi_app = FastPath(app.wsgi_app, store, pages, edge)
    if settings.path_prefix.rstrip("/"):
        app.wsgi_app = SitePrefix(app.wsgi_app, settings.path_prefix)
    # Following workers ask the publisher for what they hold no site for (renderlink.py).
    store.share_with_followers(answering(store, pages, app.wsgi_app))
    cli.init_app(app)
    return app


def _finish_recording_at_exit(store: ContentStore) -> None:
    """Let the store finish recording a publication when the process exits normally.

    multiprocessing's exit finalizers run both at interpreter exit and when a worker
    process forked by multiprocessing (granian's) returns, which skips atexit; the store
    is held weakly, so an app dropped (as tests drop theirs) is not kept for this.
    """
    held = weakref.ref(store)

    def finish() -> None:
        store = held()
        if store is not None:
            store.finish_recording()

    multiprocessing.util.Finalize(None, finish, exitpriority=10)
