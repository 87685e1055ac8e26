"""What a start costs: file states kept compactly, image files read once, the same site after."""

from __future__ import annotations

import gc
import io
import os
import pickle

import pytest
from PIL import Image

from feedsvc.images import ImageFactsCache
from feedsvc.loader import FileState, cycle_collection_paused, read_content_files


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (10, 20, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_file_state_comes_back_from_the_index_equal_with_its_names_shared(
    make_app, write_article, write_media
):
    write_media("lead.png", png(40, 30))
    for slug in ("first", "second"):
        write_article(
            "culture",
            slug,
            body="Text with ![a picture](/media/lead.png).",
            author=["Ann Example", "Bo Writer"],
            tags=["Opera", "Riga"],
            image={"src": "/media/lead.png", "alt": "A stage", "credit": "Photo Desk"},
            related=[{"title": "More", "url": "https://example.org/more"}],
            mood="calm",
        )
    store = make_app().extensions["feedsvc"]
    store.snapshot()
    states = {rel: state for rel, state in store._states.items() if rel.endswith(".md")}
    again = {rel: pickle.loads(pickle.dumps(state)) for rel, state in states.items()}
    for rel, state in states.items():
        copy = again[rel]
        assert isinstance(copy, FileState)
        assert copy == state
        assert copy.result.image == state.result.image  # type and size read from the file
        assert copy.result.image.width == 40
        assert copy.result.extra == {"mood": "calm"}
        assert copy.result.body_html == state.result.body_html
        assert copy.result.image_sizes == state.result.image_sizes
    first, second = (again[f"culture/{slug}.md"].result for slug in ("first", "second"))
    # Two articles unpickled apart share one copy of each repeated name.
    assert first.section is second.section
    assert all(a is b for a, b in zip(first.authors, second.authors, strict=True))
    assert all(a is b for a, b in zip(first.tags, second.tags, strict=True))
    assert first.image.src is second.image.src


def test_image_facts_are_read_again_once_the_file_changes(content_dir, write_media):
    path = write_media("lead.png", png(40, 30))
    cache = ImageFactsCache()
    facts = cache.read(path)
    assert (facts.width, facts.height, facts.mime_type) == (40, 30, "image/png")
    assert cache.read(path) is facts  # the same file: not opened again
    path.write_bytes(png(400, 300))
    os.utime(path, ns=(1, 1))  # even with another mtime, the size and inode tell
    assert (cache.read(path).width, cache.read(path).height) == (400, 300)
    path.unlink()
    assert cache.read(path) is None


def test_articles_sharing_an_image_get_its_facts(content_dir, make_app, write_article, write_media):
    write_media("shared.png", png(64, 36))
    for n in range(3):
        write_article("news", f"story-{n}", image="/media/shared.png")
    settings = make_app().extensions["feedsvc"].settings
    rels = [f"news/story-{n}.md" for n in range(3)]
    states = read_content_files(content_dir, rels, settings, {"/media/shared.png": 100})
    for rel in rels:
        image = states[rel].result.image
        assert (image.width, image.height, image.mime_type) == (64, 36, "image/png")


def test_a_restart_from_the_index_serves_the_same_bytes(
    make_app, write_stories, write_media, backdate
):
    write_media("lead.png", png(64, 36))
    write_stories("culture", 12, image="/media/lead.png", tags=["Opera"], author="Ann Example")
    backdate()  # old files: the restart takes every one from the index, none read again
    paths = ("/feed.xml", "/culture.atom", "/tags/opera.json", "/culture/story-3/")
    first = make_app().test_client()
    before = {path: first.get(path) for path in paths}
    restarted = make_app().test_client()  # the same state folder: the index is read
    for path in paths:
        after = restarted.get(path)
        assert after.status_code == before[path].status_code == 200, path
        assert after.data == before[path].data, path
        assert after.headers.get("ETag") == before[path].headers.get("ETag"), path


def test_the_cycle_collector_runs_again_after_a_read(content_dir, make_app, write_stories):
    write_stories("news", 3)
    settings = make_app().extensions["feedsvc"].settings
    rels = [f"news/story-{n}.md" for n in range(1, 4)]
    assert gc.isenabled()
    states = read_content_files(content_dir, rels, settings, {})
    assert gc.isenabled()
    assert all(state.result is not None for state in states.values())
    with pytest.raises(RuntimeError), cycle_collection_paused():
        assert not gc.isenabled()
        raise RuntimeError("a failed read")
    assert gc.isenabled()
    gc.disable()  # a process that turned it off keeps it off
    try:
        read_content_files(content_dir, rels, settings, {})
        assert not gc.isenabled()
    finally:
        gc.enable()
