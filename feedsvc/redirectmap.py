"""Moved and removed addresses of a static export, written as an nginx `map` include.

nginx has no app to ask, so `freeze` lists every old address it can answer: article
aliases, each exported page and feed of a renamed section under its old name, and the
addresses of articles taken down. deploy/nginx-export.conf includes the file into
`map $uri $feedsvc_moved` and answers 301 to the value, or 410 for "gone".
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import unquote

from .editorial import Routes, resolve
from .urls import encode_uri

MAP_FILE = ".redirects.map"
GONE = "gone"


def old_addresses(routes: Routes, exported: Iterable[str]) -> set[str]:
    """Return every old address the routes answer, as nginx's decoded $uri spells them."""
    renamed: dict[str, list[str]] = {}
    for old, new in routes.moved_sections.items():
        renamed.setdefault(new, []).append(old)
    addresses = set(routes.redirects) | set(routes.gone)
    for path in [*map(unquote, exported), *routes.gone, *routes.redirects]:
        head, sep, rest = path[1:].partition("/")
        stem, dot, extension = head.partition(".")
        for old in renamed.get(stem if dot and not sep else head, ()):
            if dot and not sep:  # a feed: /culture.xml
                addresses.add(f"/{old}.{extension}")
            else:
                addresses.add(f"/{old}/{rest}" if sep else f"/{old}")
    addresses.update(f"/{old}" for old in routes.moved_sections)
    return addresses


def render_map(routes: Routes, exported: Iterable[str]) -> bytes:
    """Return the map entries, sorted: `"/old/" "/new/";` or `"/removed/" "gone";`."""
    lines = ["# Written by `flask freeze`: old address -> new address (301), or gone (410)."]
    for address in sorted(old_addresses(routes, exported)):
        found = resolve(routes, address)
        if found is None:
            continue
        status, target = found
        value = GONE if status == 410 else encode_uri(target)
        lines.append(f'"{address}" "{value}";')
    return ("\n".join(lines) + "\n").encode("utf-8")
