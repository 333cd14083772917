"""The worker's model: loaded lazily, once per process, never at import time.

``get_predictor()`` imports torch only when called. Its cache is keyed by checkpoint path,
device and ``os.getpid()``, so a forked child does not pick up whatever model its parent had
(a parent that ran forward passes has thread pools that do not survive ``fork``), and a
settings change picks a new model. The exception is :func:`share_with_forks`: a Celery worker's
main process loads the model before its pool forks, runs no forward pass, and its pool
processes adopt those weights (shared copy-on-write) instead of loading their own.
``checkpoint_info()`` reads the checkpoint's metadata without torch.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from prodcat_django.conf import prodcat_settings

if TYPE_CHECKING:
    from prodcat_django.ml.manifest import CheckpointInfo
    from prodcat_django.ml.predictor import Predictor

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_predictors: dict[tuple[str, str | None, int], Predictor] = {}
# (path, device) -> a model loaded, without a forward pass, by the process of that pid for the
# processes it forks (share_with_forks).
_shared: dict[tuple[str, str | None], tuple[Predictor, int]] = {}
# pid -> how many models that process loaded itself, and whether it adopted a shared one.
_loads: dict[int, int] = {}
_adopted: set[int] = set()


def checkpoint_path() -> Path:
    """``PRODCAT["CHECKPOINT"]``, or the checkpoint shipped with the package."""
    configured = prodcat_settings.CHECKPOINT
    if configured:
        return Path(configured).expanduser().resolve()
    from prodcat_django.ml.manifest import default_checkpoint_dir

    return default_checkpoint_dir()


def checkpoint_info() -> CheckpointInfo:
    """Name, version, labels, threshold and metrics of the configured checkpoint (no torch)."""
    from prodcat_django.ml.manifest import read_checkpoint

    return read_checkpoint(checkpoint_path())


def get_predictor(path: str | Path | None = None) -> Predictor:
    """The ``Predictor`` of ``path`` (default: the configured checkpoint), loaded on first use
    in this process. Loading another path drops the previous model, so a worker that switches
    to a new active version (:func:`prodcat_django.training.store.active_predictor`) holds one
    model at a time."""
    path = Path(path).resolve() if path is not None else checkpoint_path()
    device, backend = prodcat_settings.DEVICE, prodcat_settings.ENCODER_BACKEND
    key = (str(path), device, backend, os.getpid())
    predictor = _predictors.get(key)
    if predictor is not None:
        return predictor
    with _lock:
        predictor = _predictors.get(key)
        if predictor is not None:
            return predictor
        pid = os.getpid()
        shared = _shared.get((str(path), device))
        # Drop models of other paths/devices and of a parent process.
        _predictors.clear()
        if shared is not None and shared[1] != pid:
            predictor = _predictors[key] = shared[0]
            _adopted.add(pid)
            return predictor
        # The encoders ship as pip packages; nothing may be fetched at run time.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from prodcat_django.ml.predictor import Predictor

        logger.info("prodcat: loading the model %s in process %d", path, pid)
        predictor = _predictors[key] = Predictor.load(path, device=device, backend=backend)
        _loads[pid] = _loads.get(pid, 0) + 1
    return predictor


def share_with_forks() -> None:
    """Let processes forked from this one from now on use the models it loaded instead of
    loading their own. Only for a process that runs no forward pass before it forks (a Celery
    worker's main process): the weights are plain memory, shared copy-on-write; torch's
    thread pools, which a forward pass would start, would not survive the fork."""
    pid = os.getpid()
    with _lock:
        _shared.clear()
        for (path, device, _backend, owner), predictor in _predictors.items():
            if owner == pid:
                _shared[(path, device)] = (predictor, pid)


def loads_in_this_process() -> int:
    """How many models this process loaded itself (not counting one it adopted)."""
    return _loads.get(os.getpid(), 0)


def adopted_in_this_process() -> bool:
    """Whether this process uses a model its parent loaded for it (:func:`share_with_forks`)."""
    return os.getpid() in _adopted


def clear_cache() -> None:
    """Forget loaded models (tests; a worker picking up a new checkpoint)."""
    with _lock:
        _predictors.clear()
        _shared.clear()
