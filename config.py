"""Default settings. Override any of them with an environment variable FEEDSVC_<KEY>."""

from pathlib import Path

# Folder of sections (<section>/<slug>.md) and media files (media/).
CONTENT_DIR = str(Path(__file__).resolve().parent / "content")
# Public address of the site: every link in feeds and pages is built from it.
SITE_URL = "http://127.0.0.1:5000"
SITE_TITLE = "The Northbridge Review"
SITE_DESCRIPTION = "News, culture and science from the town of Northbridge."
# Author of articles that name none.
SITE_AUTHOR = "The Northbridge Review"
# Language of pages and feeds, with its locale (Apple News asks for one): en-US, fr-FR, pt-BR.
LANGUAGE = "en-US"
# Time zone of dates written without an offset (IANA name, e.g. "Europe/Paris").
TIMEZONE = "UTC"
# Items in each feed, newest first.
FEED_ITEMS = 50
# Seconds clients and caches may reuse a feed (Cache-Control max-age).
FEED_MAX_AGE = 300
# Pick up edits of the content folder while serving (FEEDSVC_WATCH_CONTENT=false: never).
WATCH_CONTENT = True
# WebSub hub (URL) that feeds name and that is pinged when a feed changes; None: no hub.
WEBSUB_HUB = None
# Least severe log messages written: DEBUG, INFO, WARNING, ERROR or CRITICAL.
LOG_LEVEL = "INFO"
# Folder for the persistent index of parsed content and the feeds' Last-Modified history,
# shared by every worker serving the same content; None: a folder per content folder
# under the system's temporary folder. Use a persistent one in production.
STATE_DIR = None
# Secret signing draft preview links (`flask preview`); None: no previews. Keep it private.
PREVIEW_SECRET = None
# Days Atom feeds announce a takedown with an RFC 6721 tombstone (0: never).
TOMBSTONE_DAYS = 30
# Branding (a site path such as "/media/icon.png", or an https:// URL; None: none):
# a square icon (favicon, Atom icon, JSON icon), a wide logo (RSS image, Atom logo) and a
# cover picture (Feedly), and the accent colour Feedly shows (six hex digits, "00a0e0").
SITE_ICON = None
SITE_LOGO = None
SITE_COVER = None
ACCENT_COLOR = None
# Largest feed document in bytes (0: no cap): past it, older items carry summaries only.
FEED_MAX_BYTES = 0
# Seconds a CDN or Varnish in front may keep feeds and pages (Surrogate-Control and
# CDN-Cache-Control, never past a scheduled release); 0: edges follow Cache-Control.
EDGE_MAX_AGE = 0
# Cache endpoints told to drop what a publish changed (HTTP PURGE, xkey), separated by
# spaces or commas, e.g. "http://127.0.0.1:6081"; None: no purging.
PURGE_URLS = None
