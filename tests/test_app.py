"""The app factory: configuration layers, and the sample site shipped in content/."""

from __future__ import annotations

import feedparser
import pytest

from feedsvc import PROJECT_ROOT, create_app
from feedsvc.settings import SettingsError


def test_config_defaults_come_from_config_py(monkeypatch):
    for key in ("CONTENT_DIR", "SITE_URL", "FEED_ITEMS", "TIMEZONE", "LANGUAGE"):
        monkeypatch.delenv(f"FEEDSVC_{key}", raising=False)
    settings = create_app().extensions["feedsvc"].settings
    assert settings.content_dir == PROJECT_ROOT / "content"
    assert settings.site_url == "http://127.0.0.1:5000"
    assert (settings.feed_items, settings.feed_max_age, settings.language) == (50, 300, "en-US")


def test_environment_overrides_defaults_and_test_config_overrides_both(monkeypatch, content_dir):
    monkeypatch.setenv("FEEDSVC_CONTENT_DIR", str(content_dir))
    monkeypatch.setenv("FEEDSVC_SITE_TITLE", "From the Environment")
    monkeypatch.setenv("FEEDSVC_FEED_ITEMS", "7")
    monkeypatch.setenv("FEEDSVC_SITE_URL", "https://env.example.org/")
    settings = create_app({"SITE_URL": "https://test.example.org"}).extensions["feedsvc"].settings
    assert settings.site_title == "From the Environment"
    assert settings.feed_items == 7
    assert settings.site_url == "https://test.example.org"
    assert settings.content_dir == content_dir


def test_two_apps_never_see_each_other_content(tmp_path, write_article, make_app):
    write_article("culture", "only-here")
    (tmp_path / "other" / "science").mkdir(parents=True)
    first = make_app().test_client()
    second = make_app(CONTENT_DIR=str(tmp_path / "other")).test_client()
    assert first.get("/culture/only-here/").status_code == 200
    assert second.get("/culture/only-here/").status_code == 404
    assert second.get("/science.xml").status_code == 200


@pytest.mark.parametrize(
    ("config", "error"),
    [
        ({"TIMEZONE": "Mars/Olympus_Mons"}, SettingsError),
        ({"FEED_ITEMS": 0}, SettingsError),
        ({"FEED_ITEMS": "many"}, SettingsError),
    ],
)
def test_bad_configuration_fails_at_start(make_app, config, error):
    with pytest.raises(error):
        make_app(**config)


def test_shipped_sample_site_is_clean_and_every_feed_reads(monkeypatch, tmp_path):
    monkeypatch.delenv("FEEDSVC_CONTENT_DIR", raising=False)
    # A state folder of its own: no other test's (or run's) publisher to follow.
    app = create_app({"TESTING": True, "STATE_DIR": str(tmp_path), "WATCH_CONTENT": False})
    client = app.test_client()
    health = client.get("/healthz").get_json()
    assert health["problems"] == []
    assert health["sections"] >= 3 and health["articles"] >= 12
    for section in ["feed", *app.extensions["feedsvc"].site.sections]:
        for extension in ("xml", "atom"):
            parsed = feedparser.parse(client.get(f"/{section}.{extension}").data)
            assert parsed.bozo == 0
            assert parsed.entries
