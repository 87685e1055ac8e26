"""Commands for admins: `flask check` the content tree, `flask new` to start an article."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from .addresses import RESERVED_SLUGS
from .freeze import freeze_command, stderr_is_terminal
from .loader import load_site
from .models import ContentError, ContentWarning, Site
from .parsing import SLUG
from .partners import PROFILES, check_partner
from .preview import preview_path
from .settings import Settings
from .slugs import slugify

# Below this many files a check is quick enough that a progress bar is only noise.
PROGRESS_MIN_FILES = 500


def init_app(app: Flask) -> None:
    """Register feedsvc's commands with the app's `flask` command line."""
    app.cli.add_command(check_command)
    app.cli.add_command(new_command)
    app.cli.add_command(freeze_command)
    app.cli.add_command(preview_command)


@click.command("check")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.option(
    "--for",
    "partners",
    multiple=True,
    type=click.Choice(sorted(PROFILES)),
    help="Also apply an aggregator's published feed rules (warnings citing the rule's source).",
)
@with_appcontext
def check_command(as_json: bool, partners: tuple[str, ...]) -> None:
    """Parse the whole content tree as it is now and report every problem (exit 1 if any)."""
    settings = current_app.extensions["feedsvc"].settings
    site, files = load_with_progress(settings)
    problems = list(site.problems)
    now = datetime.now(UTC)
    for name in partners:
        problems += [
            miss.as_warning(name) for miss in check_partner(PROFILES[name], site, settings, now)
        ]
    site = replace(site, problems=tuple(problems))
    if as_json:
        click.echo(json.dumps(check_report(site, files), ensure_ascii=False, indent=2))
    else:
        for problem in site.problems:
            click.echo(format_problem(problem))
        click.echo(summary_line(files, len(site.problems), count_warnings(site.problems)))
    errors = len(site.problems) - count_warnings(site.problems)
    click.get_current_context().exit(1 if errors else 0)


def count_warnings(problems) -> int:
    """Count the problems that did not stop an article from being published."""
    return sum(1 for problem in problems if isinstance(problem, ContentWarning))


def load_with_progress(settings: Settings) -> tuple[Site, int]:
    """Load the site afresh, counting files read, with a progress bar if a person waits."""
    files = 0
    with _progress_bar(settings.content_dir) as advance:

        def progress() -> None:
            nonlocal files
            files += 1
            advance()

        site = load_site(settings, progress=progress)
    return site, files


@contextlib.contextmanager
def _progress_bar(content_dir: Path):
    """Yield a step function: a bar on a terminal for large trees, else a no-op."""
    total = count_content_files(content_dir) if stderr_is_terminal() else 0
    if total < PROGRESS_MIN_FILES:
        yield lambda: None
        return
    with click.progressbar(length=total, label="checking content", file=sys.stderr) as bar:
        yield lambda: bar.update(1)


def count_content_files(content_dir: Path) -> int:
    """Estimate the files a check reads, cheaply: Markdown files one folder down."""
    return sum(1 for _ in content_dir.glob("*/*.md"))


def check_report(site: Site, files: int) -> dict:
    """Describe a check's outcome as one JSON-ready document."""
    problems = [{**p.as_dict(), "path": display_path(p.path)} for p in site.problems]
    return {
        "files": files,
        "sections": len(site.sections),
        "articles": len(site.articles),
        "problems": problems,
    }


def format_problem(problem: ContentError) -> str:
    """Format a problem as `path:line: reason`, the shape editors and CI jump to."""
    where = display_path(problem.path)
    if problem.line is not None:
        where = f"{where}:{problem.line}"
    if isinstance(problem, ContentWarning):
        where = f"{where}: warning"
    return f"{where}: {problem.reason}"


def summary_line(files: int, problems: int, warnings: int = 0) -> str:
    """Say how much was checked and how much is wrong, in one line."""
    errors = problems - warnings
    found = "no problems" if errors == 0 else f"{errors} problem{'s' * (errors != 1)}"
    if warnings:
        found += f", {warnings} warning{'s' * (warnings != 1)}"
    return f"checked {files} file{'s' * (files != 1)}: {found}"


def display_path(path: str) -> str:
    """Show a path relative to the working directory when it lies under it, else unchanged."""
    absolute = Path(os.path.abspath(path))
    cwd = Path.cwd()
    return str(absolute.relative_to(cwd)) if absolute.is_relative_to(cwd) else path


@click.command("new")
@click.argument("section")
@click.argument("title")
@click.option(
    "--new-section", is_flag=True, help="Create SECTION's folder if it does not exist yet."
)
@with_appcontext
def new_command(section: str, title: str, new_section: bool) -> None:
    """Write a draft article template for TITLE in SECTION, never overwriting a file.

    A section that does not exist yet is refused unless --new-section is given, so a
    typo in its name does not quietly start a new section.
    """
    settings = current_app.extensions["feedsvc"].settings
    check_section_name(section)
    slug = slugify(title)
    if not slug:
        raise click.BadParameter("it has no letters or digits to name a file", param_hint="TITLE")
    if not settings.content_dir.is_dir():
        raise click.ClickException(f"content folder {settings.content_dir} does not exist")
    folder = settings.content_dir / section
    if not folder.is_dir() and not new_section:
        raise click.ClickException(
            f"section folder {display_path(str(folder))} does not exist; check the name,"
            " or pass --new-section to start a new section"
        )
    path = folder / f"{slug}.md"
    write_new_file(path, article_template(title, settings, datetime.now(settings.timezone)))
    click.echo(f"wrote {display_path(str(path))}")
    click.echo("It is a draft: remove 'draft: true' (or set it to false) to publish it.")


@click.command("preview")
@click.argument("path")
@with_appcontext
def preview_command(path: str) -> None:
    """Print the signed preview link of the article at PATH, draft or scheduled.

    PATH is the article's address (/culture/slug/) or its file (content/culture/slug.md).
    """
    settings = current_app.extensions["feedsvc"].settings
    if not settings.preview_secret:
        raise click.ClickException(
            "previews are off: set FEEDSVC_PREVIEW_SECRET to a long random secret"
        )
    section, slug = article_of(path, settings.content_dir)
    if not (settings.content_dir / section / f"{slug}.md").is_file():
        raise click.ClickException(f"no article file {section}/{slug}.md in the content folder")
    click.echo(settings.absolute(preview_path(settings.preview_secret, section, slug)))


def article_of(path: str, content_dir: Path) -> tuple[str, str]:
    """Return (section, slug) for an article address or the path of its file."""
    if path.endswith(".md"):
        file = Path(os.path.abspath(path))
        parts = (file.parent.name, file.stem)
        if file.parent.parent != Path(os.path.abspath(content_dir)):
            raise click.BadParameter("the file is not in the content folder", param_hint="PATH")
    else:
        parts = tuple(part for part in urlsplit(path).path.split("/") if part)
        parts = parts[-2:] if len(parts) >= 2 else parts
    if len(parts) != 2 or not all(SLUG.match(part) for part in parts):
        raise click.BadParameter(
            "expected /section/slug/ or content/section/slug.md", param_hint="PATH"
        )
    return parts[0], parts[1]


def check_section_name(section: str) -> None:
    """Refuse a section the loader would refuse, before writing anything."""
    if not SLUG.match(section):
        raise click.BadParameter("a section name must match [a-z0-9-]+", param_hint="SECTION")
    if section in RESERVED_SLUGS:
        raise click.BadParameter(
            f"{section!r} is reserved for a fixed URL of the site", param_hint="SECTION"
        )


def write_new_file(path: Path, text: str) -> None:
    """Create `path` with `text`, and its section folder if needed; never replace a file."""
    try:
        path.parent.mkdir(exist_ok=True)
        file = path.open("x", encoding="utf-8")
    except FileExistsError as exc:
        message = f"{display_path(exc.filename)} already exists; left it unchanged"
        raise click.ClickException(message) from None
    except OSError as exc:
        raise click.ClickException(f"cannot write {path}: {exc.strerror}") from None
    with file:
        file.write(text)


def article_template(title: str, settings: Settings, now: datetime) -> str:
    """Return a new article's text: every front-matter field, filled in or ready to fill."""
    date = now.replace(microsecond=0).isoformat()
    author = _yaml_text(settings.site_author) if settings.site_author else ""
    return _TEMPLATE.format(title=_yaml_text(" ".join(title.split())), date=date, author=author)


def _yaml_text(value: str) -> str:
    """Quote text as one YAML scalar, whatever quotes, colons or odd characters it holds."""
    import yaml  # here: a serving worker, which imports this module, never writes YAML

    return yaml.safe_dump(value, allow_unicode=True, default_style='"', width=1 << 30).strip()


_TEMPLATE = """\
---
title: {title}
date: {date}
# updated: {date}
author: {author}
# One or two sentences shown under the headline and in feeds.
summary: ""
image:
  # src: /media/picture.jpg
  # alt: ""
  # credit: ""
tags: []
related:
  # - title: ""
  #   url: ""
# A stable identifier for feeds, kept even if the file is renamed; empty uses the URL.
id:
# Old addresses of this article, oldest first; each answers 301 to its address.
# aliases: [/culture/old-name/]
# false: on the site, but in no feed.
# feeds: false
# Removes the article: its page answers 410 Gone and Atom feeds announce the removal.
# A reason (never shown), a date, or both: {{reason: "", date: 2026-12-01T09:00:00Z}}
# takedown: ""
draft: true
---

Write the article here, in Markdown.
"""
