"""The in-process figures: (1) the bare encoders, (2) ``Predictor.predict`` from bytes, (4) the
seed paper's architecture (BERT-base + ResNet18 from configs, random weights) on the same
inputs. Each repeat measures every one of them once (interleaved), the caller takes medians.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch

from benchmarks.data import BenchProduct


def timed(fn: Callable[[], Any]) -> tuple[float, float]:
    """(wall s, CPU s of this process) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), max(1, size))]


class Inputs:
    """Pre-decoded inputs shared by (1) and (4): token ids of the titles, 224x224 tensors."""

    def __init__(self, predictor: Any, products: list[BenchProduct]) -> None:
        from prodcat_django.ml.images import DECODE_SIZE, load_image

        self.products = products
        self.images = [load_image(p.image, reduce_to=DECODE_SIZE) for p in products]
        enc = predictor.image_encoder
        self.pixels = enc.preprocess(self.images)  # (N, 3, S, S) in [-1, 1]
        text = predictor.text_encoder
        self.tokenizer = getattr(text, "tokenizer", None)
        self.titles = [p.title for p in products]

    def tokens(self, rows: slice) -> dict[str, torch.Tensor] | None:
        if self.tokenizer is None:
            return None
        return dict(
            self.tokenizer(
                self.titles[rows], truncation=True, max_length=32, padding=True, return_tensors="pt"
            )
        )


def image_forward(enc: Any, x: torch.Tensor) -> torch.Tensor:
    return enc.forward_pixels(x)  # the network alone, torch or ONNX Runtime


@torch.inference_mode()
def bare_text(predictor: Any, inputs: Inputs, batch: int) -> float:
    """Seconds for all titles through the text encoder's network (tokenized beforehand)."""
    text = predictor.text_encoder
    n = len(inputs.titles)
    batches = [inputs.tokens(slice(i, i + batch)) for i in range(0, n, batch)]
    if batches[0] is None:  # tiny-random: no separate network
        return timed(lambda: [text.encode(t) for t in chunks(inputs.titles, batch)])[0]
    return timed(lambda: [text.forward_tokens(b) for b in batches])[0]


@torch.inference_mode()
def bare_image(predictor: Any, inputs: Inputs, batch: int) -> float:
    enc = predictor.image_encoder
    parts = list(inputs.pixels.split(batch))
    return timed(lambda: [image_forward(enc, x) for x in parts])[0]


def predict_from_bytes(predictor: Any, products: list[BenchProduct], batch: int) -> float:
    """Seconds for decode + ``Predictor.predict`` of every product, ``batch`` per call."""
    from prodcat_django.ml.images import DECODE_SIZE, load_image
    from prodcat_django.ml.predictor import ProductInput

    def run() -> None:
        for part in chunks(products, batch):
            items = [
                ProductInput(p.title, load_image(p.image, reduce_to=DECODE_SIZE)) for p in part
            ]
            predictor.predict(items, batch_size=batch)

    clear = getattr(predictor, "clear_image_cache", None)
    if clear is not None:
        clear()  # fresh photos: the image-feature cache must not answer
    return timed(run)[0]


class Seed:
    """The seed paper's encoders: BERT-base (BertConfig() defaults) and ResNet18, random weights."""

    def __init__(self) -> None:
        from transformers import BertConfig, BertModel, ResNetConfig, ResNetModel

        torch.manual_seed(0)
        self.text = BertModel(BertConfig()).eval()
        self.image = ResNetModel(
            ResNetConfig(layer_type="basic", depths=[2, 2, 2, 2], hidden_sizes=[64, 128, 256, 512])
        ).eval()

    @torch.inference_mode()
    def run(self, inputs: Inputs, batch: int, limit: int) -> float:
        """Seconds per product for the first ``limit`` products at ``batch``."""
        n = min(limit, len(inputs.titles))
        ids = []
        for i in range(0, n, batch):
            tok = inputs.tokens(slice(i, min(n, i + batch)))
            if tok is None:  # tiny-random text encoder: feed the drawn titles as bytes
                tok = {"input_ids": torch.randint(1000, 2000, (min(batch, n - i), 16))}
            ids.append(tok)
        pixels = list(inputs.pixels[:n].split(batch))

        def go() -> None:
            for tok, x in zip(ids, pixels, strict=True):
                self.text(**tok)
                self.image(
                    torch.nn.functional.interpolate(x, size=224) if x.shape[-1] != 224 else x
                )

        return timed(go)[0] / n


def ours_bare(predictor: Any, inputs: Inputs, batch: int, limit: int) -> float:
    """Seconds per product of our two encoders at ``batch`` (same products as Seed.run)."""
    sub = Inputs.__new__(Inputs)
    n = min(limit, len(inputs.titles))
    sub.products, sub.images = inputs.products[:n], inputs.images[:n]
    sub.pixels, sub.tokenizer, sub.titles = inputs.pixels[:n], inputs.tokenizer, inputs.titles[:n]
    return (bare_text(predictor, sub, batch) + bare_image(predictor, sub, batch)) / n
