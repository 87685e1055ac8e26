"""The production app with its first publication's recording held until a file exists.

`granian ... tests.held_record_wsgi:app` with HELD_RECORD=<path>: the publisher serves its
live snapshot, then writes <path>.started and holds the index write of that publication
until the test creates <path>, so a stop can be sent while a publication is being recorded.
"""

import os
import time
from pathlib import Path

from feedsvc.index import ContentIndex
from wsgi import app

GATE = Path(os.environ["HELD_RECORD"])
_save = ContentIndex.save


def _held_save(self, changed, removed, sizes, publish=None):
    """Hold a publication's write at the gate, then write it as usual."""
    if publish is not None:
        GATE.with_suffix(".started").touch()
        while not GATE.exists():
            time.sleep(0.02)
    return _save(self, changed, removed, sizes, publish)


ContentIndex.save = _held_save

__all__ = ["app"]
