"""WebSub publish pings, sent to a real HTTP server on 127.0.0.1 standing in as the hub."""

from __future__ import annotations

import itertools
import logging
import threading
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from feedsvc.websub import HubNotifier
from tests.conftest import free_port, in_forked_child, wait_until

DEADLINE = 10.0  # generous for a loaded CI machine; a healthy run takes a fraction of it
# notify() must return at once: the slow hub of these tests answers after 2 s, 8 times this.
NOTIFY_BUDGET = 0.25
FEED = "https://news.example.org/culture.xml"
ATOM = "https://news.example.org/culture.atom"
JSON = "https://news.example.org/feed.json"


@dataclass(frozen=True)
class Received:
    """One request the hub received."""

    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, list[str]]
    at: float  # time.monotonic() on arrival


@dataclass
class FakeHub:
    """Records every request; fails the first `fail_first` with `status`, after `delay` s."""

    url: str = ""
    fail_first: int = 0
    status: int = 500
    location: str = ""
    delay: float = 0.0
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    release: threading.Event = field(default_factory=threading.Event)

    def record(self, request: Received) -> int:
        """Keep `request`; return the status to answer it with."""
        with self.lock:
            self.requests.append(request)
            return self.status if len(self.requests) <= self.fail_first else 202

    def received(self, count: int = 1) -> list[Received]:
        """Wait until at least `count` requests arrived; return them all."""
        wait_until(lambda: len(self.requests) >= count, f"{count} request(s) at the hub")
        with self.lock:
            return list(self.requests)

    def pinged(self) -> list[str]:
        """Return the hub.url of every request so far, in order."""
        with self.lock:
            return [url for r in self.requests for url in r.form.get("hub.url", [])]


def handler_for(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    """Return a request handler class that reports to `hub`."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            arrived = time.monotonic()
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            form = urllib.parse.parse_qs(body.decode("ascii"), keep_blank_values=True)
            headers = {k.lower(): v for k, v in self.headers.items()}
            status = hub.record(Received(self.command, self.path, headers, form, arrived))
            if hub.delay:
                hub.release.wait(hub.delay)
            self.send_response(status)
            if hub.location:
                self.send_header("Location", hub.location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST

        def log_message(self, format, *args):
            pass

    return Handler


@pytest.fixture
def hub():
    """A hub stand-in served from a thread on 127.0.0.1."""
    fake = FakeHub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(fake))
    fake.url = f"http://127.0.0.1:{server.server_address[1]}/hub"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield fake
    fake.release.set()  # answer any request still held back by `delay`
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.fixture
def make_notifier():
    """Build notifiers with fast retries; each is closed when the test ends."""
    notifiers = []

    def make(hub_url: str, **options) -> HubNotifier:
        options = {"first_delay": 0.05, "max_delay": 1.0, "timeout": 5.0, **options}
        notifiers.append(HubNotifier(hub_url, **options))
        return notifiers[-1]

    yield make
    for notifier in notifiers:
        notifier.close(timeout=10)


@pytest.fixture
def closed_port() -> str:
    """Return the URL of a port on 127.0.0.1 where nothing listens."""
    return f"http://127.0.0.1:{free_port()}/hub"


def websub_threads() -> list[threading.Thread]:
    """Return the notifier threads alive in this process."""
    return [t for t in threading.enumerate() if t.name == "feedsvc-websub"]


def websub_records(caplog, level: int) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.name == "feedsvc.websub" and r.levelno == level
    ]


def test_ping_is_a_publish_form_post(hub, make_notifier, caplog):
    caplog.set_level(logging.INFO, logger="feedsvc.websub")
    make_notifier(hub.url, user_agent="feedsvc-test/1").notify([FEED])
    [request] = hub.received(1)
    assert (request.method, request.path) == ("POST", "/hub")
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.headers["user-agent"] == "feedsvc-test/1"
    assert request.form == {"hub.mode": ["publish"], "hub.url": [FEED]}
    wait_until(lambda: websub_records(caplog, logging.INFO), "the success log line")
    assert FEED in websub_records(caplog, logging.INFO)[0]


def test_url_with_query_is_encoded_and_decoded_intact(hub, make_notifier):
    url = "https://news.example.org/feed.xml?tag=city hall&lang=fr#x"
    make_notifier(hub.url).notify([url])
    assert hub.received(1)[0].form["hub.url"] == [url]


def test_a_lone_string_is_one_url(hub, make_notifier):
    notifier = make_notifier(hub.url)
    notifier.notify(FEED)  # type: ignore[arg-type]
    notifier.notify([ATOM])
    wait_until(lambda: ATOM in hub.pinged(), "the sentinel ping")
    assert hub.pinged() == [FEED, ATOM]


def test_each_url_gets_a_request_of_its_own(hub, make_notifier):
    make_notifier(hub.url).notify([FEED, ATOM, JSON])
    requests = hub.received(3)
    assert [r.form["hub.url"] for r in requests] == [[FEED], [ATOM], [JSON]]
    assert all(r.form["hub.mode"] == ["publish"] for r in requests)


def test_duplicates_are_coalesced(hub, make_notifier):
    hub.delay = DEADLINE  # hold the first ping on the wire until released
    notifier = make_notifier(hub.url)
    notifier.notify([FEED])
    hub.received(1)
    notifier.notify([ATOM, ATOM, JSON])
    notifier.notify([JSON, ATOM])
    hub.release.set()
    notifier.notify([FEED + "?sentinel"])  # pings go in order: once it arrives, all did
    wait_until(lambda: FEED + "?sentinel" in hub.pinged(), "the sentinel ping")
    assert Counter(hub.pinged()) == {FEED: 1, ATOM: 1, JSON: 1, FEED + "?sentinel": 1}


def test_change_while_on_the_wire_earns_exactly_one_more_ping(hub, make_notifier):
    hub.delay = DEADLINE
    notifier = make_notifier(hub.url)
    notifier.notify([FEED])
    hub.received(1)
    notifier.notify([FEED])
    notifier.notify([FEED, FEED])
    hub.release.set()
    wait_until(lambda: hub.pinged().count(FEED) == 2, "the second ping")
    notifier.notify([ATOM])  # pings go in order: once the sentinel arrives, all did
    wait_until(lambda: ATOM in hub.pinged(), "the sentinel ping")
    assert Counter(hub.pinged()) == {FEED: 2, ATOM: 1}


def test_failures_are_retried_with_growing_delays(hub, make_notifier, caplog):
    caplog.set_level(logging.INFO, logger="feedsvc.websub")
    hub.fail_first = 3
    make_notifier(hub.url, first_delay=0.05, attempts=5).notify([FEED])
    requests = hub.received(4)
    assert all(r.form["hub.url"] == [FEED] for r in requests)
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(requests)]
    # Backoffs of 0.05, 0.1 and 0.2 s, each shortened by at most 20 % of jitter.
    for n, gap in enumerate(gaps):
        assert gap >= 0.8 * 0.05 * 2**n, gaps
    assert gaps[0] < gaps[1] < gaps[2], gaps
    wait_until(lambda: websub_records(caplog, logging.INFO), "the success log line")
    [warning] = websub_records(caplog, logging.WARNING)  # the first failure, not each retry
    assert FEED in warning and "HTTP" in warning and "retrying" in warning


def test_backoff_is_capped_at_max_delay(hub, make_notifier):
    hub.fail_first = 3
    make_notifier(hub.url, first_delay=0.05, max_delay=0.05).notify([FEED])
    requests = hub.received(4)
    gap = requests[3].at - requests[2].at
    assert 0.04 <= gap < 0.15, gap  # uncapped it would be 0.16 to 0.2 s


@pytest.mark.parametrize("status", [400, 404, 500, 503])
def test_gives_up_after_attempts_with_one_warning(hub, make_notifier, caplog, status):
    hub.fail_first, hub.status = 100, status
    make_notifier(hub.url, attempts=3, first_delay=0.01).notify([FEED])
    gave_up = lambda: [w for w in websub_records(caplog, logging.WARNING) if "gave up" in w]  # noqa: E731
    wait_until(gave_up, "the give-up warning")
    [warning] = gave_up()
    assert FEED in warning and hub.url in warning and f"HTTP {status}" in warning
    assert len(hub.pinged()) == 3


def test_redirect_is_a_failure_not_followed(hub, make_notifier, caplog):
    hub.fail_first, hub.status, hub.location = 100, 302, "/elsewhere"
    make_notifier(hub.url, attempts=2, first_delay=0.01).notify([FEED])
    wait_until(lambda: websub_records(caplog, logging.WARNING), "the give-up warning")
    assert [(r.method, r.path) for r in hub.received(2)] == [("POST", "/hub")] * 2
    assert "HTTP 302" in websub_records(caplog, logging.WARNING)[0]


def test_hub_down_does_not_raise(closed_port, make_notifier, caplog):
    notifier = make_notifier(closed_port, attempts=2, first_delay=0.01)
    started = time.monotonic()
    notifier.notify([FEED, ATOM])
    assert time.monotonic() - started < NOTIFY_BUDGET
    # Per feed: one warning at the first failure, one when giving up.
    wait_until(lambda: len(websub_records(caplog, logging.WARNING)) == 4, "four warnings")
    warnings = websub_records(caplog, logging.WARNING)
    assert all(closed_port in w and "Connection refused" in w for w in warnings)
    assert any(FEED in w for w in warnings) and any(ATOM in w for w in warnings)


def test_a_hub_that_never_answers_times_out(hub, make_notifier, caplog):
    hub.fail_first, hub.delay = 0, DEADLINE
    make_notifier(hub.url, attempts=1, timeout=0.2).notify([FEED])
    wait_until(lambda: websub_records(caplog, logging.WARNING), "the give-up warning")
    assert "timed out" in websub_records(caplog, logging.WARNING)[0]


def test_notify_returns_at_once_while_the_hub_is_slow(hub, make_notifier):
    hub.delay = 2.0
    notifier = make_notifier(hub.url)
    started = time.monotonic()
    notifier.notify([FEED])
    assert time.monotonic() - started < NOTIFY_BUDGET
    hub.received(1)  # the first ping is now waiting for the hub's answer
    for url in (ATOM, JSON, FEED):
        started = time.monotonic()
        notifier.notify([url])
        assert time.monotonic() - started < NOTIFY_BUDGET
    hub.release.set()


def test_notify_never_raises(make_notifier, closed_port, caplog):
    notifier = make_notifier(closed_port)
    notifier.notify(None)  # type: ignore[arg-type]
    notifier.notify([])
    assert "could not queue" in websub_records(caplog, logging.ERROR)[0]
    assert not websub_threads()


def test_queue_is_bounded(hub, make_notifier, caplog):
    hub.delay = DEADLINE
    notifier = make_notifier(hub.url, max_pending=2)
    notifier.notify([f"{FEED}?{n}" for n in range(5)])
    [warning] = websub_records(caplog, logging.WARNING)
    assert "3 ping(s)" in warning and hub.url in warning
    hub.release.set()
    hub.received(2)
    notifier.notify([ATOM])
    wait_until(lambda: ATOM in hub.pinged(), "the sentinel ping")
    assert hub.pinged() == [f"{FEED}?0", f"{FEED}?1", ATOM]


def test_thread_starts_lazily_and_close_stops_it(hub, make_notifier):
    notifier = make_notifier(hub.url)
    assert not websub_threads()
    notifier.notify([FEED])
    hub.received(1)
    assert len(websub_threads()) == 1
    notifier.close()
    assert not websub_threads()
    notifier.notify([ATOM])  # a closed notifier sends nothing more and starts no thread
    assert not websub_threads()
    assert hub.pinged() == [FEED]


def test_close_drops_waiting_pings_with_a_warning(hub, make_notifier, caplog):
    caplog.set_level(logging.DEBUG, logger="feedsvc.websub")
    hub.fail_first = 100
    notifier = make_notifier(hub.url, first_delay=60.0, max_delay=60.0)
    notifier.notify([FEED])
    # FEED now waits a minute for its retry.
    wait_until(lambda: websub_records(caplog, logging.WARNING), "the first attempt to fail")
    started = time.monotonic()
    notifier.close()
    assert time.monotonic() - started < 1.0  # does not wait out the backoff
    assert not websub_threads()
    [_failed, warning] = websub_records(caplog, logging.WARNING)
    assert "1 ping(s)" in warning and FEED in warning


def test_a_forked_child_starts_with_an_empty_queue_and_pings_on_its_own(hub, make_notifier):
    notifier = make_notifier(hub.url)
    hub.delay = 1.0  # the parent's ping is still on the wire when the child is forked
    notifier.notify(["http://example.org/parent.xml"])

    def in_the_child() -> bytes:  # nothing of the parent's queue, and its own thread
        idle = notifier._courier.wait_idle(0)
        notifier.notify(["http://example.org/child.xml"])
        sent = notifier._courier.wait_idle(10)
        return b"%d%d" % (idle, sent)

    answer = in_forked_child(in_the_child, 2)
    assert answer == b"11"
    wait_until(lambda: "http://example.org/child.xml" in hub.pinged(), "the child's ping")
    wait_until(lambda: "http://example.org/parent.xml" in hub.pinged(), "the parent's ping")
