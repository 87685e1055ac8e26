"""A restart's check of every file against the stored publication, as two processes make it
on a large tree (see feedsvc/identities.py): whichever half a change is in, it is found."""

from __future__ import annotations

import os

import pytest

from feedsvc import identities
from feedsvc.index import ContentIndex
from feedsvc.stored import why_not_current
from tests.test_warm_restart import held_assembly, publish_once

__all__ = ["held_assembly"]  # a fixture, used by name


@pytest.fixture
def split(monkeypatch):
    """Check with a forked helper from two files on, and count the helpers started."""
    monkeypatch.setattr(identities, "SPLIT_MIN_FILES", 2)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    started = []
    start = identities.multiprocessing.context.ForkProcess.start

    def counted(self):
        started.append(self)
        return start(self)

    monkeypatch.setattr(identities.multiprocessing.context.ForkProcess, "start", counted)
    return started


def stored_parts(make_app):
    settings = make_app(WATCH_CONTENT=True).extensions["feedsvc"].settings
    index = ContentIndex.for_settings(settings)
    try:
        return settings, index.stored_publication()
    finally:
        index.close()


def write_site(write_stories, backdate) -> list:
    paths = write_stories("culture", 6)
    write_stories("news", 2)
    backdate()
    return sorted(paths)  # the first half of the index's rows and two of the second


@pytest.mark.parametrize("which", [0, 5])  # in this process's half, in the helper's
def test_a_file_changed_in_either_half_is_found(
    write_stories, backdate, make_app, held_assembly, split, which
):
    paths = write_site(write_stories, backdate)
    publish_once(make_app, held_assembly)
    settings, parts = stored_parts(make_app)
    assert why_not_current(settings.content_dir, parts, 0) is None

    os.utime(paths[which], ns=(10**18, 10**18))
    changed = f"culture/{paths[which].name}"
    assert why_not_current(settings.content_dir, parts, 0) == f"{changed} changed"
    assert len(split) == 2  # a helper for each check


def test_a_file_saved_as_it_changed_is_found_in_either_half(
    write_stories, make_app, held_assembly, split
):
    write_site(write_stories, lambda: None)  # not backdated: saved as they changed
    publish_once(make_app, held_assembly)
    settings, parts = stored_parts(make_app)
    reason = why_not_current(settings.content_dir, parts, 0)
    assert reason is not None and reason.endswith(" was saved as it changed")
    assert split


def test_a_file_that_cannot_be_read_is_found(
    write_stories, backdate, make_app, held_assembly, split
):
    paths = write_site(write_stories, backdate)
    publish_once(make_app, held_assembly)
    settings, parts = stored_parts(make_app)
    folder = paths[-1].parent.stat()
    paths[-1].unlink()
    paths[-1].symlink_to("nowhere.md")  # listed, but stat(2) fails
    os.utime(paths[-1].parent, ns=(folder.st_atime_ns, folder.st_mtime_ns))
    reason = f"culture/{paths[-1].name} cannot be read"
    assert why_not_current(settings.content_dir, parts, 0) == reason
