"""What a pathological content file costs, and what guarding against it costs normal articles.

    python bench/pathological_bench.py [--articles 10000] [--repeats 5] [--site-articles 200]

1. Refresh: a store serving a site of --site-articles articles re-reads one file. For each
   file of the catalogue in tests/test_pathological.py, the CPU of that refresh (this process
   and the child that parses large files) is printed beside an edit of a normal article.
2. Check: `flask --app wsgi check` on that site plus one pathological file, its CPU (the
   command's process and its children) beside the same site without it.
3. Overhead: every file of the --articles corpus (bench/corpus.py, cached in
   /tmp/feedsvc-bench/<N>) parsed in this process, with the guards and without them (the
   guard functions replaced by no-ops), alternating, best of --repeats each; and load_site()
   as the server runs it (worker processes for large trees), median of --repeats.

Targets (issue #9): ≤ 2 s of CPU per pathological file in a refresh and in check; ≤ 10 %
parse overhead on 10,000 articles. Run on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from flask import Config  # noqa: E402
from test_pathological import NASTY, _file  # noqa: E402

from bench.harness import child_env, cpu_seconds, ensure_corpus, median  # noqa: E402
from feedsvc import loader, parsing  # noqa: E402
from feedsvc.loader import load_site, read_content_file, scan_tree  # noqa: E402
from feedsvc.parsing import ParseContext  # noqa: E402
from feedsvc.settings import Settings  # noqa: E402
from feedsvc.store import ContentStore  # noqa: E402

log = logging.getLogger("pathological_bench")


def write_site(root: Path, articles: int) -> None:
    """Write a small site of normal articles (the cost of one file does not depend on it)."""
    news = root / "news"
    news.mkdir(parents=True)
    body = "".join(f"Paragraph {i}, with *some* [links](/x/{i}/).\n\n" for i in range(30))
    for i in range(articles):
        (news / f"article-{i}.md").write_text(_file(body, title=f"Article {i}"))


def settings_for(root: Path) -> Settings:
    """Return the app's default settings (config.py) on the content folder `root`, unwatched."""
    config = Config(ROOT)
    config.from_pyfile(ROOT / "config.py")
    return Settings.from_config({**config, "CONTENT_DIR": str(root), "WATCH_CONTENT": False})


def refresh_costs(site_articles: int) -> list[tuple[str, float, str]]:
    """Return (file, CPU seconds of the refresh that reads it, what became of it)."""
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "content"
        write_site(root, site_articles)
        store = ContentStore(settings_for(root))
        store.refresh()
        cases = {"(normal article edit)": (_file("An edit.\n", title="Edited"), None)}
        cases.update(NASTY)
        for name, (text, _) in cases.items():
            rel = "news/article-0.md" if name.startswith("(") else f"news/{name}.md"
            (root / rel).write_text(text, encoding="utf-8")
            started = cpu_seconds()
            snapshot = store.refresh([rel])
            spent = cpu_seconds() - started
            problem = next((p for p in snapshot.site.problems if p.path.endswith(rel)), None)
            rows.append((name, spent, "published" if problem is None else "refused"))
            if not name.startswith("("):
                (root / rel).unlink()
                store.refresh([rel])
        store.close()
    return rows


def check_cpu(root: Path) -> float:
    """Return the CPU seconds of `flask --app wsgi check` on `root` (interpreter start included)."""
    env = child_env(FEEDSVC_CONTENT_DIR=str(root))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=600,
        check=False,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def check_costs(site_articles: int, names: list[str]) -> list[tuple[str, float]]:
    """Return (file, extra CPU seconds it adds to `check`), after the clean site's own cost."""
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "content"
        write_site(root, site_articles)
        clean = min(check_cpu(root) for _ in range(3))
        rows.append(("(clean site)", clean))
        for name in names:
            path = root / "news" / f"{name}.md"
            path.write_text(NASTY[name][0], encoding="utf-8")
            rows.append((name, check_cpu(root) - clean))
            path.unlink()
    return rows


@contextlib.contextmanager
def unguarded():
    """Replace every guard with a no-op: parsing as it was before the limits."""

    def nothing(*_args, **_kwargs):
        return None

    def direct(_path, _line, function, *args):
        return function(*args)

    def in_process(text, path, section, name, context):
        return loader._parse_text(text, path, section, name, context)

    with contextlib.ExitStack() as stack:
        for name in ("check_front_matter", "check_markdown", "check_body_html"):
            stack.enter_context(mock.patch.object(parsing, name, nothing))
        stack.enter_context(mock.patch.object(parsing, "contain_panic", direct))
        stack.enter_context(mock.patch.object(parsing, "date_text_problem", nothing))
        stack.enter_context(mock.patch.object(loader, "_parse", in_process))
        yield


def parse_all(root: Path, files: tuple[str, ...]) -> float:
    context = ParseContext(timezone=ZoneInfo("UTC"), default_author="Staff")
    started = time.process_time()
    for rel in files:
        read_content_file(root, rel, context, {})
    return time.process_time() - started


def overhead(articles: int, repeats: int) -> dict[str, float]:
    """Return parse CPU (in process) and load_site wall time, guarded and unguarded."""
    root = ensure_corpus(articles)
    files = scan_tree(root).files
    guarded, plain = [], []
    for _ in range(repeats):
        guarded.append(parse_all(root, files))
        with unguarded():
            plain.append(parse_all(root, files))
    load_guarded, load_plain = [], []
    settings = settings_for(root)
    for _ in range(repeats):
        started = time.perf_counter()
        load_site(settings)
        load_guarded.append(time.perf_counter() - started)
        with unguarded():
            started = time.perf_counter()
            load_site(settings)
            load_plain.append(time.perf_counter() - started)
    return {
        "files": len(files),
        "parse_guarded": min(guarded),
        "parse_plain": min(plain),
        "load_guarded": median(load_guarded),
        "load_plain": median(load_plain),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--site-articles", type=int, default=200)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    print(f"load average {os.getloadavg()[0]:.2f}; {shutil.which('flask') or sys.executable}")

    print("\n1. CPU of one refresh re-reading one file (s)")
    rows = refresh_costs(args.site_articles)
    for name, spent, outcome in rows:
        print(f"  {name:28} {spent:7.3f}  {outcome}")
    print(f"  worst pathological file: {max(s for n, s, _ in rows if not n.startswith('(')):.3f}")

    print(f"\n2. Extra CPU of `flask check` on {args.site_articles} articles + one file (s)")
    worst = sorted(rows[1:], key=lambda row: row[1], reverse=True)[:6]
    names = [name for name, _, _ in worst] + ["yaml-alias-bomb", "deep-blockquote", "deep-html"]
    check_rows = check_costs(args.site_articles, list(dict.fromkeys(names)))
    for name, spent in check_rows:
        print(f"  {name:28} {spent:7.3f}")

    print(f"\n3. Guards' cost on normal articles ({args.articles}-article corpus)")
    result = overhead(args.articles, args.repeats)
    parse_ratio = result["parse_guarded"] / result["parse_plain"] - 1
    load_ratio = result["load_guarded"] / result["load_plain"] - 1
    per_file = (result["parse_guarded"] - result["parse_plain"]) / result["files"] * 1e6
    print(
        f"  parse, one process: {result['parse_plain']:.2f} s → {result['parse_guarded']:.2f} s"
        f" ({parse_ratio:+.1%}, {per_file:+.0f} µs per file)"
    )
    print(
        f"  load_site():        {result['load_plain']:.2f} s → {result['load_guarded']:.2f} s"
        f" ({load_ratio:+.1%})"
    )
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
