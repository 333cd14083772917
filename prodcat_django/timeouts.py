"""A deadline for one step of the worker (decoding and a forward pass), by ``SIGALRM``.

Celery's own soft time limit covers a whole task; this one covers a single forward pass, so
the worker can tell which products hung and still finish the rest of the task. It interrupts
Python code only: a hang inside C code that never returns to the interpreter is ended by the
task's hard time limit (the pool kills the process), which the crash accounting of
:mod:`prodcat_django.services.runs` then handles.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from prodcat_django.conf import prodcat_settings


class StepTimeout(Exception):
    """The step ran past its deadline."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"took longer than {seconds:g} s")
        self.seconds = seconds


def deadlines_supported() -> bool:
    """Only the main thread of a POSIX process can take ``SIGALRM`` (a prefork child can)."""
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Raise :class:`StepTimeout` in the block once ``seconds`` passed; a no-op where
    ``seconds <= 0`` or the platform/thread cannot take the signal."""
    if seconds <= 0 or not deadlines_supported():
        yield
        return

    def expire(signum: int, frame: FrameType | None) -> None:
        raise StepTimeout(seconds)

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def pass_time_limit(n: int) -> float:
    """Seconds one forward pass (decoding included) of ``n`` products may take."""
    return float(prodcat_settings.TIME_LIMIT_PER_PRODUCT) * (n + 2)


def task_time_limits(n: int) -> tuple[float, float]:
    """Celery (soft, hard) time limits of a task of ``n`` suggestions: room to load the model,
    run every pass and retry a hung one product by product."""
    soft = float(prodcat_settings.TIME_LIMIT_BASE) + 2 * pass_time_limit(n)
    return soft, soft + 30.0
