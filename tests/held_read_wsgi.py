"""The production app making a first look on any tree, its full read held until a file exists.

`granian ... tests.held_read_wsgi:app` with HELD_FULL_READ=<path>: a first start answers
from a first look (however few files) and never takes up the full read behind it until the
test creates <path>, so that read's temporary folder is there for as long as the test needs.
"""

import os
import time

from feedsvc import firstlook, loader
from wsgi import app

GATE = os.environ["HELD_FULL_READ"]
firstlook.FIRST_LOOK_MIN_FILES = 1
_result = loader.BackgroundRead.result


def _held_result(self):
    """Wait for the gate, then take the full read up as usual."""
    while not os.path.exists(GATE):
        time.sleep(0.02)
    return _result(self)


loader.BackgroundRead.result = _held_result

__all__ = ["app"]
