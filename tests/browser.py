"""Drive Debian's headless Chromium with Playwright, and collect what goes wrong in a page.

Playwright's own browser builds are never downloaded: it starts the system's chromium
(`executable_path`), so the tests see the browser the machine has.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import Error, sync_playwright

CHROMIUM = shutil.which("chromium")
# Without the background-networking flags Chromium calls Google services, and a closed
# network makes it log refused connections; --no-sandbox because tests may run as root.
FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)
TIMEOUT_MS = 15_000


class BrowserError(RuntimeError):
    """Chromium could not start, load a page, or evaluate an expression."""


class Browser:
    """One Chromium process on its own profile; `new_page()` opens a tab in it."""

    def __init__(self, profile_dir: Path, executable: str | None = CHROMIUM):
        if executable is None:
            raise BrowserError("chromium is not installed")
        self._playwright = sync_playwright().start()
        try:
            self._context = self._playwright.chromium.launch_persistent_context(
                profile_dir, executable_path=executable, headless=True, args=list(FLAGS)
            )
        except Error as exc:
            self._playwright.stop()
            raise BrowserError(str(exc)) from exc
        self._context.set_default_timeout(TIMEOUT_MS)

    def new_page(self) -> Page:
        """Open a blank tab."""
        return Page(self._context.new_page())

    def close(self) -> None:
        """End this Chromium process and Playwright's driver."""
        try:
            self._context.close()
        finally:
            self._playwright.stop()


class Page:
    """A tab: navigate, evaluate JavaScript, and collect what went wrong while loading."""

    def __init__(self, page):
        self._page = page
        self._problems: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self._problems.append(f"exception: {error.message}"))
        page.on("requestfailed", self._failed)
        page.on("response", self._response)

    def goto(self, url: str) -> None:
        """Load `url` and wait for its load event (images and stylesheets included)."""
        try:
            self._page.goto(url, wait_until="load")
        except Error as exc:
            raise BrowserError(f"{url}: {exc.message}") from exc

    def evaluate(self, expression: str):
        """Return the JSON value of a JavaScript expression evaluated in the page."""
        try:
            return self._page.evaluate(expression)
        except Error as exc:
            raise BrowserError(exc.message) from exc

    def problems(self) -> list[str]:
        """Return the console errors, uncaught exceptions and failed requests seen so far."""
        return list(self._problems)

    def screenshot(self, path: Path) -> Path:
        """Save a PNG of the whole page at `path`."""
        self._page.screenshot(path=path, full_page=True)
        return path

    def close(self) -> None:
        """Close the tab."""
        self._page.close()

    def _console(self, message) -> None:
        if message.type not in ("error", "assert"):
            return
        # The browser's own errors (a resource that failed to load) name the resource.
        where = message.location.get("url", "")
        if _is_favicon(where):  # asked for by the browser itself: see _response
            return
        suffix = f" {where}" if where and where != self._page.url else ""
        self._problems.append(f"console: {message.text}{suffix}")

    def _failed(self, request) -> None:
        self._problems.append(f"request failed: {request.failure} {request.url}")

    def _response(self, response) -> None:
        # Chromium asks for /favicon.ico on its own, for documents that name no icon (a
        # feed shown with its stylesheet), and sometimes only after the page has loaded.
        if _is_favicon(response.url):
            return
        if response.status >= 400:
            self._problems.append(f"HTTP {response.status}: {response.url}")


def _is_favicon(url: str) -> bool:
    return urlsplit(url).path == "/favicon.ico"
