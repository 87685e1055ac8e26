"""WSGI entry point: `granian --interface wsgi wsgi:app`, `gunicorn wsgi:app`, `flask --app wsgi`.

A bad setting stops the process here with one line on stderr and exit status 4, which
gunicorn and granian take as "the app cannot load" rather than restarting it forever.
"""

import logging
import sys

from feedsvc import create_app
from feedsvc.heap import tune_allocator
from feedsvc.settings import SettingsError

EXIT_BAD_SETTINGS = 4

tune_allocator()  # before the app starts its threads (see feedsvc/heap.py)

try:
    app = create_app()
except SettingsError as exc:
    print(f"feedsvc: {exc}", file=sys.stderr)
    sys.exit(EXIT_BAD_SETTINGS)

# A server that set up logging first (granian does) keeps its handlers; the level is ours.
logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
logging.getLogger().setLevel(app.extensions["feedsvc"].settings.log_level)
