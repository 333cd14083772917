"""On-disk cache of the frozen encoders' outputs, so retraining the head never re-runs them.

Entries are fp16 ``.npy`` files named by sha256(encoder id, view, title text or image bytes):
a changed title, image, encoder version or view is simply a different key. Default location
``<repo>/.cache/prodcat-features/`` (gitignored), overridable with ``PRODCAT_FEATURE_CACHE``.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from prodcat_django.ml.augment import augment, is_view
from prodcat_django.ml.encoders import ImageEncoder, TextEncoder
from prodcat_django.ml.images import InvalidImageError, load_image

# Image views: as is, mirrored left-right, and ``aug<k>``: the k-th fixed crop + colour draw
# (prodcat_django.ml.augment). Each view is its own cache entry.
VIEWS = ("orig", "flip")


def default_cache_dir() -> Path:
    env = os.environ.get("PRODCAT_FEATURE_CACHE")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / ".cache" / "prodcat-features"


def _key(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(len(part).to_bytes(8, "little"))
        digest.update(part)
    return digest.hexdigest()


class FeatureCache:
    def __init__(
        self,
        text_encoder: TextEncoder | None,
        image_encoder: ImageEncoder | None,
        root: str | Path | None = None,
        batch_size: int = 32,
        progress: bool = True,
    ) -> None:
        self.text_encoder, self.image_encoder = text_encoder, image_encoder
        self.root = Path(root) if root is not None else default_cache_dir()
        self.batch_size, self.progress = batch_size, progress
        # What this cache object had to run the encoders for (the rest came from disk): a
        # retrain reports it, to show that only new titles and photos were encoded.
        self.encoded: dict[str, int] = {}

    def _file(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.npy"

    def _load(self, key: str) -> np.ndarray | None:
        path = self._file(key)
        if not path.is_file():
            return None
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            return None  # a torn write: recompute

    def _store(self, key: str, array: np.ndarray) -> None:
        path = self._file(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        with tmp.open("wb") as handle:
            np.save(handle, array.astype(np.float16), allow_pickle=False)
        tmp.replace(path)  # atomic: concurrent readers never see half a file

    def text(self, titles: Sequence[str]) -> list[np.ndarray]:
        """(T, D) fp16 token states per title (T == 0 for an empty title)."""
        assert self.text_encoder is not None
        enc = self.text_encoder
        keys = [_key(enc.encoder_id.encode(), t.encode("utf-8")) for t in titles]
        result: list[np.ndarray | None] = [self._load(k) for k in keys]
        todo = sorted({i for i, r in enumerate(result) if r is None}, key=lambda i: titles[i])
        first_of: dict[str, int] = {}
        for i in todo:
            first_of.setdefault(keys[i], i)
        unique = list(first_of.values())
        bar = tqdm(
            total=len(unique),
            desc="encode titles",
            unit="title",
            disable=not self.progress or not unique,
        )
        for start in range(0, len(unique), 256):
            chunk = unique[start : start + 256]
            for i, feats in zip(chunk, enc.encode([titles[i] for i in chunk]), strict=True):
                array = feats.states.numpy().astype(np.float16)
                self._store(keys[i], array)
                result[i] = array
            self.encoded["titles"] = self.encoded.get("titles", 0) + len(chunk)
            bar.update(len(chunk))
        bar.close()
        for i in todo:
            if result[i] is None:
                result[i] = result[first_of[keys[i]]]
        return [r for r in result if r is not None]

    def images(
        self, paths: Sequence[Path | None], view: str = "orig", *, missing: str = "error"
    ) -> list[np.ndarray | None]:
        """(C, 7, 7) fp16 maps per image path; None where the path is None.

        ``missing``: what to do with an unreadable file: ``"error"`` raises ``InvalidImageError``
        naming it, ``"warn"`` warns and treats the product as having no image.
        """
        assert self.image_encoder is not None
        if not is_view(view):
            raise ValueError(f"unknown image view {view!r} (orig, flip or aug1..aug99)")
        enc = self.image_encoder
        result: list[np.ndarray | None] = [None] * len(paths)
        todo: list[tuple[int, str]] = []
        for i, path in enumerate(paths):
            if path is None:
                continue
            try:
                data = Path(path).read_bytes()
            except OSError as exc:
                message = f"image file {path} cannot be read: {exc.strerror or exc}"
                if missing == "error":
                    raise InvalidImageError(message) from exc
                warnings.warn(message + "; treating the product as having no image", stacklevel=2)
                continue
            key = _key(enc.encoder_id.encode(), view.encode(), data)
            cached = self._load(key)
            if cached is None:
                todo.append((i, key))
            else:
                result[i] = cached
        bar = tqdm(
            total=len(todo),
            desc=f"encode images ({view})",
            unit="img",
            disable=not self.progress or not todo,
        )
        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start : start + self.batch_size]
            decoded, kept = [], []
            for i, key in chunk:
                try:
                    image = load_image(paths[i])  # type: ignore[arg-type]
                    if view.startswith("aug"):  # seeded by the view and the image bytes
                        image = augment(image, int(key[:12], 16))
                    decoded.append(image)
                    kept.append((i, key))
                except InvalidImageError as exc:
                    if missing == "error":
                        raise
                    warnings.warn(f"{exc}; treating the product as having no image", stacklevel=2)
            if decoded:
                maps = enc.encode(decoded, flip=view == "flip").numpy().astype(np.float16)
                for (i, key), array in zip(kept, maps, strict=True):
                    self._store(key, array)
                    result[i] = array
                name = f"images_{view}"
                self.encoded[name] = self.encoded.get(name, 0) + len(kept)
            bar.update(len(chunk))
        bar.close()
        return result


def stack_text(
    states: Iterable[np.ndarray], max_tokens: int, dim: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad token states into (B, T, D) float32 and a (B, T) bool mask, True = real token."""
    states = list(states)
    length = max(1, min(max_tokens, max((s.shape[0] for s in states), default=0)))
    out = torch.zeros(len(states), length, dim)
    mask = torch.zeros(len(states), length, dtype=torch.bool)
    for i, s in enumerate(states):
        n = min(length, s.shape[0])
        if n:
            out[i, :n] = torch.from_numpy(np.asarray(s[:n], dtype=np.float32))
            mask[i, :n] = True
    return out, mask


def stack_images(
    maps: Sequence[np.ndarray | None], shape: tuple[int, int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack (C, 7, 7) maps into (B, C, 7, 7) float32 and a (B,) bool, True = has an image."""
    out = torch.zeros(len(maps), *shape)
    present = torch.zeros(len(maps), dtype=torch.bool)
    for i, m in enumerate(maps):
        if m is not None:
            out[i] = torch.from_numpy(np.asarray(m, dtype=np.float32))
            present[i] = True
    return out, present
