"""A worker that follows loads none of the publisher's libraries: it parses and renders nothing.

feedgen and lxml render feeds, YAML and the Markdown renderer read files, nh3 cleans
HTML, Pillow reads images, watchdog watches the folder: the publisher's work. A follower
answers the publisher's feeds from the index and asks it for the rest, so none of them
need take room in its memory.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from feedsvc import PROJECT_ROOT
from tests.conftest import app_config, free_port, wait_until
from tests.test_follower_memory import SITE_ONLY, SUBSCRIPTIONS, roles, write_two_sections
from tests.test_publisher import granian

PUBLISHING_LIBRARIES = {"feedgen", "lxml", "yaml", "markdown_it_pyrs", "nh3", "PIL", "watchdog"}
# Their native code, as /proc/<pid>/maps names the shared objects a process has loaded.
NATIVE = re.compile(r"/(lxml/etree|yaml/_yaml|markdown_it_pyrs/|nh3/|PIL/_imaging)[^/\n]*\.so")

# A second process on the same content and state folder: it follows the test's publisher.
FOLLOWER = """
import json, sys
from feedsvc import create_app

app = create_app(json.loads(sys.argv[1]))
client = app.test_client()
answers = {}
for path in json.loads(sys.argv[2]):
    for coding in ("gzip", "br", ""):
        response = client.get(path, headers={"Accept-Encoding": coding})
        answers[f"{path} {coding}"] = [response.status_code, response.headers.get("ETag")]
role = client.get("/healthz").get_json()["publishing"]
loaded = sorted({name.split(".")[0] for name in sys.modules})
app.extensions["feedsvc"].close()
print(json.dumps({"answers": answers, "role": role, "loaded": loaded}))
"""


def test_a_following_process_answers_everything_without_the_publishing_libraries(
    write_article, backdate, content_dir, make_app
):
    write_two_sections(write_article, backdate)
    config = app_config(content_dir, WATCH_CONTENT=True)  # the child's: the same settings
    publisher = make_app(WATCH_CONTENT=True).test_client()
    paths = SUBSCRIPTIONS + SITE_ONLY
    expected = {}
    for path in paths:
        for coding in ("gzip", "br", ""):
            response = publisher.get(path, headers={"Accept-Encoding": coding})
            expected[f"{path} {coding}"] = [response.status_code, response.headers.get("ETag")]

    done = subprocess.run(
        [sys.executable, "-c", FOLLOWER, json.dumps(config), json.dumps(paths)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    follower = json.loads(done.stdout)
    assert (follower["role"]["role"], follower["role"]["serving"]) == ("follower", "index")
    assert follower["answers"] == expected
    assert PUBLISHING_LIBRARIES.isdisjoint(follower["loaded"])


def test_a_following_worker_maps_none_of_their_native_code(
    write_article, backdate, content_dir, tmp_path
):
    write_two_sections(write_article, backdate)
    state, log = tmp_path / "state", tmp_path / "server.log"
    with granian(free_port(), content_dir, state, log, WATCH_CONTENT="true") as (port, _):
        wait_until(lambda: len(roles(port)) == 2, "both workers answering")
        by_role = {role: pid for pid, (role, _) in roles(port).items()}
        native = {
            role: set(NATIVE.findall(Path(f"/proc/{pid}/maps").read_text()))
            for role, pid in by_role.items()
        }
    assert native["follower"] == set()
    assert "lxml/etree" in native["publisher"]  # it rendered the feeds of this first start
