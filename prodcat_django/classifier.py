"""The worker's model: loaded lazily, once per process, never at import time.

``get_predictor()`` imports torch only when called. Its cache is keyed by checkpoint path,
device and ``os.getpid()``, so a Celery prefork child never reuses a model its parent loaded
before forking (torch state does not survive ``fork`` reliably), and a settings change picks a
new model. ``checkpoint_info()`` reads the checkpoint's metadata without torch.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from prodcat_django.conf import prodcat_settings

if TYPE_CHECKING:
    from prodcat_django.ml.manifest import CheckpointInfo
    from prodcat_django.ml.predictor import Predictor

_lock = threading.Lock()
_predictors: dict[tuple[str, str | None, int], Predictor] = {}


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
    device = prodcat_settings.DEVICE
    key = (str(path), device, os.getpid())
    predictor = _predictors.get(key)
    if predictor is not None:
        return predictor
    with _lock:
        predictor = _predictors.get(key)
        if predictor is None:
            # The encoders ship as pip packages; nothing may be fetched at run time.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            from prodcat_django.ml.predictor import Predictor

            # Drop models of other paths/devices and of a parent process.
            _predictors.clear()
            predictor = _predictors[key] = Predictor.load(path, device=device)
    return predictor


def clear_cache() -> None:
    """Forget loaded models (tests; a worker picking up a new checkpoint)."""
    with _lock:
        _predictors.clear()
