"""Checkpoint folders: reading and verifying them, with the standard library only (no torch).

A checkpoint is a folder ``<name>/<version>/`` holding

- ``weights.safetensors``: only the trained tensors (no pickle anywhere),
- ``config.json``: architecture, encoders (package names and versions), preprocessing,
- ``labels.json``: the category names, in the order of the classifier's outputs,
- ``manifest.json``: the sha256 of every other file, temperature, auto-accept threshold,
  validation and test metrics, training-data fingerprint, the training command, created-at.

:func:`verify_checkpoint` is the one validation both the worker's loader
(``prodcat_django.ml.checkpoint.load_model``) and ``manage.py check`` run, so the check refuses
exactly what the loader refuses: besides the hashes it parses the safetensors header (no
torch), so a truncated file with a rewritten manifest, a pickle posing as safetensors and a
classifier head whose width disagrees with the label files are all caught before any tensor
is read. Files symlinked from outside the checkpoint folder are refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "CHECKPOINT_FORMAT",
    "DEFAULT_CHECKPOINT_NAME",
    "CheckpointError",
    "CheckpointInfo",
    "default_checkpoint_dir",
    "read_checkpoint",
    "read_weights_header",
    "sha256_file",
    "verify_checkpoint",
    "write_manifest",
]

CHECKPOINT_FORMAT = "prodcat-checkpoint/1"
DEFAULT_CHECKPOINT_NAME = "fashion16-attention"
WEIGHTS_FILE = "weights.safetensors"
PROBE_FILE = "probe.safetensors"  # the probe head, when config.json's model has ``probe``
REQUIRED_FILES = ("config.json", "labels.json", WEIGHTS_FILE)
# Files that could carry weights: an unlisted one is refused rather than silently ignored.
WEIGHT_SUFFIXES = (
    ".safetensors",
    ".bin",
    ".pt",
    ".pth",
    ".ckpt",
    ".pkl",
    ".pickle",
    ".npy",
    ".npz",
)


# safetensors dtypes and their sizes in bytes.
_DTYPE_SIZES = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
    "I16": 2,
    "U16": 2,
    "F16": 2,
    "BF16": 2,
    "I32": 4,
    "U32": 4,
    "F32": 4,
    "I64": 8,
    "U64": 8,
    "F64": 8,
}
# A header is a few KB of JSON; anything near this size is not a safetensors file.
_MAX_HEADER_BYTES = 100 * 1024 * 1024
_HEAD_WEIGHT = re.compile(r"^(?:members\.\d+\.)?head\.(\d+)\.weight$")  # ensembles too


class CheckpointError(Exception):
    """A checkpoint that must not be loaded: the message names the file and what is wrong."""


@dataclass(frozen=True)
class CheckpointInfo:
    path: Path
    name: str
    version: str
    labels: tuple[str, ...]
    temperature: float
    threshold: float | None
    metrics: dict = field(hash=False)
    created_at: str
    config: dict = field(hash=False)


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise CheckpointError(f"{path}: missing")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: not valid JSON ({exc})") from exc


def read_checkpoint(path: str | Path) -> CheckpointInfo:
    """Parse the JSON files of the checkpoint at ``path`` and check that they agree."""
    root = Path(path)
    if not root.is_dir():
        raise CheckpointError(f"{root}: no such checkpoint folder")
    manifest = _read_json(root / "manifest.json")
    config = _read_json(root / "config.json")
    labels = _read_json(root / "labels.json")
    if not isinstance(manifest, dict) or manifest.get("format") != CHECKPOINT_FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise CheckpointError(
            f"{root / 'manifest.json'}: unsupported format {found!r}, "
            f"expected {CHECKPOINT_FORMAT!r}"
        )
    if not isinstance(config, dict) or not isinstance(config.get("model"), dict):
        raise CheckpointError(f"{root / 'config.json'}: no 'model' section")
    if not (isinstance(labels, list) and labels and all(isinstance(x, str) for x in labels)):
        raise CheckpointError(f"{root / 'labels.json'}: must be a non-empty list of strings")
    if len(set(labels)) != len(labels):
        raise CheckpointError(f"{root / 'labels.json'}: duplicate labels")
    expected = config["model"].get("num_labels")
    if expected != len(labels):
        raise CheckpointError(
            f"{root / 'labels.json'}: {len(labels)} labels, but config.json's model has "
            f"num_labels={expected}"
        )
    if manifest.get("num_labels", len(labels)) != len(labels):
        raise CheckpointError(
            f"{root / 'labels.json'}: {len(labels)} labels, but manifest.json records "
            f"{manifest.get('num_labels')}"
        )
    temperature = manifest.get("temperature", 1.0)
    if not isinstance(temperature, int | float) or not temperature > 0:
        raise CheckpointError(
            f"{root / 'manifest.json'}: temperature must be > 0, got {temperature!r}"
        )
    threshold = manifest.get("threshold")
    if threshold is not None and not isinstance(threshold, int | float):
        raise CheckpointError(f"{root / 'manifest.json'}: threshold must be a number or null")
    return CheckpointInfo(
        path=root.resolve(),
        name=str(manifest.get("name", root.parent.name)),
        version=str(manifest.get("version", root.name)),
        labels=tuple(labels),
        temperature=float(temperature),
        threshold=None if threshold is None else float(threshold),
        metrics=manifest.get("metrics") or {},
        created_at=str(manifest.get("created_at", "")),
        config=config,
    )


def read_weights_header(file: str | Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """``{tensor name: (dtype, shape)}`` from a safetensors file's header, checked for size.

    Reads only the header (8-byte length, then JSON) and the file size: every tensor's byte
    range must match its dtype and shape, the ranges must tile the data section without gaps
    or overlaps, and the data section must end exactly at the end of the file (a truncated
    download or a padded file is refused). Anything else (a pickle, a zip) fails to parse.
    """
    file = Path(file)
    try:
        size = file.stat().st_size
        with file.open("rb") as handle:
            prefix = handle.read(8)
            length = int.from_bytes(prefix, "little") if len(prefix) == 8 else -1
            if length < 2 or length > min(size - 8, _MAX_HEADER_BYTES):
                raise CheckpointError(
                    f"{file}: not a safetensors file (no valid header length; {size} bytes in all)"
                )
            raw = handle.read(length)
    except OSError as exc:
        raise CheckpointError(f"{file}: cannot be read ({exc})") from exc
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{file}: not a safetensors file (header is not JSON)") from exc
    if not isinstance(header, dict):
        raise CheckpointError(f"{file}: not a safetensors file (header is not a JSON object)")
    header.pop("__metadata__", None)
    tensors: dict[str, tuple[str, tuple[int, ...]]] = {}
    ranges: list[tuple[int, int, str]] = []
    for name, entry in header.items():
        try:
            dtype, shape, (begin, end) = entry["dtype"], entry["shape"], entry["data_offsets"]
            ok = (
                dtype in _DTYPE_SIZES
                and all(isinstance(d, int) and d >= 0 for d in shape)
                and isinstance(begin, int)
                and isinstance(end, int)
            )
        except (KeyError, TypeError, ValueError):
            ok = False
        if not ok:
            raise CheckpointError(f"{file}: tensor {name!r} has a malformed header entry")
        count = 1
        for d in shape:
            count *= d
        if end - begin != count * _DTYPE_SIZES[dtype]:
            raise CheckpointError(
                f"{file}: tensor {name!r} spans {end - begin} bytes, but {dtype} {shape} "
                f"needs {count * _DTYPE_SIZES[dtype]}"
            )
        tensors[name] = (dtype, tuple(shape))
        ranges.append((begin, end, name))
    position = 0
    for begin, end, name in sorted(ranges):
        if begin != position:
            raise CheckpointError(f"{file}: tensor {name!r} does not follow the previous one")
        position = end
    data_bytes = size - 8 - length
    if position != data_bytes:
        what = "truncated" if position > data_bytes else "has trailing bytes"
        raise CheckpointError(
            f"{file}: {what} (the header describes {position} bytes of tensors, the file "
            f"holds {data_bytes})"
        )
    return tensors


def _check_weights_fit_labels(file: Path, info: CheckpointInfo) -> None:
    """The classifier head's last layer must have one output per label."""
    tensors = read_weights_header(file)
    layers = []
    for name, (_dtype, shape) in tensors.items():
        match = _HEAD_WEIGHT.match(name)
        if match and len(shape) == 2:
            layers.append((int(match.group(1)), shape))
    if layers:
        _index, shape = max(layers)
        if shape[0] != len(info.labels):
            raise CheckpointError(
                f"{file}: the classifier head has {shape[0]} outputs, but labels.json, "
                f"config.json and manifest.json say {len(info.labels)} labels"
            )


def _refuse_outside_links(root: Path) -> None:
    inside = root.resolve()
    for file in root.rglob("*"):
        if file.is_symlink() and not file.resolve().is_relative_to(inside):
            raise CheckpointError(
                f"{file}: a symlink to {file.resolve()}, outside the checkpoint folder; "
                "copy the file into the folder instead"
            )


def verify_checkpoint(path: str | Path) -> CheckpointInfo:
    """``read_checkpoint`` plus: no symlink leading out of the folder, the sha256 of every
    listed file, no unlisted weight files, and a well-formed safetensors header whose
    classifier head fits the labels."""
    info = read_checkpoint(path)
    root = Path(path)
    _refuse_outside_links(root)
    manifest = _read_json(root / "manifest.json")
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise CheckpointError(f"{root / 'manifest.json'}: no 'files' table of sha256 hashes")
    for required in REQUIRED_FILES:
        if required not in files:
            raise CheckpointError(f"{root / 'manifest.json'}: {required} is not listed in 'files'")
    for name, expected in files.items():
        file = root / name
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise CheckpointError(f"{root / 'manifest.json'}: file name {name!r} leaves the folder")
        if not file.is_file():
            raise CheckpointError(f"{file}: listed in manifest.json but missing")
        actual = sha256_file(file)
        if actual != expected:
            raise CheckpointError(
                f"{file}: sha256 mismatch (manifest {str(expected)[:12]}..., "
                f"file {actual[:12]}...); "
                "the file was changed or corrupted after the checkpoint was written"
            )
    for file in root.rglob("*"):
        rel = file.relative_to(root).as_posix()
        if file.is_file() and file.suffix in WEIGHT_SUFFIXES and rel not in files:
            raise CheckpointError(f"{file}: weight file not listed in manifest.json")
    _check_weights_fit_labels(root / WEIGHTS_FILE, info)
    if "probe" in info.config["model"]:
        if PROBE_FILE not in files:
            raise CheckpointError(
                f"{root / 'manifest.json'}: config.json has a probe head but {PROBE_FILE} "
                "is not listed in 'files'"
            )
        read_weights_header(root / PROBE_FILE)
    return info


def write_manifest(path: str | Path, fields: dict[str, Any]) -> Path:
    """Write ``manifest.json`` with the sha256 of every other file in the folder."""
    root = Path(path)
    files = {
        f.relative_to(root).as_posix(): sha256_file(f)
        for f in sorted(root.rglob("*"))
        if f.is_file() and f.name != "manifest.json"
    }
    manifest = {"format": CHECKPOINT_FORMAT, **fields, "files": files}
    target = root / "manifest.json"
    target.write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return target


def _version_key(version: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"[.\-+]", version))


def default_checkpoint_dir() -> Path:
    """The shipped checkpoint, ``model_checkpoint/<name>/<latest version>``.

    Looked up inside the installed package first (a wheel carries it as
    ``prodcat_django/model_checkpoint/``), then at the top of a source checkout.
    ``PRODCAT_CHECKPOINT`` (a checkpoint folder) overrides both.
    """
    env = os.environ.get("PRODCAT_CHECKPOINT")
    if env:
        return Path(env)
    package = Path(__file__).resolve().parents[1]
    candidates = [
        root / "model_checkpoint" / DEFAULT_CHECKPOINT_NAME for root in (package, package.parent)
    ]
    for base in candidates:
        versions = (
            [d for d in base.iterdir() if (d / "manifest.json").is_file()] if base.is_dir() else []
        )
        if versions:
            return max(versions, key=lambda d: _version_key(d.name))
    raise CheckpointError(
        f"no shipped checkpoint found (no <version>/manifest.json under "
        f"{' or '.join(str(c) for c in candidates)}); set PRODCAT['CHECKPOINT']"
    )
