"""Drive Debian's headless Chromium over the DevTools protocol, through a pipe.

No port and no websocket: with --remote-debugging-pipe Chromium reads commands from its
file descriptor 3 and writes answers and events to descriptor 4, as NUL-ended JSON.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path

CHROMIUM = shutil.which("chromium")
# Without the background-networking flags Chromium calls Google services, and a closed
# network makes it log refused connections; --no-sandbox because tests may run as root.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
)
TIMEOUT = 15.0


class BrowserError(RuntimeError):
    """Chromium answered a command with an error, died, or did not answer in time."""


class Browser:
    """One Chromium process; `new_page()` opens a tab driven through a flat session."""

    def __init__(self, profile_dir: Path, executable: str | None = CHROMIUM):
        if executable is None:
            raise BrowserError("chromium is not installed")
        self._log = profile_dir / "chromium.log"
        commands_read, self._to_browser = os.pipe()
        self._from_browser, answers_write = os.pipe()
        # The pipes arrive as stdin and stdout, and the shell moves them to descriptors 3
        # and 4, where Chromium looks for them (dash redirects only descriptors 0 to 9).
        launch = 'exec "$0" "$@" 3<&0 4>&1 </dev/null >/dev/null'
        with self._log.open("wb") as log:
            self.process = subprocess.Popen(
                ["/bin/sh", "-c", launch, executable, *FLAGS, f"--user-data-dir={profile_dir}"],
                stdin=commands_read,
                stdout=answers_write,
                stderr=log,
            )
        os.close(commands_read)
        os.close(answers_write)
        self._buffer = b""
        self._last_id = 0
        self._answers: dict[int, dict] = {}
        # Events a caller must act on at once (a paused request), by (session, method).
        self.events: list[dict] = []

    def send(self, method: str, session: str | None = None, **params) -> dict:
        """Send one command and return its result."""
        self._last_id += 1
        command_id = self._last_id
        message = {"id": command_id, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        try:
            os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        except BrokenPipeError:
            raise self._exited() from None
        deadline = time.monotonic() + TIMEOUT
        while command_id not in self._answers:
            self._dispatch(deadline, f"an answer to {method}")
        answer = self._answers.pop(command_id)
        if "error" in answer:
            raise BrowserError(f"{method}: {answer['error'].get('message')}")
        return answer.get("result", {})

    def wait_for(self, method: str, session: str) -> dict:
        """Return (and consume) the first event `method` of `session`, waiting if needed."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            for event in self.events:
                if event.get("method") == method and event.get("sessionId") == session:
                    self.events.remove(event)
                    return event["params"]
            self._dispatch(deadline, method)

    def new_page(self) -> Page:
        """Open a blank tab."""
        return Page(self)

    def close(self) -> None:
        """End this Chromium process and close the pipes."""
        with contextlib.suppress(BrowserError):  # it may exit before it answers
            self.send("Browser.close")
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)

    def _exited(self) -> BrowserError:
        status = self.process.wait()
        log = self._log.read_text(errors="replace").strip().splitlines()[-5:]
        return BrowserError(f"Chromium exited with status {status}: " + " / ".join(log))

    def _dispatch(self, deadline: float, awaited: str) -> None:
        message = self._receive(deadline, awaited)
        if "id" in message:
            self._answers[message["id"]] = message
            return
        self.events.append(message)

    def _receive(self, deadline: float, awaited: str) -> dict:
        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([self._from_browser], [], [], max(remaining, 0))
            if not ready:
                raise BrowserError(f"Chromium sent no {awaited} within {TIMEOUT} s")
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise self._exited()
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(message)


class Page:
    """A tab: navigate, evaluate JavaScript, and collect what went wrong while loading."""

    def __init__(self, browser: Browser):
        self.browser = browser
        self.target = browser.send("Target.createTarget", url="about:blank")["targetId"]
        attached = browser.send("Target.attachToTarget", targetId=self.target, flatten=True)
        self.session = attached["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable")

    def send(self, method: str, **params) -> dict:
        """Send a command to this tab."""
        return self.browser.send(method, self.session, **params)

    def goto(self, url: str) -> None:
        """Load `url` and wait for its load event (images and stylesheets included)."""
        result = self.send("Page.navigate", url=url)
        if result.get("errorText"):
            raise BrowserError(f"{url}: {result['errorText']}")
        self.browser.wait_for("Page.loadEventFired", self.session)

    def evaluate(self, expression: str):
        """Return the JSON value of a JavaScript expression evaluated in the page."""
        result = self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise BrowserError(details.get("exception", {}).get("description", details["text"]))
        return result["result"].get("value")

    def problems(self) -> list[str]:
        """Return the console errors, uncaught exceptions and failed requests seen so far."""
        found = []
        for event in self.browser.events:
            if event.get("sessionId") != self.session:
                continue
            params = event["params"]
            match event["method"]:
                case "Runtime.consoleAPICalled" if params["type"] in ("error", "assert"):
                    args = params["args"]
                    found.append("console: " + " ".join(str(a.get("value")) for a in args))
                case "Runtime.exceptionThrown":
                    found.append("exception: " + params["exceptionDetails"]["text"])
                case "Log.entryAdded" if params["entry"]["level"] == "error":
                    entry = params["entry"]
                    found.append(f"log: {entry['text']} {entry.get('url', '')}".strip())
                case "Network.loadingFailed":
                    found.append(f"request failed: {params['errorText']}")
                case "Network.responseReceived" if params["response"]["status"] >= 400:
                    response = params["response"]
                    found.append(f"HTTP {response['status']}: {response['url']}")
        return found

    def screenshot(self, path: Path) -> Path:
        """Save a PNG of the whole page at `path`."""
        shot = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def close(self) -> None:
        """Close the tab and forget its events."""
        self.browser.send("Target.closeTarget", targetId=self.target)
        self.browser.events = [
            event for event in self.browser.events if event.get("sessionId") != self.session
        ]
