"""`flask freeze`: publish a static export of the site (export.py) as OUTPUT_DIR, atomically.

An export is built in a new folder beside OUTPUT_DIR and published by renaming a symlink
over OUTPUT_DIR, so whatever serves it sees the previous export or the new one, never a
half-written mix. Content with problems, or an export holding fewer articles than the live
one, is refused unless the command is told otherwise; one freeze at a time holds the lock.
"""

from __future__ import annotations

import contextlib
import contextvars
import fcntl
import glob
import logging
import os
import shutil
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from .addresses import ARTICLE, parse_path
from .export import Export, FreezeError, Report, export_site
from .snapshot import Snapshot

log = logging.getLogger(__name__)

KEEP_BUILDS = 2
BUILD_MARK = ".build-"
PARTIAL_MARK = ".partial-"
# Problems named in freeze's refusal; `flask check` lists them all.
SHOWN_PROBLEMS = 3


@click.command("freeze")
@click.argument("output_dir", type=click.Path(path_type=Path))
@click.option(
    "--keep",
    type=click.IntRange(min=1),
    default=KEEP_BUILDS,
    show_default=True,
    help="Exports to keep beside OUTPUT_DIR, the new one included; older ones are deleted.",
)
@click.option(
    "--allow-shrink",
    is_flag=True,
    help="Publish even if the export holds fewer articles than the live one, or none.",
)
@click.option(
    "--allow-problems",
    is_flag=True,
    help="Publish even if some content files have problems (they are left out).",
)
@with_appcontext
def freeze_command(output_dir: Path, keep: int, allow_shrink: bool, allow_problems: bool) -> None:
    """Write every page, feed and file of the site into OUTPUT_DIR, swapped in atomically.

    Refuses, publishing nothing, when content has problems or the export would hold
    fewer articles than the one OUTPUT_DIR serves (an unmounted content folder must
    not replace a live site with an empty one), unless told to with the --allow options.
    """
    app = current_app._get_current_object()
    output = Path(os.path.abspath(output_dir))
    try:
        with exclusive_lock(output):
            check_output(output)
            store = app.extensions["feedsvc"]
            snapshot = store.snapshot()
            check_content(snapshot, output, allow_problems)
            check_size(snapshot, output, allow_shrink, store.settings.content_dir)
            remove_unfinished_builds(output)
            build, export = build_export(app, output)
            publish(build, output)
            remove_old_builds(output, keep)
    except FreezeError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"cannot export to {output_dir}: {exc}") from None
    click.echo(f"wrote {export.files} files ({export.size} bytes) to {output_dir} ({build.name})")


@contextlib.contextmanager
def exclusive_lock(output: Path) -> Iterator[None]:
    """Hold a lock beside OUTPUT_DIR, so two exports into it never run at once."""
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.with_name(f".{output.name}.lock").open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FreezeError(f"another freeze into {output} is running") from None
        yield


def check_output(output: Path) -> None:
    """Refuse to replace anything at OUTPUT_DIR but a symlink to an earlier export."""
    if output.is_symlink():
        target = os.readlink(output)
        if "/" in target or not target.startswith(output.name + BUILD_MARK):
            raise FreezeError(f"{output} is a symlink to {target}, not to an export of freeze")
    elif output.exists():
        raise FreezeError(
            f"{output} exists and is not an export of freeze; move it away or choose another"
            " folder (freeze makes OUTPUT_DIR a symlink to each new export)"
        )


def check_content(snapshot: Snapshot, output: Path, allow_problems: bool) -> None:
    """Refuse to publish content with problems unless told to, naming the first few."""
    problems = snapshot.site.problems
    if not problems or allow_problems:
        return
    shown = "; ".join(str(problem) for problem in problems[:SHOWN_PROBLEMS])
    more = f" (and {len(problems) - SHOWN_PROBLEMS} more)" if len(problems) > SHOWN_PROBLEMS else ""
    raise FreezeError(
        f"refused: {len(problems)} content problem{'s' * (len(problems) != 1)}: {shown}{more};"
        f" {output} left unchanged. Fix {'it' if len(problems) == 1 else 'them'}"
        " (`flask check` lists every problem) or run freeze"
        " with --allow-problems to publish without those files."
    )


def check_size(snapshot: Snapshot, output: Path, allow_shrink: bool, content_dir: Path) -> None:
    """Refuse an export with no articles, or fewer than the live export, unless told to."""
    new = len(snapshot.published())
    pages = article_pages(output) if output.is_dir() else []
    live = len(pages)
    # A takedown shrinks the export on purpose: its article's page now answers 410.
    removed = len(set(pages) & snapshot.routes.gone)
    if allow_shrink or (new and new + removed >= live):
        return
    where = f"the live export holds {live}" if live else "there is no live export"
    raise FreezeError(
        f"refused: the new export would hold {new} article{'s' * (new != 1)} and {where}"
        f" (content folder: {content_dir}); {output} left unchanged."
        " Run freeze with --allow-shrink if that is intended."
    )


def article_pages(root: Path) -> list[str]:
    """Return the site paths of an export's article pages (/<section>/<slug>/)."""
    folders = (page.parent.relative_to(root) for page in root.glob("*/*/index.html"))
    return [path for f in folders if _names_an_article(path := f"/{f.as_posix()}/")]


def _names_an_article(path: str) -> bool:
    found = parse_path(path)
    return found is not None and found[0].kind == ARTICLE


def _siblings(output: Path, mark: str) -> list[Path]:
    """Return the folders beside OUTPUT_DIR named after it with `mark`, oldest first."""
    return sorted(output.parent.glob(glob.escape(output.name + mark) + "*"))


def remove_unfinished_builds(output: Path) -> None:
    """Delete what an earlier freeze, stopped midway, left behind; it was never published."""
    for partial in _siblings(output, PARTIAL_MARK):
        log.warning("removing %s, left unfinished by an earlier freeze", partial.name)
        shutil.rmtree(partial)


def build_export(app: Flask, output: Path) -> tuple[Path, Export]:
    """Export the site into a new folder beside OUTPUT_DIR; rename it a build once complete."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    partial = output.with_name(output.name + PARTIAL_MARK + stamp)
    partial.mkdir()
    try:
        with progress_reporter() as report:
            # Flask's CLI runs commands in an app context that requests would share, and with
            # it one `g`; an empty context gives each request its own, as a server does.
            export = contextvars.Context().run(export_site, app, partial, report)
        os.sync()  # every file is on disk before a link can point at it
        build = output.with_name(output.name + BUILD_MARK + stamp)
        partial.rename(build)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return build, export


def publish(build: Path, output: Path) -> None:
    """Point OUTPUT_DIR at `build` with one rename: readers see the old export or the new."""
    link = output.with_name(f".{output.name}.swap")
    link.unlink(missing_ok=True)  # left by a freeze stopped between these two steps
    link.symlink_to(build.name)  # relative, so the exports can move together
    os.replace(link, output)


def remove_old_builds(output: Path, keep: int) -> None:
    """Delete all but the newest `keep` exports, never the one OUTPUT_DIR points at."""
    current = os.readlink(output)
    for old in _siblings(output, BUILD_MARK)[:-keep]:
        if old.name != current:
            log.info("removing old export %s", old.name)
            try:
                shutil.rmtree(old)
            except OSError as exc:  # the new export is published all the same
                log.warning("could not remove old export %s: %s", old.name, exc)


@contextlib.contextmanager
def progress_reporter() -> Iterator[Report]:
    """Yield report(done, known): a bar on stderr when a person may watch, else a no-op."""
    if not stderr_is_terminal():
        yield lambda done, known: None
        return
    with click.progressbar(length=1, label="freezing", file=sys.stderr) as bar:

        def report(done: int, known: int) -> None:
            bar.length = known
            bar.update(done - bar.pos)

        yield report


def stderr_is_terminal() -> bool:
    """Tell whether a person may be watching; pipes and files must get clean output."""
    return sys.stderr.isatty()
