"""ONNX Runtime backend for the frozen encoders (optional: ``pip install prodcat-django[onnx]``).

Why: on CPU, eager PyTorch runs EfficientNet-Lite0's depthwise convolutions slowly; ONNX
Runtime runs the same graph (BatchNorms folded, as the torch encoder has them) several times
faster, and MiniLM about twice as fast (docs/performance.md, session 4).

Each encoder's network is exported once, with torch's own exporter, to a file cached beside the
weights' local copy (``<local_copy>/prodcat-onnx/``; ``PRODCAT_ONNX_CACHE`` overrides it, and an
unwritable package folder falls back to ``~/.cache/prodcat-django/onnx``). Nothing is ever
downloaded. The file's name holds a hash of the weights, the encoder id, the exporter's (torch)
version and onnxruntime's version, so a changed model or runtime is a new file. Every load
checks the session against torch on a probe input of another batch size than the export's;
a file that fails to load or to match is exported again.

Backends, chosen per call (``backend=``), else by ``PRODCAT_ENCODER_BACKEND``:

- ``"auto"`` (default): ``"onnx"`` for the pretrained encoders on the CPU where onnxruntime
  imports and the export succeeds and matches; otherwise ``"torch"``, and the log says why.
  The seeded test encoders (no pretrained weights) stay on torch.
- ``"torch"``: eager PyTorch, as before.
- ``"onnx"``: ONNX Runtime or an error that says why.

Same function as torch to float rounding (checked at every load), so the ``encoder_id`` and
with it every feature-cache key stays the same.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from prodcat_django.ml.encoders import ImageEncoder, MiniLMTextEncoder, TextEncoder

logger = logging.getLogger("prodcat_django.ml.onnx")

BACKENDS = ("auto", "torch", "onnx")
#: Bump when the export itself changes (opset, graph, names): old files are then not reused.
EXPORT_FORMAT = 1
OPSET = 17
#: Largest difference from torch a session may show on the probe, relative to the largest
#: output value (measured: ~3e-5 of 13 on EfficientNet, ~2e-6 of 5 on MiniLM).
TOLERANCE = 1e-3


class OnnxUnavailable(RuntimeError):
    """The ONNX backend cannot run here; the message says why."""


def resolve_backend(backend: str | None) -> str:
    """``backend``, or ``PRODCAT_ENCODER_BACKEND``, or "auto"; validated."""
    chosen = (backend or os.environ.get("PRODCAT_ENCODER_BACKEND") or "auto").strip().lower()
    if chosen not in BACKENDS:
        raise ValueError(f"unknown encoder backend {chosen!r} (expected one of {BACKENDS})")
    return chosen


def import_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise OnnxUnavailable(
            f"onnxruntime is not importable ({exc}); install prodcat-django[onnx]"
        ) from exc
    return onnxruntime


def with_backend(encoder: Any, backend: str | None = None, device: str = "cpu") -> Any:
    """``encoder`` as ``backend`` runs it: itself for torch, an ONNX Runtime twin for onnx."""
    chosen = resolve_backend(backend)
    if chosen == "torch" or encoder.backend == "onnx" or encoder.network() is None:
        return encoder  # a network-less test encoder has nothing to export
    on_cpu = str(device or "cpu").startswith("cpu")
    if chosen == "onnx":
        if not on_cpu:
            raise OnnxUnavailable(f"the ONNX backend runs on the CPU only, not {device!r}")
        return to_onnx(encoder)
    if encoder.local_copy is None:
        return encoder  # seeded test encoders: nothing to gain, nothing to cache
    if not on_cpu:
        logger.info(
            "%s: torch backend (device %s; ONNX Runtime runs on the CPU here)",
            encoder.encoder_id,
            device,
        )
        return encoder
    try:
        twin = to_onnx(encoder)
    except Exception as exc:  # any failure leaves the torch encoder, which always works
        logger.warning("%s: torch backend, not onnx: %s", encoder.encoder_id, exc)
        return encoder
    logger.info("%s: onnx backend (%s %s)", encoder.encoder_id, twin.onnx_status, twin.onnx_path)
    return twin


def to_onnx(encoder: ImageEncoder | TextEncoder) -> ImageEncoder | TextEncoder:
    """The ONNX Runtime twin of ``encoder`` (raises ``OnnxUnavailable`` or the export's error)."""
    ort = import_onnxruntime()
    if isinstance(encoder, ImageEncoder):
        return _image_twin(ort, encoder)
    if isinstance(encoder, MiniLMTextEncoder):
        return _text_twin(ort, encoder)
    raise OnnxUnavailable(f"no ONNX export for {type(encoder).__name__}")


def weights_digest(module: nn.Module) -> str:
    """sha256 of a module's parameters and buffers (names, dtypes, shapes, values)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().flatten().contiguous()  # size-1 dims may carry any stride
        digest.update(f"{name}|{t.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def cache_dir(encoder: ImageEncoder | TextEncoder) -> Path:
    env = os.environ.get("PRODCAT_ONNX_CACHE")
    if env:
        return Path(env)
    if encoder.local_copy is not None:
        folder = Path(encoder.local_copy) / "prodcat-onnx"
        try:
            folder.mkdir(exist_ok=True)
            if os.access(folder, os.W_OK):
                return folder
        except OSError:
            pass  # a read-only site-packages: the user's cache instead
    home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return home / "prodcat-django" / "onnx"


def export_file(encoder: ImageEncoder | TextEncoder, network: nn.Module, ort_version: str) -> Path:
    key = hashlib.sha256(
        f"{EXPORT_FORMAT}|{OPSET}|{encoder.encoder_id}|{weights_digest(network)}|"
        f"torch {torch.__version__}".encode()
    ).hexdigest()[:20]
    name = re.sub(r"[^A-Za-z0-9.=-]+", "_", encoder.encoder_id)[:80]
    return cache_dir(encoder) / f"{name}-{key}-ort{ort_version}.onnx"


def export(
    network: nn.Module,
    example: tuple[torch.Tensor, ...],
    path: Path,
    input_names: list[str],
    output_names: list[str],
    dynamic_axes: dict[str, dict[int, str]],
) -> None:
    """torch's TorchScript exporter (needs the ``onnx`` package; no onnxscript) into ``path``,
    written to a temporary file first so a concurrent reader never sees half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the exporter's deprecation and tracer notes
            torch.onnx.export(
                network,
                example,
                str(tmp),
                dynamo=False,
                opset_version=OPSET,
                input_names=input_names,
                output_names=output_names,
                dynamic_axes=dynamic_axes,
                do_constant_folding=True,
            )
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def session(ort: Any, path: Path) -> Any:
    options = ort.SessionOptions()
    # As many threads as torch uses in this process (PRODCAT_THREADS, the worker's setting).
    options.intra_op_num_threads = max(1, torch.get_num_threads())
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # No busy-waiting between runs: as fast here (2 shared cores) and leaves CPU to others.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    # No memory arena: ~90 MB less RSS at batch 32 (worker RSS target 1 GB), same speed here.
    options.enable_cpu_mem_arena = False
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def check(expected: np.ndarray, got: np.ndarray, what: str) -> float:
    """The largest difference; raises when it is above the tolerance (or shapes differ)."""
    if got.shape != expected.shape:
        raise ValueError(f"{what}: shape {got.shape}, torch gives {expected.shape}")
    err = float(np.abs(expected - got).max()) if expected.size else 0.0
    scale = max(1.0, float(np.abs(expected).max())) if expected.size else 1.0
    if not err <= TOLERANCE * scale:  # also catches NaN
        raise ValueError(
            f"{what}: differs from torch by {err:.3g} (tolerance {TOLERANCE * scale:.3g})"
        )
    return err


def _load_or_export(
    ort: Any,
    encoder: ImageEncoder | TextEncoder,
    network: nn.Module,
    example: tuple[torch.Tensor, ...],
    names: tuple[list[str], list[str], dict[str, dict[int, str]]],
    probe: dict[str, np.ndarray],
    reference: np.ndarray,
) -> tuple[Any, Path, str, float]:
    """(session, file, "reused" or "exported", max difference on the probe)."""
    path = export_file(encoder, network, ort.__version__)
    if path.is_file():
        try:
            sess = session(ort, path)
            err = check(reference, sess.run(None, probe)[0], str(path))
            return sess, path, "reused", err
        except Exception as exc:  # torn, truncated or foreign file: export it again
            logger.warning("ONNX file %s is unusable (%s); exporting it again", path, exc)
            path.unlink(missing_ok=True)
    export(network, example, path, *names)
    sess = session(ort, path)
    err = check(reference, sess.run(None, probe)[0], str(path))
    return sess, path, "exported", err


def _image_twin(ort: Any, encoder: ImageEncoder) -> OnnxImageEncoder:
    network = encoder.network().eval()
    size = encoder.image_size
    generator = torch.Generator().manual_seed(0)
    example = torch.rand(2, 3, size, size, generator=generator) * 2 - 1
    probe = torch.rand(1, 3, size, size, generator=generator) * 2 - 1  # another batch size
    reference = encoder.forward_pixels(probe).float().contiguous().numpy()
    sess, path, status, err = _load_or_export(
        ort,
        encoder,
        network,
        (example,),
        (["pixels"], ["maps"], {"pixels": {0: "batch"}, "maps": {0: "batch"}}),
        {"pixels": probe.numpy()},
        reference,
    )
    return OnnxImageEncoder(encoder, sess, path, status, err)


_PROBE_TITLES = (
    ["Slim fit cotton shirt with long sleeves", "Boots"],
    ["Leather ankle boots", "Summer dress, floral print, knee length", "Mug"],
)


def _text_twin(ort: Any, encoder: MiniLMTextEncoder) -> OnnxTextEncoder:
    network = encoder.network().eval()
    names = ["input_ids", "attention_mask", "token_type_ids"]

    def tokens(titles: list[str]) -> dict[str, torch.Tensor]:
        batch = encoder.tokenizer(
            titles,
            truncation=True,
            max_length=encoder.max_tokens,
            padding=True,
            return_tensors="pt",
        )
        return {name: batch[name] for name in names}

    example, probe = (tokens(t) for t in _PROBE_TITLES)
    with torch.inference_mode():
        reference = encoder.forward_tokens(probe).numpy()
    axes = {name: {0: "batch", 1: "tokens"} for name in [*names, "states"]}
    sess, path, status, err = _load_or_export(
        ort,
        encoder,
        network,
        tuple(example[name] for name in names),
        (names, ["states"], axes),
        {name: probe[name].numpy() for name in names},
        reference,
    )
    return OnnxTextEncoder(encoder, sess, path, status, err)


# Sessions made in a parent process, never freed in a forked child: freeing one would join
# thread-pool threads that do not exist after fork.
_inherited: list[Any] = []


class _Sessions:
    """The session of one exported file for this process and torch's thread count: a Celery
    worker loads the model in its main process with torch at one thread and forks its pool
    (``services.warmup.load_before_fork``); each pool process then opens the file again with
    its own threads instead of using a session whose threads did not survive the fork."""

    def __init__(self, path: Path, sess: Any) -> None:
        self.path, self.session = path, sess
        self.pid, self.threads = os.getpid(), max(1, torch.get_num_threads())
        self._lock = threading.Lock()

    def get(self) -> Any:
        pid, threads = os.getpid(), max(1, torch.get_num_threads())
        if (pid, threads) != (self.pid, self.threads):
            with self._lock:
                if (pid, threads) != (self.pid, self.threads):
                    try:
                        fresh = session(import_onnxruntime(), self.path)
                    except Exception as exc:  # file removed since: the one we have still runs
                        logger.warning("cannot reopen %s (%s); keeping its session", self.path, exc)
                        fresh = self.session
                    if pid != self.pid and fresh is not self.session:
                        _inherited.append(self.session)
                    self.session, self.pid, self.threads = fresh, pid, threads
        return self.session


class OnnxImageEncoder(ImageEncoder):
    """An image encoder's network run by ONNX Runtime; preprocessing as the torch one's."""

    backend = "onnx"

    def __init__(
        self, source: ImageEncoder, sess: Any, path: Path, status: str, probe_error: float
    ) -> None:
        super().__init__()
        self.encoder_id, self.channels = source.encoder_id, source.channels
        self.image_size, self.local_copy = source.image_size, source.local_copy
        self.onnx_path, self.onnx_status, self.probe_error = path, status, probe_error
        # The torch network is not kept: the session has its own weights.
        self._sessions = _Sessions(path, sess)

    def network(self) -> nn.Module:
        raise OnnxUnavailable("already an ONNX Runtime encoder")

    def forward_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        x = np.ascontiguousarray(pixels.detach().cpu().numpy(), dtype=np.float32)
        return torch.from_numpy(self._sessions.get().run(None, {"pixels": x})[0])


class OnnxTextEncoder(MiniLMTextEncoder):
    """MiniLM's transformer run by ONNX Runtime; tokenizer and word mapping as MiniLM's."""

    backend = "onnx"

    def __init__(
        self, source: MiniLMTextEncoder, sess: Any, path: Path, status: str, probe_error: float
    ) -> None:
        nn.Module.__init__(self)  # not MiniLM's: its weights are in the session
        self.tokenizer, self.max_tokens, self.dim = source.tokenizer, source.max_tokens, source.dim
        self.encoder_id, self.local_copy = source.encoder_id, source.local_copy
        self.onnx_path, self.onnx_status, self.probe_error = path, status, probe_error
        self._sessions = _Sessions(path, sess)

    def network(self) -> nn.Module:
        raise OnnxUnavailable("already an ONNX Runtime encoder")

    def forward_tokens(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        ids = batch["input_ids"]
        feed = {
            "input_ids": ids,
            "attention_mask": batch.get("attention_mask", torch.ones_like(ids)),
            "token_type_ids": batch.get("token_type_ids", torch.zeros_like(ids)),
        }
        feed_np = {
            k: np.ascontiguousarray(v.cpu().numpy(), dtype=np.int64) for k, v in feed.items()
        }
        return torch.from_numpy(self._sessions.get().run(None, feed_np)[0])
