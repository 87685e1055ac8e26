"""The production app with its site assembly held until a file exists: a test's gate.

`granian ... tests.gated_wsgi:app` with GATED_ASSEMBLY=<path>: no process
assembles the site (the live snapshot stays unmade) until the test creates <path>, so
what is served before proves what a process answers without it.
"""

import os
import time

from feedsvc import assembly
from wsgi import app

GATE = os.environ["GATED_ASSEMBLY"]
_assemble = assembly.SiteAssembler.assemble


def _gated_assemble(self, *args, **kwargs):
    """Wait for the gate, then assemble as usual."""
    while not os.path.exists(GATE):
        time.sleep(0.02)
    return _assemble(self, *args, **kwargs)


assembly.SiteAssembler.assemble = _gated_assemble

__all__ = ["app"]
