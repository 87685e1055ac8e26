"""A file state in the content index's stored form: pickled with its article's body by name.

The reader processes of a first start make this form where they parse, so the process
that records the index inserts those bytes as they are rather than pickling each state
again (at 100,000 files, seconds of its CPU before the first feed). The body's bytes go
to the index's table of bodies, apart.
"""

from __future__ import annotations

import io
import pickle

from .models import Body


class BodiesByName(pickle.Pickler):
    """A pickler writing each Body as its digest and file alone, never its bytes."""

    def reducer_override(self, obj: object):
        if type(obj) is Body:
            return (Body, (obj.digest, obj.path))
        return NotImplemented


def stored_form(state) -> bytes:
    """Return a file state pickled as the index keeps it: its body named, not held."""
    buffer = io.BytesIO()
    BodiesByName(buffer, pickle.HIGHEST_PROTOCOL).dump(state)
    return buffer.getvalue()
