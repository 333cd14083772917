"""Loading the model before the first request needs it: a worker's main process before its
pool forks (:func:`load_before_fork`, from :mod:`prodcat_django.tasks`), each pool process at
start (``worker_process_init``: the warm-up pass) and, when ``PRODCAT["WARM_UP_WEB"]`` is on, a
web process that serves ``suggest/`` (:class:`prodcat_django.apps.ProdcatConfig`).

The warm-up runs in a background thread: Celery kills a pool process that does not report for
duty within ``worker_proc_alive_timeout`` (4 s), and a web server should answer its health
checks while the model loads. A task or request that arrives meanwhile waits for the same load
(``classifier.get_predictor`` holds a lock), it never starts a second one. In a pool process
whose main process loaded the model, the thread only runs the warm-up pass.
"""

from __future__ import annotations

import logging
import os
import threading
import time

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_done = threading.Event()
_thread: threading.Thread | None = None


def warm_up() -> float:
    """Load the active model in this process and run its warm-up pass; seconds it took.

    Errors propagate (the caller decides whether a broken model matters now)."""
    from prodcat_django.services.runs import warm_up_predictor
    from prodcat_django.training.store import active_predictor

    started = time.perf_counter()
    warm_up_predictor(active_predictor().predictor)
    return time.perf_counter() - started


def load_before_fork() -> float:
    """Load the active model in a Celery worker's main process, before the pool forks, and
    share it with the pool processes (``classifier.share_with_forks``): each of them, and each
    one replacing a process that exited (``max_tasks_per_child``, a crash), starts with the
    weights in memory, shared copy-on-write. Seconds it took; errors propagate.

    No forward pass here, and torch held to one thread while the weights are built and copied:
    the OpenMP thread pool a parallel kernel starts does not survive ``fork``, so the main
    process must not have one (the pool processes start their own, with the configured number
    of threads, at their warm-up pass)."""
    import torch
    from django.db import connections

    from prodcat_django import classifier
    from prodcat_django.training.store import active_predictor

    started = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        active_predictor()
        classifier.share_with_forks()
    finally:
        torch.set_num_threads(threads)
        connections.close_all()  # forked children must not share the parent's sockets
    return time.perf_counter() - started


def start_warm_up(reason: str) -> threading.Thread:
    """Start :func:`warm_up` in a daemon thread, once per process; returns that thread.

    A failure is logged, not raised: the first task or request loads the model again and
    reports the error the usual way (a worker records it in its health row)."""
    global _thread
    with _lock:
        if _thread is not None:
            return _thread
        _done.clear()
        _thread = threading.Thread(target=_run, args=(reason,), name="prodcat-warm-up", daemon=True)
        _thread.start()
        return _thread


def wait_for_warm_up(timeout: float | None = None) -> bool:
    """Block until the background warm-up finished (or failed); False on timeout or when none
    was started."""
    with _lock:
        started = _thread is not None
    return started and _done.wait(timeout)


def _run(reason: str) -> None:
    from django.db import connections

    try:
        seconds = warm_up()
        from prodcat_django import classifier

        if classifier.adopted_in_this_process() and not classifier.loads_in_this_process():
            how = "the weights of the worker's main process, no load here"
        else:
            how = "loaded in this process"
        import torch

        logger.info(
            "prodcat: model loaded and warmed up at %s in %.1f s (%s; pid %d, torch threads %d)",
            reason,
            seconds,
            how,
            os.getpid(),
            torch.get_num_threads(),
        )
    except Exception as exc:  # the first task/request loads again and reports it properly
        logger.warning(
            "prodcat: could not load the model at %s: %s: %s", reason, type(exc).__name__, exc
        )
    finally:
        connections.close_all()  # this thread's own connections
        _done.set()


def forget() -> None:
    """Let the next :func:`start_warm_up` start again (tests; a forked child)."""
    global _thread
    with _lock:
        _thread = None
        _done.clear()
