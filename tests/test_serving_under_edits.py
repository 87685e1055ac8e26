"""Serving while edits arrive: every answer a whole, valid document whose ETag is its own.

Through a real granian server with two workers (one publishes, one follows), and the
document keys that tie a stored rendering to the feed it renders.
"""

from __future__ import annotations

import copy
import dataclasses
import gzip
import hashlib
import http.client
import threading
import time

import brotli
import feedparser

from feedsvc import index as index_module
from feedsvc.index import ContentIndex
from tests.conftest import free_port, wait_until
from tests.test_publisher import everywhere, granian

CODINGS = ("identity", "gzip", "br")
SUFFIXES = {"identity": "", "gzip": "-gz", "br": "-br"}


def fetch(port: int, path: str, coding: str) -> tuple[int, dict[str, str], bytes]:
    """GET on a fresh connection (either worker may answer); the body as sent."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, headers={"Accept-Encoding": coding})
        response = connection.getresponse()
        headers = {name.lower(): value for name, value in response.getheaders()}
        return response.status, headers, response.read()
    finally:
        connection.close()


def decoded(headers: dict[str, str], body: bytes) -> bytes:
    coding = headers.get("content-encoding", "identity")
    if coding == "gzip":
        return gzip.decompress(body)
    if coding == "br":
        return brotli.decompress(body)
    assert coding == "identity", coding
    return body


def check_answer(
    coding: str, status: int, headers: dict[str, str], body: bytes, parsed: set | None = None
) -> bytes:
    """Assert one answer is a whole document in the coding asked, tagged by its own bytes.

    `parsed`: digests of documents already read back as valid feeds (each is read once).
    """
    assert status == 200, (status, body[:200])
    assert headers.get("content-encoding", "identity") == coding
    assert int(headers["content-length"]) == len(body)
    document = decoded(headers, body)
    digest = hashlib.sha256(document).hexdigest()[:32]
    assert headers["etag"] == f'"{digest}{SUFFIXES[coding]}"'
    assert headers["last-modified"].endswith(" GMT")
    if parsed is None or digest not in parsed:
        feed = feedparser.parse(document)
        assert feed.bozo == 0, feed.get("bozo_exception")
        assert feed.entries
        if parsed is not None:
            parsed.add(digest)
    return document


def test_requests_during_a_stream_of_edits_answer_whole_consistent_documents(
    write_article, backdate, content_dir, tmp_path
):
    for n in range(6):
        write_article("culture", f"quiet-{n}", title=f"Quiet {n}", date=f"2026-01-0{n + 1}")
        write_article("news", f"story-{n}", title=f"Story {n}", date=f"2026-02-0{n + 1}")
    backdate()
    edited = "story-5"
    with granian(free_port(), content_dir, tmp_path / "state", tmp_path / "server.log") as (
        port,
        _,
    ):
        wait_until(lambda: everywhere(port, "/news.xml", b"Story 5"), "the site served")
        quiet = {coding: fetch(port, "/culture.xml", coding) for coding in CODINGS}
        stop = threading.Event()
        answers: list[tuple[str, str, int, dict, bytes]] = []
        problems: list[BaseException] = []

        def read() -> None:
            turn = 0
            while not stop.is_set():
                path = ("/news.xml", "/news.atom", "/culture.xml")[turn % 3]
                coding = CODINGS[turn // 3 % 3]
                try:
                    answers.append((path, coding, *fetch(port, path, coding)))
                except OSError as exc:  # a refused or dropped connection is a failure too
                    problems.append(exc)
                turn += 1

        readers = [threading.Thread(target=read) for _ in range(3)]
        for reader in readers:
            reader.start()
        try:
            for n in range(12):
                write_article(
                    "news", edited, title=f"Edited {n}", date="2026-02-06", body=f"Edit {n}."
                )
                time.sleep(0.15)
            wait_until(lambda: everywhere(port, "/news.xml", b"Edited 11"), "the last edit")
        finally:
            stop.set()
            for reader in readers:
                reader.join()
        assert not problems
        news = [a for a in answers if a[0] != "/culture.xml"]
        assert len(news) > 20
        seen_titles, parsed = set(), set()
        for path, coding, status, headers, body in answers:
            document = check_answer(coding, status, headers, body, parsed)
            if path == "/culture.xml":  # no edit touched it: the very same answer throughout
                assert (status, headers["etag"], body) == (
                    quiet[coding][0],
                    quiet[coding][1]["etag"],
                    quiet[coding][2],
                )
            else:
                seen_titles.update(t for t in range(12) if f"Edited {t}<".encode() in document)
        assert seen_titles, "some edits were served while they arrived"


def test_a_changed_feed_after_a_publication_answers_every_coding_with_its_bytes(
    write_article, backdate, content_dir, tmp_path
):
    for n in range(4):
        write_article("culture", f"story-{n}", title=f"Story {n}", date=f"2026-01-0{n + 1}")
    backdate()
    with granian(free_port(), content_dir, tmp_path / "state", tmp_path / "server.log") as (
        port,
        _,
    ):
        write_article("culture", "story-3", title="Story 3, corrected", date="2026-01-04")
        wait_until(lambda: everywhere(port, "/culture.atom", b"Story 3, corrected"), "the edit")
        documents = set()
        for _ in range(4):  # fresh connections: both workers, each coding made where asked
            for coding in CODINGS:
                documents.add(check_answer(coding, *fetch(port, "/culture.atom", coding)))
        assert len(documents) == 1


def test_document_keys_follow_the_articles_not_their_objects(write_article, make_app):
    for n in range(3):
        write_article("culture", f"story-{n}", title=f"Story {n}", date=f"2026-01-0{n + 1}")
    store = make_app().extensions["feedsvc"]
    spec = store.snapshot().editions["culture"].spec
    index = ContentIndex.for_settings(store.settings)
    try:
        key = index.document_key("culture", spec)
        # Equal articles that are other objects (as a follower or a restart has): same key.
        copied = dataclasses.replace(spec, articles=copy.deepcopy(tuple(spec.articles)))
        assert copied.articles[0] is not spec.articles[0]
        assert index.document_key("culture", copied) == key
        # Any article changed, in any field a rendering reads: another key.
        articles = list(spec.articles)
        articles[1] = dataclasses.replace(articles[1], title="Story 1, corrected")
        retitled = dataclasses.replace(spec, articles=tuple(articles))
        assert index.document_key("culture", retitled) != key
        assert index.document_key("culture", spec) == key  # the old version still known
        # The same articles in another order, or at another path: another key.
        reordered = dataclasses.replace(spec, articles=tuple(reversed(spec.articles)))
        assert index.document_key("culture", reordered) != key
        assert index.document_key("culture/archive/1", spec) != key
    finally:
        index.close()


def test_article_digests_kept_for_document_keys_are_bounded(write_article, make_app, monkeypatch):
    for n in range(3):
        write_article("culture", f"story-{n}", title=f"Story {n}", date=f"2026-01-0{n + 1}")
    store = make_app().extensions["feedsvc"]
    spec = store.snapshot().editions["culture"].spec
    monkeypatch.setattr(index_module, "ARTICLE_DIGESTS_KEPT", 4)
    index = ContentIndex.for_settings(store.settings)
    try:
        key = index.document_key("culture", spec)
        for n in range(10):  # versions of one article, as a stream of edits makes
            articles = list(spec.articles)
            articles[0] = dataclasses.replace(articles[0], title=f"Version {n}")
            index.document_key("culture", dataclasses.replace(spec, articles=tuple(articles)))
            assert len(index._article_digests) <= 4 + len(articles)
        assert index.document_key("culture", spec) == key
    finally:
        index.close()
