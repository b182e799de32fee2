"""Imported only by the trial forkserver (``child._PRELOAD``), never by the tune process itself.

When Ctrl-C stops ``uboost tune`` while a trial process is being started, the forkserver may
already have forked the child, which then finds its parent's pipe closed before the trial was
sent and dies with ``EOFError`` in :mod:`multiprocessing`'s start-up code; the forkserver prints
that through ``sys.excepthook`` as a traceback on the terminal of a command that was stopped on
purpose. In the forkserver (and so in every child it forks) that one case exits silently; every
other start-up failure is reported as before.
"""

from __future__ import annotations

import sys

_default = sys.excepthook


def _hook(exc_type, exc, tb) -> None:
    if issubclass(exc_type, EOFError):  # the tune process stopped before it sent the trial: nothing to report
        return
    _default(exc_type, exc, tb)


sys.excepthook = _hook
