"""Media files under /media/: real files served exactly, odd paths refused; and /healthz."""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest

SECRET_IN_CONTENT = b"SECRET-IN-CONTENT-DIR"
SECRET_IN_PARENT = b"SECRET-IN-PARENT-DIR"
TEXT_BYTES = "Caf\u00e9 notes\nline two\n".encode()


def tiny_png() -> bytes:
    """Return the bytes of a valid 1x1 grey PNG image."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    header = (1).to_bytes(4, "big") * 2 + bytes([8, 0, 0, 0, 0])
    pixels = zlib.compress(b"\x00\x80")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


PNG_BYTES = tiny_png()


@pytest.fixture
def media_client(content_dir: Path, write_article, make_app):
    """A client on a content folder with media files and secrets around it."""
    write_article("culture", "story")
    media = content_dir / "media"
    (media / "2026").mkdir(parents=True)
    (media / "dot.png").write_bytes(PNG_BYTES)
    (media / "2026" / "x.txt").write_bytes(TEXT_BYTES)
    (content_dir / "secret.txt").write_bytes(SECRET_IN_CONTENT)
    (content_dir.parent / "secret.txt").write_bytes(SECRET_IN_PARENT)
    return make_app().test_client()


# Real files


@pytest.mark.parametrize(
    ("path", "mimetype", "data"),
    [
        ("/media/dot.png", "image/png", PNG_BYTES),
        ("/media/2026/x.txt", "text/plain", TEXT_BYTES),
    ],
    ids=["png", "nested-text"],
)
def test_media_file_is_served_with_type_and_exact_bytes(media_client, path, mimetype, data):
    with media_client.get(path) as response:
        assert response.status_code == 200
        assert response.mimetype == mimetype
        assert response.data == data
        assert int(response.headers["Content-Length"]) == len(data)


def test_head_on_media_file_has_headers_and_no_body(media_client):
    with media_client.head("/media/dot.png") as response:
        assert response.status_code == 200
        assert response.mimetype == "image/png"
        assert response.data == b""


@pytest.mark.parametrize("path", ["/media/missing.png", "/media/2026/", "/media/2026/missing.txt"])
def test_missing_media_is_404(media_client, path):
    assert media_client.get(path).status_code == 404


def test_media_without_folder_is_404(make_app):
    assert make_app().test_client().get("/media/dot.png").status_code == 404


# Odd paths

ODD_PATHS = [
    "/media/../secret.txt",
    "/media/../../secret.txt",
    "/media/2026/../../secret.txt",
    "/media/2026/../../../secret.txt",
    "/media/./../secret.txt",
    "/media/..",
    "/media/%2e%2e/secret.txt",
    "/media/%2e%2e%2fsecret.txt",
    "/media/%2e%2e%2f%2e%2e%2fsecret.txt",
    "/media/..%2fsecret.txt",
    "/media/..%2f..%2fsecret.txt",
    "/media/2026%2f..%2f..%2fsecret.txt",
    "/media/%252e%252e%252fsecret.txt",
    "/media/dot.png%00",
    "/media/%00",
    "/media/2026/x.txt%00.png",
    "/media/..%00/secret.txt",
    "/media/..\\secret.txt",
    "/media/..%5csecret.txt",
    "/media/..%5c..%5csecret.txt",
    "/media/2026\\..\\..\\secret.txt",
    "/media/C:%5cwindows%5cwin.ini",
    "/media/" + "a" * 300,
    "/media/" + "a" * 5000,
    "/media/2026/" + "b" * 300 + ".txt",
    "/media/" + "a/" * 2500 + "x.txt",
    "/media/" + "../" * 100 + "secret.txt",
    "/media//etc/passwd",
    "/media/%2Fetc%2Fpasswd",
]


def short_id(path: str) -> str:
    """Name a test case by its path, shortening very long ones."""
    return path if len(path) <= 60 else f"{path[:30]}...({len(path)}-chars)"


@pytest.mark.parametrize("path", ODD_PATHS, ids=short_id)
def test_odd_media_path_answers_404_or_400(media_client, path):
    assert media_client.get(path).status_code in (400, 404)


@pytest.mark.parametrize("path", ODD_PATHS, ids=short_id)
def test_odd_media_path_never_serves_a_secret(media_client, path):
    response = media_client.get(path, follow_redirects=True)
    assert response.status_code not in (200, 500)
    assert SECRET_IN_CONTENT not in response.data
    assert SECRET_IN_PARENT not in response.data


@pytest.mark.parametrize("target", ["content", "parent"])
def test_absolute_path_to_secret_is_refused(media_client, content_dir, target):
    secret = (
        content_dir / "secret.txt" if target == "content" else content_dir.parent / "secret.txt"
    )
    response = media_client.get("/media/" + str(secret), follow_redirects=True)
    assert response.status_code in (400, 404)
    assert SECRET_IN_CONTENT not in response.data
    assert SECRET_IN_PARENT not in response.data


def test_symlink_in_media_to_outside_is_not_served(content_dir, make_app):
    media = content_dir / "media"
    media.mkdir()
    (content_dir.parent / "secret.txt").write_bytes(SECRET_IN_PARENT)
    (media / "link.txt").symlink_to(content_dir.parent / "secret.txt")
    with make_app().test_client().get("/media/link.txt") as response:
        assert response.status_code == 404
        assert SECRET_IN_PARENT not in response.data


def test_odd_path_answer_is_the_html_error_page(media_client):
    response = media_client.get("/media/../secret.txt")
    assert response.mimetype == "text/html"
    assert b"Traceback" not in response.data


# Health


def test_healthz_reports_counts_version_and_no_problems(write_article, write_section, make_app):
    write_section("culture", "Culture")
    write_article("culture", "one")
    write_article("culture", "two")
    write_article("science", "three")
    write_article("science", "draft", draft=True)
    response = make_app().test_client().get("/healthz")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    data = response.get_json()
    assert data["status"] == "ok"
    assert data["sections"] == 2
    assert data["articles"] == 3
    assert isinstance(data["version"], str) and data["version"]
    assert data["problems"] == []


def test_healthz_lists_a_broken_file(content_dir, write_article, make_app):
    write_article("culture", "good")
    broken = content_dir / "culture" / "broken.md"
    broken.write_text("---\ndate: 2026-03-01\n---\nNo title.\n", encoding="utf-8")
    data = make_app().test_client().get("/healthz").get_json()
    assert data["status"] == "degraded"  # still serving, with a problem
    assert data["articles"] == 1
    (problem,) = data["problems"]
    assert problem["path"] == str(broken)
    assert "title" in problem["reason"]
    assert set(problem) >= {"path", "line", "reason"}


def test_healthz_version_changes_with_content(content_dir, write_article, make_app):
    write_article("culture", "one")
    before = make_app().test_client().get("/healthz").get_json()["version"]
    write_article("culture", "one", title="A new headline")
    after = make_app().test_client().get("/healthz").get_json()["version"]
    assert before != after
