"""Cooperative cancellation: the pipeline requests it on Ctrl-C, long loops in worker threads (training) check
it and stop with KeyboardInterrupt, so an interrupted run ends at once instead of finishing a step no one waits
for. External tools are stopped separately (`insitu.toolexec.stop_all_tools`)."""

from __future__ import annotations

import threading

_REQUESTED = threading.Event()


def request() -> None:
    _REQUESTED.set()


def clear() -> None:
    _REQUESTED.clear()


def check() -> None:
    """Raise KeyboardInterrupt if cancellation was requested."""
    if _REQUESTED.is_set():
        raise KeyboardInterrupt("cancelled")
