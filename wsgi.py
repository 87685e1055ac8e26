"""WSGI entry point: `gunicorn wsgi:app` or `flask --app wsgi run`."""

import logging

from feedsvc import create_app

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

app = create_app()
