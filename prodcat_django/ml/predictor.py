"""The interface the Django side calls: load a checkpoint, predict top-k, explain one prediction."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from prodcat_django.ml.checkpoint import load_model
from prodcat_django.ml.encoders import (
    ImageEncoder,
    TextEncoder,
    TextFeatures,
    build_image_encoder,
    build_text_encoder,
)
from prodcat_django.ml.knn import NAME_TEMPLATE, TEXT_WEIGHT, embedding_id, pooled_embedding
from prodcat_django.ml.manifest import CheckpointInfo, default_checkpoint_dir
from prodcat_django.ml.model import FusionModel, ImageTail, ModelOutput
from prodcat_django.ml.ood import OODDetector, load_detector

__all__ = ["Explanation", "LabelScore", "Prediction", "Predictor", "ProductInput"]


@dataclass(frozen=True)
class ProductInput:
    title: str = ""
    image: Image.Image | None = None


@dataclass(frozen=True)
class LabelScore:
    label: str
    score: float  # calibrated probability


@dataclass(frozen=True)
class Prediction:
    labels: tuple[LabelScore, ...]  # best first
    auto_accept: bool  # top score >= the checkpoint's threshold, and not out of taxonomy
    # The checkpoint's out-of-taxonomy detector (ml/ood.py); None where it has none.
    out_of_taxonomy: bool = False
    ood_score: float | None = None  # higher = more likely outside every category
    ood_threshold: float | None = None  # flagged when ood_score > ood_threshold
    ood_reason: str = ""  # "", "far from every category", "title and photo disagree"
    # The product's row of Predictor.embed (the neighbour head's space), from the same pass.
    embedding: np.ndarray | None = field(default=None, compare=False, repr=False)

    @property
    def top(self) -> LabelScore:
        return self.labels[0]


@dataclass(frozen=True)
class Explanation:
    prediction: Prediction
    tokens: tuple[tuple[str, float], ...]  # title words and weights (sum 1; empty: no title)
    regions: tuple[tuple[float, ...], ...]  # 7x7, row-major from top-left (sum 1; zeros: no image)
    modality_weight: dict[str, float]  # share of attention mass on "text" vs "image"


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


class Predictor:
    #: Photos per image-encoder pass. Measured by ``python -m benchmarks`` (docs/performance.md,
    #: session 4, idle 2-core box): EfficientNet-Lite0 on CPU is fastest at 4 (298 images/s on
    #: ONNX Runtime against 209 at 8 and 174 at 32; torch 182 / 119 / 60), cache-sized
    #: activations; titles go through MiniLM as one batch, which wants large ones.
    image_batch_size = 4
    #: Image maps kept by pixel content (192x7x7 floats, 38 KB each: 256 are ~10 MB).
    image_cache_size = 256

    def __init__(
        self,
        model: FusionModel,
        info: CheckpointInfo,
        text_encoder: TextEncoder,
        image_encoder: ImageEncoder,
        device: str,
        ood: OODDetector | None = None,
    ) -> None:
        self.model, self._info = model, info
        self.text_encoder, self.image_encoder = text_encoder, image_encoder
        self.device = device
        self.ood = ood
        self._lock = threading.Lock()  # torch modules are not safe to call from many threads
        self._image_cache: OrderedDict[bytes, torch.Tensor] = OrderedDict()
        # The pooled space's image half: the *pretrained* tail (checkpoint-independent).
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(info.config["image_encoder"].get("seed", 0)))
            self._embed_tail = ImageTail(info.config["image_encoder"], pretrained=True)
        self._embed_tail = self._embed_tail.to(device).eval()
        self.embedding_dim = text_encoder.dim + self._embed_tail.out_channels
        self.embedding_id = embedding_id(
            text_encoder.encoder_id, image_encoder.encoder_id, self.embedding_dim, TEXT_WEIGHT
        )

    def _image_maps(self, images: list[Image.Image]) -> torch.Tensor:
        """The image encoder's maps of ``images``: photos seen recently (same pixels at the
        model's input size) come from a bounded cache, so a product whose title alone changed
        skips the image encoder; the rest go through it ``image_batch_size`` at a time.
        Called under ``self._lock``."""
        enc = self.image_encoder
        pixels = enc.preprocess(images)
        keys = [hashlib.blake2b(row.numpy().tobytes(), digest_size=16).digest() for row in pixels]
        cache = self._image_cache
        maps: list[torch.Tensor | None] = [None] * len(images)
        todo = []
        for i, key in enumerate(keys):
            hit = cache.get(key)
            if hit is None:
                todo.append(i)
            else:
                cache.move_to_end(key)
                maps[i] = hit
        size = max(1, int(self.image_batch_size))
        for start in range(0, len(todo), size):
            part = todo[start : start + size]
            out = enc.forward_pixels(pixels[part]).float()
            for i, row in zip(part, out, strict=True):
                maps[i] = row.clone()  # not a view: the batch's tensor is freed
                if self.image_cache_size > 0:
                    cache[keys[i]] = maps[i]
            while len(cache) > max(0, int(self.image_cache_size)):
                cache.popitem(last=False)
        return torch.stack([m for m in maps if m is not None])

    def clear_image_cache(self) -> None:
        """Forget the cached image maps (the benchmark: fresh photos every repeat)."""
        with self._lock:
            self._image_cache.clear()

    @classmethod
    def load(
        cls,
        path: str | Path | None = None,
        *,
        device: str | None = None,
        backend: str | None = None,
    ) -> Predictor:
        """Verify and load the checkpoint at ``path`` (None: the shipped one). ``backend``
        runs the frozen encoders: "auto" (None: ``PRODCAT_ENCODER_BACKEND``, else "auto"),
        "torch" or "onnx" (``prodcat_django.ml.onnx_backend``)."""
        device = device or default_device()
        model, info = load_model(path if path is not None else default_checkpoint_dir(), device)
        text_encoder = build_text_encoder(
            info.config["text_encoder"], backend=backend, device=device
        ).to(device)
        image_encoder = build_image_encoder(
            info.config["image_encoder"], backend=backend, device=device
        ).to(device)
        text_encoder.eval()
        image_encoder.eval()
        return cls(model, info, text_encoder, image_encoder, device, load_detector(info.path))

    @property
    def info(self) -> CheckpointInfo:
        return self._info

    @property
    def labels(self) -> tuple[str, ...]:
        return self._info.labels

    def _check(self, items: Sequence[ProductInput]) -> None:
        for n, item in enumerate(items):
            if not isinstance(item, ProductInput):
                raise TypeError(f"item {n}: expected ProductInput, got {type(item).__name__}")
            if not isinstance(item.title, str):
                raise TypeError(f"item {n}: title must be a str, got {type(item.title).__name__}")
            if item.image is not None and not isinstance(item.image, Image.Image):
                raise TypeError(f"item {n}: image must be a PIL image or None")

    @torch.inference_mode()
    def _forward(self, items: Sequence[ProductInput]) -> tuple[ModelOutput, list[TextFeatures]]:
        texts = self.text_encoder.encode([item.title for item in items])
        dim = self.text_encoder.dim
        length = max(1, max(f.states.shape[0] for f in texts))
        text = torch.zeros(len(items), length, dim)
        mask = torch.zeros(len(items), length, dtype=torch.bool)
        for row, f in enumerate(texts):
            n = f.states.shape[0]
            text[row, :n], mask[row, :n] = f.states, True
        with_image = [row for row, item in enumerate(items) if item.image is not None]
        enc = self.image_encoder
        image = torch.zeros(len(items), enc.channels, 7, 7)
        if with_image:
            image[with_image] = self._image_maps([items[row].image for row in with_image])
        present = torch.zeros(len(items), dtype=torch.bool)
        present[with_image] = True
        d = self.device
        out = self.model(text.to(d), mask.to(d), image.to(d), present.to(d))
        self._last_inputs = (text, mask, image, present)
        return out, texts

    @torch.inference_mode()
    def _pooled(self, text, mask, image, present) -> np.ndarray:
        """The pooled-space rows (``embed``) from the encoder outputs of one batch."""
        weights = mask.unsqueeze(-1).float()
        text_mean = (text * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        gap = torch.zeros(len(text), self._embed_tail.out_channels)
        rows = present.nonzero().flatten()
        if len(rows):
            gap[rows] = self._embed_tail(image[rows].to(self.device)).mean((2, 3)).float().cpu()
        return pooled_embedding(text_mean.numpy(), gap.numpy())

    @torch.inference_mode()
    def _with_verdicts(
        self, out: ModelOutput, predictions: list[Prediction], embedding: np.ndarray
    ) -> list[Prediction]:
        """Attach the embedding and the out-of-taxonomy verdict to one batch's predictions."""
        text, mask, image, present = self._last_inputs
        if self.ood is None:
            return [replace(p, embedding=e) for p, e in zip(predictions, embedding, strict=True)]
        d = self.device
        has_text = mask.any(1)
        title_only = image_only = None
        if self.ood.uses_disagreement:  # two more passes of the small fusion model only
            no_image = torch.zeros_like(present)
            title_only = self.model(text.to(d), mask.to(d), image.to(d), no_image.to(d)).logits
            no_text = torch.zeros_like(mask)
            image_only = self.model(text.to(d), no_text.to(d), image.to(d), present.to(d)).logits
        verdicts = self.ood.verdicts(
            embedding,
            out.logits.float().cpu().numpy(),
            title_only=None if title_only is None else title_only.float().cpu().numpy(),
            image_only=None if image_only is None else image_only.float().cpu().numpy(),
            has_text=has_text.numpy(),
            has_image=present.numpy(),
        )
        return [
            replace(
                p,
                auto_accept=p.auto_accept and not v.flagged,
                out_of_taxonomy=v.flagged,
                ood_score=v.score,
                ood_threshold=self.ood.threshold,
                ood_reason=v.reason,
                embedding=e,
            )
            for p, v, e in zip(predictions, verdicts, embedding, strict=True)
        ]

    def _predictions(self, logits: torch.Tensor, top_k: int) -> list[Prediction]:
        probs = torch.softmax(logits.float() / self._info.temperature, dim=-1).cpu()
        k = max(1, min(top_k, probs.shape[1]))
        scores, indices = probs.topk(k, dim=-1)
        threshold = self._info.threshold
        result = []
        for row_scores, row_indices in zip(scores.tolist(), indices.tolist(), strict=True):
            labels = tuple(
                LabelScore(self.labels[i], float(s))
                for s, i in zip(row_scores, row_indices, strict=True)
            )
            result.append(
                Prediction(labels, threshold is not None and labels[0].score >= threshold)
            )
        return result

    def predict(
        self, items: Sequence[ProductInput], top_k: int = 3, batch_size: int = 32
    ) -> list[Prediction]:
        """Top-k calibrated categories for each (title, image) pair, in input order."""
        self._check(items)
        result: list[Prediction] = []
        with self._lock:
            for start in range(0, len(items), max(1, batch_size)):
                out, _ = self._forward(items[start : start + batch_size])
                predictions = self._predictions(out.logits, top_k)
                embedding = self._pooled(*self._last_inputs)
                result.extend(self._with_verdicts(out, predictions, embedding))
        return result

    def embed(self, items: Sequence[ProductInput], batch_size: int = 32) -> np.ndarray:
        """(N, D) float32 rows of the neighbour head's pooled space (``ml/knn.py``)."""
        self._check(items)
        rows = [np.zeros((0, self.embedding_dim), dtype=np.float32)]
        with self._lock:
            for start in range(0, len(items), max(1, batch_size)):
                self._forward(items[start : start + batch_size])
                rows.append(self._pooled(*self._last_inputs))
        return np.concatenate(rows)

    def embed_texts(
        self, texts: Sequence[str], batch_size: int = 32, *, template: str = NAME_TEMPLATE
    ) -> np.ndarray:
        """(N, D): category names / descriptions in the same space (the image half is zero).

        Each text is embedded as ``template.format(text)`` ("a product for Mugs": chosen on
        validation, see ``ml/knn.py``); ``template="{}"`` embeds the text as it is.
        """
        for n, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"text {n}: expected a str, got {type(text).__name__}")
        items = [ProductInput(template.format(text.strip())) for text in texts]
        return self.embed(items, batch_size=batch_size)

    def explain(self, item: ProductInput, top_k: int = 3) -> Explanation:
        """The prediction plus the title words and 7x7 regions that weighed most in it."""
        return self.explain_many([item], top_k=top_k)[0]

    def explain_many(
        self, items: Sequence[ProductInput], top_k: int = 3, batch_size: int = 32
    ) -> list[Explanation]:
        """Prediction and explanation for each item, one forward pass per batch, in input order.

        Attention models: the pooling query's attention (averaged over heads) over the fused
        title tokens and image patches; WordPiece pieces are summed back into words, [CLS]/[SEP]
        and the null tokens are left out. Other fusions have no attention to read: words get
        equal weight and regions the norm of their (fine-tuned) feature vector.
        """
        self._check(items)
        result: list[Explanation] = []
        with self._lock:
            for start in range(0, len(items), max(1, batch_size)):
                batch = items[start : start + batch_size]
                out, texts = self._forward(batch)
                predictions = self._predictions(out.logits, top_k)
                embedding = self._pooled(*self._last_inputs)
                predictions = self._with_verdicts(out, predictions, embedding)
                # Pooled weights per row: [text null, L padded tokens, image null, 49 patches].
                length = max(1, max(f.states.shape[0] for f in texts))
                for row, (item, feats) in enumerate(zip(batch, texts, strict=True)):
                    result.append(
                        self._explanation(out, row, length, item, feats, predictions[row])
                    )
        return result

    def _explanation(
        self,
        out: ModelOutput,
        row: int,
        length: int,
        item: ProductInput,
        feats: TextFeatures,
        prediction: Prediction,
    ) -> Explanation:
        n_tokens = feats.states.shape[0]
        cells = 7 * 7
        has_image = item.image is not None
        if out.pool_weights is not None:
            w = out.pool_weights[row].float().cpu()
            token_w = w[1 : 1 + n_tokens]
            region_w = w[length + 2 :] if has_image else torch.zeros(cells)
        else:
            token_w = torch.ones(n_tokens)
            sal = out.patch_saliency
            region_w = (
                sal[row].float().cpu() if (sal is not None and has_image) else torch.zeros(cells)
            )
        word_w = [0.0] * len(feats.words)
        for weight, word in zip(token_w.tolist(), feats.token_word, strict=True):
            if word >= 0:
                word_w[word] += weight
        text_mass = sum(word_w) if self.model.uses_text() else 0.0
        image_mass = float(region_w.sum()) if self.model.uses_image() else 0.0
        if out.pool_weights is None:  # no attention: equal shares between present modalities
            text_mass = 1.0 if text_mass > 0 else 0.0
            image_mass = 1.0 if image_mass > 0 else 0.0
        word_total = sum(word_w)
        tokens = (
            tuple((word, w / word_total) for word, w in zip(feats.words, word_w, strict=True))
            if text_mass > 0 and word_total > 0
            else ()
        )
        region_total = float(region_w.sum())
        grid = (region_w / region_total if region_total > 0 else torch.zeros(cells)).view(7, 7)
        regions = tuple(tuple(float(v) for v in cells_row) for cells_row in grid.tolist())
        total = text_mass + image_mass
        modality = (
            {"text": text_mass / total, "image": image_mass / total}
            if total > 0
            else {"text": 0.0, "image": 0.0}
        )
        return Explanation(prediction, tokens, regions, modality)
