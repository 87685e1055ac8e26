"""Run one parse in a child process that can crash, overrun or be stopped on its own.

Files beyond the size of any normal article are parsed here: if the native Markdown or YAML
code crashes, or a parse runs past its CPU, time or memory budget, the child dies and the
file gets a ContentError, while the serving process and every other file carry on.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import pickle
import resource
import select
import signal
import time
from collections.abc import Callable

from .limits import ISOLATE_CPU_SECONDS, ISOLATE_MEMORY_BYTES, ISOLATE_WALL_SECONDS
from .models import ContentError

log = logging.getLogger(__name__)


def run_isolated(function: Callable, *args, path: str):
    """Return function(*args) computed in a forked child; ContentError if the child fails."""
    read_end, write_end = os.pipe()
    try:
        pid = os.fork()
    except OSError as exc:  # out of processes or memory for now: the checks still hold
        os.close(read_end)
        os.close(write_end)
        log.warning("parsing %s in this process: cannot start a child (%s)", path, exc)
        return function(*args)
    if pid == 0:  # the child: compute, send, exit without running the parent's cleanups
        os.close(read_end)
        _child(function, args, path, write_end)
    os.close(write_end)
    data = None
    try:
        data = _read_all(read_end, time.monotonic() + ISOLATE_WALL_SECONDS)
    finally:
        os.close(read_end)
        if data is None:  # overran, or this thread was interrupted: stop the child
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    if data is None:
        reason = f"parsing took longer than {ISOLATE_WALL_SECONDS:g} s; file skipped"
        raise ContentError(path, None, reason)
    try:
        ok, value = pickle.loads(data)
    except Exception:  # nothing sent, or cut short by a crash
        raise ContentError(path, None, _failure(status)) from None
    if not ok:
        raise value
    return value


def _child(function: Callable, args: tuple, path: str, write_end: int) -> None:
    """Compute in the child under its budget and write the pickled outcome; never return."""
    code = 0
    try:
        faulthandler.disable()  # a crash is reported by the parent, as this file's problem
        _limit(resource.RLIMIT_CPU, ISOLATE_CPU_SECONDS)
        _limit(resource.RLIMIT_AS, _address_space() + ISOLATE_MEMORY_BYTES)
        try:
            outcome = (True, function(*args))
        except ContentError as error:
            outcome = (False, error)
        except MemoryError:
            outcome = (False, ContentError(path, None, _memory_reason()))
        data = pickle.dumps(outcome, pickle.HIGHEST_PROTOCOL)
        with os.fdopen(write_end, "wb") as pipe:
            pipe.write(data)
    except BaseException:  # anything else: the parent reports the failure by exit status
        code = 70
    finally:
        os._exit(code)


def _limit(kind: int, value: int) -> None:
    _soft, hard = resource.getrlimit(kind)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(kind, (value, hard))


def _address_space() -> int:
    """Return this process's virtual size, which a forked child starts with."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[0]) * resource.getpagesize()


def _read_all(fd: int, deadline: float) -> bytes | None:
    """Read until the child closes its end; None when the deadline passes first."""
    chunks = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            return None
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _failure(status: int) -> str:
    """Say why a child that sent nothing ended."""
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        if number == signal.SIGXCPU:
            return f"parsing took more than {ISOLATE_CPU_SECONDS} s of CPU; file skipped"
        name = signal.Signals(number).name
        return f"the parser crashed on this file ({name}); file skipped"
    return "the parser failed on this file; file skipped"


def _memory_reason() -> str:
    return f"parsing needs more than {ISOLATE_MEMORY_BYTES // 2**20} MB of memory; file skipped"
