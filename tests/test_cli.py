"""The admin commands: `flask check` reports the content tree, `flask new` starts an article."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import yaml

from feedsvc import PROJECT_ROOT, cli, slugs
from feedsvc.loader import load_site
from feedsvc.markup import repair_windows_1252
from feedsvc.parsing import KNOWN_FIELDS, ParseContext, parse_article
from tests.conftest import article_text

NEW_TITLE = "Café: the “best” one!"


@pytest.fixture
def runner(make_app):
    """A CLI runner of an app built on the test's content folder."""
    return lambda **config: make_app(**config).test_cli_runner()


@pytest.fixture
def broken_tree(content_dir, write_article):
    """Write one good article and three broken ones; return the broken files' paths."""
    write_article("culture", "fine")
    folder = content_dir / "culture"
    bad_yaml = folder / "bad-yaml.md"
    bad_yaml.write_text("---\ntitle: Fine\ndate: 2026-03-01\ntags: [open\n---\nBody.\n")
    no_title = folder / "no-title.md"
    no_title.write_text(article_text(date="2026-03-01T09:00:00Z"), encoding="utf-8")
    bad_slug = folder / "Bad_Slug.md"
    bad_slug.write_text(article_text(title="T", date="2026-03-01"), encoding="utf-8")
    return bad_yaml, no_title, bad_slug


def test_check_clean_tree_exits_zero_with_summary(runner, write_article, write_section):
    write_section("culture", "Culture")
    write_article("culture", "first")
    write_article("science", "second")
    result = runner().invoke(args=["check"])
    assert result.exit_code == 0
    assert result.stdout == "checked 3 files: no problems\n"


def test_check_reports_each_problem_with_path_line_and_reason(runner, broken_tree):
    bad_yaml, no_title, bad_slug = broken_tree
    result = runner().invoke(args=["check"])
    assert result.exit_code == 1
    *problems, summary = result.stdout.splitlines()
    assert summary == "checked 4 files: 3 problems"
    assert len(problems) == 3
    # The YAML error's wording comes from libyaml; its place is feedsvc's.
    yaml_problem = f"{bad_yaml}:5: front matter is not valid YAML: "
    assert any(p.startswith(yaml_problem) and "]" in p for p in problems)
    assert f"{no_title}:1: missing required field 'title'" in problems
    assert f"{bad_slug}: article slug 'Bad_Slug' must match [a-z0-9-]+" in problems


def test_check_shows_paths_relative_to_the_working_directory(
    runner, broken_tree, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    result = runner().invoke(args=["check"])
    assert f"content{os.sep}culture{os.sep}no-title.md:1: missing" in result.stdout
    assert str(tmp_path) not in result.stdout


def test_check_json_lists_counts_and_problems(runner, broken_tree, write_section):
    write_section("culture", "Culture")
    result = runner().invoke(args=["check", "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert (report["files"], report["sections"], report["articles"]) == (5, 1, 1)
    found = {p["path"]: (p["line"], p["reason"]) for p in report["problems"]}
    bad_yaml, no_title, bad_slug = (str(path) for path in broken_tree)
    assert set(found) == {bad_yaml, no_title, bad_slug}
    assert found[no_title] == (1, "missing required field 'title'")
    assert found[bad_slug][0] is None
    assert found[bad_yaml][0] == 5


def test_check_json_of_clean_tree_exits_zero(runner, write_article):
    write_article("culture", "first")
    result = runner().invoke(args=["check", "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"files": 1, "sections": 1, "articles": 1, "problems": []}


def test_check_reads_the_tree_as_it_is_now_not_as_the_app_loaded_it(
    make_app, write_article, content_dir
):
    app = make_app()
    write_article("culture", "written-later")
    (content_dir / "culture" / "broken-later.md").write_text("no front matter\n")
    result = app.test_cli_runner().invoke(args=["check", "--json"])
    report = json.loads(result.stdout)
    assert (report["files"], report["articles"], len(report["problems"])) == (2, 1, 1)


def test_check_reports_a_missing_content_folder(runner, tmp_path):
    result = runner(CONTENT_DIR=str(tmp_path / "nowhere")).invoke(args=["check"])
    assert result.exit_code == 1
    assert f"{tmp_path / 'nowhere'}: content folder does not exist" in result.stdout


def test_check_shows_no_progress_bar_when_not_on_a_terminal(runner, write_article, monkeypatch):
    monkeypatch.setattr(cli, "PROGRESS_MIN_FILES", 1)
    write_article("culture", "first")
    result = runner().invoke(args=["check"])
    assert result.stderr == ""


def test_check_progress_bar_goes_to_stderr_for_large_trees(runner, write_article, monkeypatch):
    monkeypatch.setattr(cli, "PROGRESS_MIN_FILES", 2)
    monkeypatch.setattr(cli, "stderr_is_terminal", lambda: True)
    write_article("culture", "first")
    small = runner().invoke(args=["check", "--json"])
    write_article("culture", "second")
    large = runner().invoke(args=["check", "--json"])
    assert small.stderr == ""
    assert "checking content" in large.stderr
    assert json.loads(large.stdout)["files"] == 2


def test_count_content_files_counts_markdown_in_sections(content_dir, write_article, write_media):
    write_article("culture", "one")
    write_article("science", "two")
    write_media("picture.png", b"png")
    assert cli.count_content_files(content_dir) == 2


def new_file_front_matter(path) -> tuple[dict, str]:
    """Return a written file's front matter as parsed YAML, and the raw text."""
    text = path.read_text(encoding="utf-8")
    return yaml.safe_load(text.split("---\n")[1]), text


def test_new_writes_a_draft_with_every_field(runner, content_dir):
    (content_dir / "culture").mkdir()
    before = datetime.now(ZoneInfo("Asia/Kolkata")).replace(microsecond=0)
    result = runner(TIMEZONE="Asia/Kolkata").invoke(args=["new", "culture", NEW_TITLE])
    after = datetime.now(ZoneInfo("Asia/Kolkata"))
    path = content_dir / "culture" / "cafe-the-best-one.md"
    assert result.exit_code == 0
    assert str(path) in result.stdout
    assert "draft" in result.stdout
    fields, text = new_file_front_matter(path)
    for name in KNOWN_FIELDS | {"src", "alt", "credit", "url"}:
        assert re.search(rf"^[#\s-]*{name}:", text, re.MULTILINE), name
    assert fields["title"] == NEW_TITLE
    assert fields["author"] == "Gazette Staff"
    assert fields["draft"] is True
    assert before <= fields["date"] <= after
    assert fields["date"].utcoffset() == timedelta(hours=5, minutes=30)


def test_new_file_is_a_draft_that_loads_once_draft_is_removed(runner, make_app, content_dir):
    (content_dir / "culture").mkdir()
    runner().invoke(args=["new", "culture", NEW_TITLE])
    settings = make_app().extensions["feedsvc"].settings
    site = load_site(settings)
    assert (site.articles, site.problems) == ((), ())
    path = content_dir / "culture" / "cafe-the-best-one.md"
    path.write_text(path.read_text().replace("draft: true", "draft: false"))
    site = load_site(settings)
    assert site.problems == ()
    [article] = site.articles
    assert (article.section, article.slug, article.title) == (
        "culture",
        "cafe-the-best-one",
        NEW_TITLE,
    )
    assert article.authors == ("Gazette Staff",)
    assert (article.image, article.tags, article.related, article.explicit_id) == (
        None,
        (),
        (),
        None,
    )


@pytest.mark.parametrize(
    "title",
    [
        'He said "no": then left',
        "Key: value # not a comment",
        "- looks like a list item",
        "yes",
        "null",
        "2026",
        "'single' and \\ backslash",
        "{braces} & [brackets] * ! % @ `tick`",
        "odd\u2028line\x85breaks and \x80 controls",
    ],
)
def test_new_quotes_awkward_titles_as_valid_yaml(runner, content_dir, title):
    (content_dir / "culture").mkdir()
    result = runner().invoke(args=["new", "culture", "--", title])
    assert result.exit_code == 0
    [path] = (content_dir / "culture").iterdir()
    text = path.read_text(encoding="utf-8").replace("draft: true", "draft: false")
    context = ParseContext(ZoneInfo("UTC"), "Staff")
    article = parse_article(text, str(path), "culture", path.stem, context)
    # C1 controls are read as the Windows-1252 characters they stand for (\x80 is €).
    assert article.title == repair_windows_1252(" ".join(title.split()))


@pytest.mark.parametrize(
    ("title", "slug"),
    [
        (NEW_TITLE, "cafe-the-best-one"),
        ("Don't Stop — Won’t Stop", "dont-stop-wont-stop"),
        ("Straße über Łódź, Ærø", "strasse-uber-lodz-aero"),
        ("  --Hello,   World--  ", "hello-world"),
        ("2026: A Year in Review", "2026-a-year-in-review"),
        ("ﬁnal Ｔｅｓｔ", "final-test"),
    ],
)
def test_slugify_folds_accents_and_joins_words_with_hyphens(title, slug):
    assert slugs.slugify(title) == slug


def test_slugify_cuts_long_titles_at_a_word_boundary():
    slug = slugs.slugify("word " * 40)
    assert len(slug) <= slugs.MAX_SLUG_LENGTH
    assert slug == "-".join(["word"] * 16)
    assert slugs.slugify("x" * 200) == "x" * slugs.MAX_SLUG_LENGTH


@pytest.mark.parametrize("title", ["!!!", "“”", "日本語", " "])
def test_new_refuses_a_title_without_letters_or_digits(runner, content_dir, title):
    result = runner().invoke(args=["new", "culture", title])
    assert result.exit_code == 2
    assert "no letters or digits" in result.stderr
    assert list(content_dir.iterdir()) == []


def test_new_refuses_to_overwrite_an_existing_file(runner, write_article):
    path = write_article("culture", "cafe-the-best-one", title="Original")
    original = path.read_bytes()
    result = runner().invoke(args=["new", "culture", NEW_TITLE])
    assert result.exit_code == 1
    assert "already exists" in result.stderr
    assert str(path) in result.stderr
    assert path.read_bytes() == original


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("Culture", "must match [a-z0-9-]+"),
        ("cul ture", "must match [a-z0-9-]+"),
        ("../outside", "must match [a-z0-9-]+"),
        ("", "must match [a-z0-9-]+"),
        ("feed", "reserved"),
        ("media", "reserved"),
        ("healthz", "reserved"),
    ],
)
def test_new_refuses_a_bad_or_reserved_section(runner, tmp_path, content_dir, section, message):
    result = runner().invoke(args=["new", section, "A Title"])
    assert result.exit_code == 2
    assert message in result.stderr
    assert list(content_dir.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["content"]


def test_new_refuses_when_the_content_folder_is_missing(runner, tmp_path):
    missing = tmp_path / "nowhere"
    result = runner(CONTENT_DIR=str(missing)).invoke(args=["new", "culture", "A Title"])
    assert result.exit_code == 1
    assert "does not exist" in result.stderr
    assert not missing.exists()


def run_flask(*args: str, content_dir) -> subprocess.CompletedProcess:
    """Run `flask --app wsgi ...` from the project root as an admin would."""
    env = {**os.environ, "FEEDSVC_CONTENT_DIR": str(content_dir)}
    command = [sys.executable, "-m", "flask", "--app", "wsgi", *args]
    return subprocess.run(
        command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def test_check_from_the_real_command_line(content_dir, broken_tree):
    bad_yaml, no_title, _ = broken_tree
    text = run_flask("check", content_dir=content_dir)
    assert text.returncode == 1
    assert f"{no_title}:1: missing required field 'title'" in text.stdout.splitlines()
    assert text.stdout.endswith("checked 4 files: 3 problems\n")
    as_json = run_flask("check", "--json", content_dir=content_dir)
    assert as_json.returncode == 1
    assert len(json.loads(as_json.stdout)["problems"]) == 3
    no_title.unlink()
    bad_yaml.unlink()
    broken_tree[2].unlink()
    clean = run_flask("check", content_dir=content_dir)
    assert (clean.returncode, clean.stdout) == (0, "checked 1 file: no problems\n")
