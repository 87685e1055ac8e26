"""Run the shipped Varnish recipe (deploy/varnish.vcl) as it is, in front of a test origin.

Used by tests/test_cdn.py and bench/cdn_bench.py; only the origin's port is changed.
"""

from __future__ import annotations

import glob
import http.client
import os
import shutil
import subprocess
import time
from pathlib import Path

from feedsvc import PROJECT_ROOT

VARNISHD = shutil.which("varnishd") or "/usr/sbin/varnishd"
VARNISHNCSA = shutil.which("varnishncsa") or "/usr/bin/varnishncsa"
RECIPE = PROJECT_ROOT / "deploy" / "varnish.vcl"
SHIPPED_ORIGIN = '.port = "8000";'


def missing() -> str:
    """Say what is missing to run the recipe here, or return "" when nothing is."""
    if not os.access(VARNISHD, os.X_OK):
        return "varnishd is not installed (apt-get install varnish; .ci/run installs it)"
    if not glob.glob("/usr/lib/*/varnish/vmods/libvmod_xkey.so"):
        return "the xkey vmod is not installed (apt-get install varnish-modules; .ci/run does)"
    return ""


def recipe(origin_port: int) -> str:
    """Return deploy/varnish.vcl with the origin's port changed, and nothing else."""
    text = RECIPE.read_text()
    assert text.count(SHIPPED_ORIGIN) == 1, f"{RECIPE} no longer names its origin port once"
    return text.replace(SHIPPED_ORIGIN, f'.port = "{origin_port}";')


def varnishd_argv(work: Path, port: int, origin_port: int) -> list[str]:
    """Write the recipe into `work` and return the command running it on 127.0.0.1:port.

    The README's flags, plus: foreground (-F), its own instance folder (-n), and no
    privilege separation (-j none: the varnish user could not read a test's folders).
    """
    vcl = work / "varnish.vcl"
    vcl.write_text(recipe(origin_port))
    return [
        VARNISHD,
        "-F",
        "-j",
        "none",
        "-n",
        str(work / "instance"),
        "-a",
        f"127.0.0.1:{port}",
        "-f",
        str(vcl),
        "-s",
        "malloc,64m",
        "-p",
        "http_gzip_support=off",
    ]


def wait_for_varnish(port: int, process: subprocess.Popen, log_path: Path, timeout: float = 60):
    """Wait until varnishd answers on `port` (it compiles the VCL first)."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"varnishd exited:\n{log_path.read_text(errors='replace')}")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            connection.request("PURGE", "/varnish-started")
            connection.getresponse().read()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError("varnishd did not start") from None
            time.sleep(0.1)
        finally:
            connection.close()
