"""A file state in the content index's stored form: pickled with its article's body by name.

The reader processes of a first start make this form where they parse, so the process
that records the index inserts those bytes as they are and unpickles each state once,
rather than pickling it again (at 100,000 files, seconds of the CPU before the first
feed). The body's bytes travel beside the state, to the index's table of bodies.
"""

from __future__ import annotations

import io
import pickle

from .models import Article, Body


class BodiesByName(pickle.Pickler):
    """A pickler writing each Body as its digest and file alone, never its bytes."""

    def reducer_override(self, obj: object):
        if type(obj) is Body:
            return (Body, (obj.digest, obj.path))
        return NotImplemented


def stored_form(state) -> tuple[bytes, bytes | None]:
    """Return a file state pickled as the index keeps it, and its body's packed bytes.

    The bytes are None where the state has no body held in memory (no article, or one
    whose body the index holds already).
    """
    buffer = io.BytesIO()
    BodiesByName(buffer, pickle.HIGHEST_PROTOCOL).dump(state)
    article = state.result
    packed = article.body.packed if isinstance(article, Article) else None
    return buffer.getvalue(), packed


def load_stored_form(blob: bytes, packed: bytes | None, state_class: type):
    """Return the state of a stored form as `state_class`, its body holding `packed`."""
    return _Unpickler(blob, packed, state_class).load()


class _Unpickler(pickle.Unpickler):
    """Unpickles one stored form: its file state as a given class, its body in memory."""

    def __init__(self, blob: bytes, packed: bytes | None, state_class: type):
        super().__init__(io.BytesIO(blob))
        self._packed = packed
        self._state_class = state_class

    def find_class(self, module: str, name: str):
        if module == Body.__module__ and name == "Body" and self._packed is not None:
            return self._body
        if module == self._state_class.__module__ and name == "FileState":
            return self._state_class
        return super().find_class(module, name)

    def _body(self, digest: bytes, path: str) -> Body:
        return Body(digest, path, self._packed)
