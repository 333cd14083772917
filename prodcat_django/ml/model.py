"""The trainable part: image tail, fusion (text / image / concat / attention) and classifier.

Inputs are the cached encoder outputs: title token states ``(B, T, Dt)`` with a ``(B, T)`` mask
(True = real token) and the image map ``(B, C, 7, 7)`` with a ``(B,)`` presence flag. All four
fusions share the image tail and the training loop; only the fusion differs:

- ``text`` / ``image``: one mean-pooled modality -> MLP.
- ``concat``: both pooled vectors concatenated -> MLP (the paper's "traditional multimodal").
- ``attention``: token-by-patch cross-attention in both directions, then attention pooling over
  all tokens and patches. Each modality's sequence starts with a learned "null" token that is
  always attendable, so an absent image or empty title never gives an all-masked softmax.

Two ensembles, both chosen on validation by the training code:

- ``aux_heads`` (attention only): a linear image-only head on the pooled fine-tuned map and a
  linear title-only head on the mean-pooled tokens, trained jointly with the attention head.
  The output is the weighted mean of the present members' log-probabilities (weight
  ``aux_weight`` per auxiliary head), so a photo alone or a title alone is judged by two models.
- ``FusionEnsemble``: several independently trained models (seeds) whose log-probabilities
  are averaged; ``build_model`` picks it when the config lists ``members``.

And one around either of them, also chosen on validation: ``ProbeEnsemble`` mixes the model's
log-probabilities with those of a ``ProbeHead`` (logistic regressions on the frozen, pooled,
L2-normalised encoder features: the issue's probe baseline, in the checkpoint), one weight per
input condition (title + photo, photo only, title only); ``build_model`` picks it when the
config has ``model.probe``.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from prodcat_django.ml.encoders import EFFICIENTNET_SPLIT_BLOCK, load_efficientnet_lite0

FUSIONS = ("text", "image", "concat", "attention")


@dataclass
class ModelOutput:
    logits: torch.Tensor  # (B, num_labels)
    # attention only: pooling weights over [text null, tokens..., image null, patches...]
    pool_weights: torch.Tensor | None = None
    # non-attention models: per-patch activation norms, a class-agnostic saliency (B, 49)
    patch_saliency: torch.Tensor | None = None
    # aux_heads models: each member's raw logits ("main", "image", "text"), for the training loss
    members: dict[str, torch.Tensor] | None = None


class ImageTail(nn.Module):
    """The trainable end of the image encoder: cached map -> (B, out_channels, 7, 7)."""

    def __init__(self, spec: dict[str, Any], pretrained: bool) -> None:
        super().__init__()
        self.kind = spec["kind"]
        if self.kind == "efficientnet-lite0":
            if pretrained:
                net = load_efficientnet_lite0()
            else:  # the weights come from the checkpoint
                from efficientnet_lite_pytorch import EfficientNet

                net = EfficientNet.from_name("efficientnet-lite0")
            self.block = net._blocks[EFFICIENTNET_SPLIT_BLOCK]
            self.conv_head, self.bn = net._conv_head, net._bn1
            self.out_channels = int(net._bn1.num_features)
        elif self.kind == "tiny-random":
            self.block = nn.Identity()
            self.conv_head = nn.Conv2d(int(spec["channels"]), int(spec["out_channels"]), 1)
            self.bn = nn.Identity()
            self.out_channels = int(spec["out_channels"])
        else:
            raise ValueError(f"unknown image encoder kind {self.kind!r}")

    def train(self, mode: bool = True) -> ImageTail:
        # BatchNorm statistics stay the pretrained ones: a few thousand products would only
        # make them noisier. Only the weights are fine-tuned.
        super().train(mode)
        self._memo = None  # weights may change from here on (or just did)
        for module in self.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # At inference the predictor runs the model up to three times on the same image batch
        # (the prediction, then title-only and image-only for the out-of-taxonomy verdict):
        # the tail, the costly part, runs once per batch. Keyed by the tensor itself and its
        # in-place version counter (inference tensors have none: the predictor never writes
        # to its inputs), kept only outside training and autograd.
        if self.training or torch.is_grad_enabled():
            return self._run(x)
        version = None if x.is_inference() else x._version
        memo = getattr(self, "_memo", None)
        if memo is not None and memo[0] is x and memo[1] == version:
            return memo[2]
        out = self._run(x)
        self._memo = (x, version, out)
        return out

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu6(self.bn(self.conv_head(self.block(x))))


class CrossLayer(nn.Module):
    """Text tokens attend over image patches and patches over tokens (pre-norm, residual)."""

    def __init__(self, width: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.norm_t, self.norm_i = nn.LayerNorm(width), nn.LayerNorm(width)
        self.t_from_i = nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)
        self.i_from_t = nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)
        self.ffn_t = _ffn(width, dropout)
        self.ffn_i = _ffn(width, dropout)

    def forward(self, t, i, t_pad, i_pad):  # pads: True = ignore
        nt, ni = self.norm_t(t), self.norm_i(i)
        t = t + self.t_from_i(nt, ni, ni, key_padding_mask=i_pad, need_weights=False)[0]
        i = i + self.i_from_t(ni, nt, nt, key_padding_mask=t_pad, need_weights=False)[0]
        return t + self.ffn_t(t), i + self.ffn_i(i)


def _ffn(width: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.LayerNorm(width),
        nn.Linear(width, 2 * width),
        nn.GELU(),
        nn.Dropout(dropout),
        nn.Linear(2 * width, width),
        nn.Dropout(dropout),
    )


def _linear_head(in_dim: int, out_dim: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.LayerNorm(in_dim), nn.Dropout(dropout), nn.Linear(in_dim, out_dim))


def _mean_tokens(text: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
    weights = text_mask.unsqueeze(-1).float()
    return (text * weights).sum(1) / weights.sum(1).clamp(min=1.0)


def _mlp(in_dim: int, width: int, out_dim: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.LayerNorm(in_dim),
        nn.Dropout(dropout),
        nn.Linear(in_dim, width),
        nn.GELU(),
        nn.Dropout(dropout),
        nn.Linear(width, out_dim),
    )


class FusionModel(nn.Module):
    def __init__(self, config: dict[str, Any], *, pretrained_tail: bool = False) -> None:
        super().__init__()
        m = config["model"]
        self.fusion = m["fusion"]
        if self.fusion not in FUSIONS:
            raise ValueError(
                f"unknown fusion {self.fusion!r}; expected one of {', '.join(FUSIONS)}"
            )
        text_dim = self.text_dim = int(config["text_encoder"]["dim"])
        self.max_tokens = int(config["text_encoder"].get("max_tokens", 32))
        width, dropout, n = int(m["width"]), float(m.get("dropout", 0.1)), int(m["num_labels"])
        self.grid = int(config["image_encoder"].get("grid", 7))
        # A text-only model stores no image weights at all.
        self.image_tail = (
            ImageTail(config["image_encoder"], pretrained=pretrained_tail)
            if self.fusion != "text"
            else None
        )
        image_dim = self.image_tail.out_channels if self.image_tail is not None else 0
        if self.fusion == "attention":
            self.text_proj = nn.Sequential(nn.LayerNorm(text_dim), nn.Linear(text_dim, width))
            self.image_proj = nn.Sequential(nn.LayerNorm(image_dim), nn.Linear(image_dim, width))
            self.text_pos = nn.Parameter(torch.randn(self.max_tokens + 1, width) * 0.02)
            self.image_pos = nn.Parameter(torch.randn(self.grid * self.grid + 1, width) * 0.02)
            self.modality = nn.Parameter(torch.randn(2, width) * 0.02)
            self.text_null = nn.Parameter(torch.randn(width) * 0.02)
            self.image_null = nn.Parameter(torch.randn(width) * 0.02)
            self.layers = nn.ModuleList(
                CrossLayer(width, int(m.get("heads", 4)), dropout)
                for _ in range(int(m.get("layers", 1)))
            )
            self.pool_norm = nn.LayerNorm(width)
            self.pool_query = nn.Parameter(torch.randn(1, 1, width) * 0.02)
            self.pool = nn.MultiheadAttention(width, int(m.get("heads", 4)), batch_first=True)
            self.head = _mlp(width, width, n, dropout)
            if m.get("aux_heads"):
                self.aux_image = _linear_head(image_dim, n, dropout)
                self.aux_text = _linear_head(text_dim, n, dropout)
                # Chosen on validation after training; a buffer, so the checkpoint carries it.
                self.register_buffer("aux_weight", torch.tensor(1.0))
        else:
            # A learned stand-in for a missing modality's pooled vector.
            self.text_missing = nn.Parameter(torch.zeros(text_dim))
            if self.uses_image():
                self.image_missing = nn.Parameter(torch.zeros(image_dim))
            in_dim = {"text": text_dim, "image": image_dim, "concat": text_dim + image_dim}[
                self.fusion
            ]
            self.head = _mlp(in_dim, width, n, dropout)

    def uses_text(self) -> bool:
        return self.fusion != "image"

    def uses_image(self) -> bool:
        return self.fusion != "text"

    def forward(
        self,
        text: torch.Tensor,
        text_mask: torch.Tensor,
        image: torch.Tensor,
        image_present: torch.Tensor,
        *,
        tail_applied: bool = False,
    ) -> ModelOutput:
        """``tail_applied``: ``image`` is already ``image_tail``'s output (evaluation reuses it)."""
        text, text_mask = text[:, : self.max_tokens], text_mask[:, : self.max_tokens]
        patches = None
        if self.uses_image():
            fmap = image if tail_applied else self.image_tail(image)  # (B, C, 7, 7)
            patches = fmap.flatten(2).transpose(1, 2)  # (B, 49, C), row-major from top-left
        if self.fusion == "attention":
            out = self._attend(text, text_mask, patches, image_present)
            if hasattr(self, "aux_image"):
                out = self._with_aux(out, text, text_mask, patches, image_present)
            return out
        pooled = []
        if self.uses_text():
            mean = _mean_tokens(text, text_mask)
            has_text = text_mask.any(1, keepdim=True)
            pooled.append(torch.where(has_text, mean, self.text_missing.expand_as(mean)))
        saliency = None
        if patches is not None:
            mean = patches.mean(1)
            pooled.append(
                torch.where(image_present[:, None], mean, self.image_missing.expand_as(mean))
            )
            saliency = patches.norm(dim=-1) * image_present[:, None]
        return ModelOutput(self.head(torch.cat(pooled, dim=-1)), patch_saliency=saliency)

    def _with_aux(self, out, text, text_mask, patches, image_present) -> ModelOutput:
        """Weighted mean of the log-probabilities of the attention and the present aux heads."""
        image_logits = self.aux_image(patches.mean(1))
        text_logits = self.aux_text(_mean_tokens(text, text_mask))
        w_image = self.aux_weight * image_present.float()[:, None]
        w_text = self.aux_weight * text_mask.any(1).float()[:, None]
        combined = (
            F.log_softmax(out.logits, -1)
            + w_image * F.log_softmax(image_logits, -1)
            + w_text * F.log_softmax(text_logits, -1)
        ) / (1.0 + w_image + w_text)
        members = {"main": out.logits, "image": image_logits, "text": text_logits}
        return ModelOutput(combined, pool_weights=out.pool_weights, members=members)

    def _attend(self, text, text_mask, patches, image_present) -> ModelOutput:
        b, length = text.shape[:2]
        t = self.text_proj(text) + self.text_pos[1 : length + 1] + self.modality[0]
        i = self.image_proj(patches) + self.image_pos[1:] + self.modality[1]
        t_null = (self.text_null + self.text_pos[0] + self.modality[0]).expand(b, 1, -1)
        i_null = (self.image_null + self.image_pos[0] + self.modality[1]).expand(b, 1, -1)
        t = torch.cat([t_null, t], dim=1)
        i = torch.cat([i_null, i], dim=1)
        always = torch.zeros(b, 1, dtype=torch.bool, device=text.device)
        t_pad = torch.cat([always, ~text_mask], dim=1)
        i_pad = torch.cat([always, (~image_present)[:, None].expand(b, i.shape[1] - 1)], dim=1)
        for layer in self.layers:
            t, i = layer(t, i, t_pad, i_pad)
        tokens = self.pool_norm(torch.cat([t, i], dim=1))
        pooled, weights = self.pool(
            self.pool_query.expand(b, -1, -1),
            tokens,
            tokens,
            key_padding_mask=torch.cat([t_pad, i_pad], dim=1),
            need_weights=True,
            average_attn_weights=True,
        )
        return ModelOutput(self.head(pooled[:, 0]), pool_weights=weights[:, 0])


class FusionEnsemble(nn.Module):
    """Independently trained models of one architecture; log-probabilities averaged.

    Quacks like a ``FusionModel`` for the predictor and the evaluation code: the same inputs,
    a ``ModelOutput`` whose pooling weights / saliency are the members' mean.
    """

    def __init__(self, config: dict[str, Any], *, pretrained_tail: bool = False) -> None:
        super().__init__()
        count = int(config["model"]["members"])
        if count < 2:
            raise ValueError(f"an ensemble needs at least 2 members, config lists {count}")
        member = {**config, "model": {k: v for k, v in config["model"].items() if k != "members"}}
        self.members = nn.ModuleList(
            FusionModel(member, pretrained_tail=pretrained_tail) for _ in range(count)
        )
        first = self.members[0]
        self.fusion, self.text_dim, self.max_tokens = first.fusion, first.text_dim, first.max_tokens

    def uses_text(self) -> bool:
        return self.members[0].uses_text()

    def uses_image(self) -> bool:
        return self.members[0].uses_image()

    def forward(self, text, text_mask, image, image_present, *, tail_applied=False) -> ModelOutput:
        outs = [m(text, text_mask, image, image_present) for m in self.members]
        logits = torch.stack([F.log_softmax(o.logits, -1) for o in outs]).mean(0)

        def mean_of(name: str) -> torch.Tensor | None:
            values = [getattr(o, name) for o in outs]
            return None if values[0] is None else torch.stack(values).mean(0)

        return ModelOutput(
            logits, pool_weights=mean_of("pool_weights"), patch_saliency=mean_of("patch_saliency")
        )


def ensemble_of(
    config: dict[str, Any], models: Sequence[FusionModel]
) -> tuple[FusionEnsemble, dict[str, Any]]:
    """The ensemble of already trained ``models`` (all of ``config``'s architecture), in eval
    mode, and its config (``config`` with ``members`` set)."""
    config = copy.deepcopy(config)
    config["model"]["members"] = len(models)
    ensemble = FusionEnsemble(config)
    for slot, model in zip(ensemble.members, models, strict=True):
        slot.load_state_dict(model.state_dict())
    return ensemble.eval(), config


PROBE_CONDITIONS = ("both", "image", "text")  # which modalities a product has


def _l2_rows(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True).clamp(min=1e-12)  # an all-zero row stays zero


class ProbeHead(nn.Module):
    """Logistic regressions on frozen pooled features, one per input condition.

    Features as the probe baseline defines them: the mean-pooled title token states (the
    sentence embedding) and the global-average-pooled map of the *pretrained* image tail (a
    frozen copy, so fine-tuning the model's own tail does not move it), each L2-normalised.
    ``both`` sees the two concatenated, ``image`` and ``text`` one each; a product is routed
    by the modalities it has. ``weights`` holds each condition's share in ``ProbeEnsemble``.
    """

    def __init__(self, config: dict[str, Any], *, pretrained_tail: bool = False) -> None:
        super().__init__()
        probe, n = config["model"]["probe"], int(config["model"]["num_labels"])
        self.heads = tuple(h for h in PROBE_CONDITIONS if h in probe["heads"])
        if not self.heads:
            raise ValueError("a probe needs at least one of the heads both, image, text")
        self.text_dim = int(config["text_encoder"]["dim"])
        self.max_tokens = int(config["text_encoder"].get("max_tokens", 32))
        uses_image = any(h in ("both", "image") for h in self.heads)
        self.tail = (
            ImageTail(config["image_encoder"], pretrained=pretrained_tail) if uses_image else None
        )
        image_dim = self.tail.out_channels if self.tail is not None else 0
        dims = {"both": self.text_dim + image_dim, "image": image_dim, "text": self.text_dim}
        self.linear = nn.ModuleDict({h: nn.Linear(dims[h], n) for h in self.heads})
        self.register_buffer("weights", torch.zeros(len(PROBE_CONDITIONS)))
        for p in self.parameters():
            p.requires_grad_(False)  # fitted in closed form by prodcat_django.ml.probe

    def train(self, mode: bool = True) -> ProbeHead:
        return super().train(False)  # frozen: no dropout, pretrained BatchNorm statistics

    @torch.no_grad()
    def features(self, text, text_mask, image, image_present):
        """L2-normalised pooled title (B, Dt) and image (B, C) vectors (None: no image head)."""
        text, text_mask = text[:, : self.max_tokens], text_mask[:, : self.max_tokens]
        pooled_text = _l2_rows(_mean_tokens(text.float(), text_mask))
        pooled_image = None
        if self.tail is not None:
            fmap = self.tail(image.float()).mean((2, 3)) * image_present.float()[:, None]
            pooled_image = _l2_rows(fmap)
        return pooled_text, pooled_image

    @staticmethod
    def condition_index(text_mask: torch.Tensor, image_present: torch.Tensor) -> torch.Tensor:
        """(B,) index into PROBE_CONDITIONS; -1 for a product with neither modality."""
        has_text, has_image = text_mask.any(1), image_present.bool()
        index = torch.full_like(has_text, -1, dtype=torch.long)
        index[has_text & has_image] = 0
        index[~has_text & has_image] = 1
        index[has_text & ~has_image] = 2
        return index

    @torch.no_grad()
    def forward(self, text, text_mask, image, image_present) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (B, n) of each product's condition head, and the condition index (B,)."""
        t, i = self.features(text, text_mask, image, image_present)
        index = self.condition_index(text_mask[:, : self.max_tokens], image_present)
        n = next(iter(self.linear.values())).out_features
        logits = torch.zeros(text.shape[0], n, device=text.device)
        inputs = {"both": lambda: torch.cat([t, i], -1), "image": lambda: i, "text": lambda: t}
        for k, head in enumerate(PROBE_CONDITIONS):
            rows = index == k
            if head in self.linear and rows.any():
                logits[rows] = self.linear[head](inputs[head]()[rows])
        return logits, index


class ProbeEnsemble(nn.Module):
    """A trained model and a ``ProbeHead``: per condition, (1 - w) * model + w * probe
    log-probabilities, w from ``probe.weights`` (0 where the probe has no head for it).

    Quacks like the wrapped model (explanations still come from its attention / saliency)."""

    def __init__(self, base: FusionModel | FusionEnsemble, probe: ProbeHead) -> None:
        super().__init__()
        self.base, self.probe = base, probe
        self.fusion, self.text_dim, self.max_tokens = base.fusion, base.text_dim, base.max_tokens

    def uses_text(self) -> bool:
        return self.base.uses_text()

    def uses_image(self) -> bool:
        return self.base.uses_image()

    def condition_weights(self, text_mask, image_present) -> torch.Tensor:
        index = ProbeHead.condition_index(text_mask[:, : self.max_tokens], image_present)
        has_head = torch.tensor([h in self.probe.linear for h in PROBE_CONDITIONS])
        w = (self.probe.weights * has_head.to(self.probe.weights)).float()[index.clamp(min=0)]
        return torch.where(index >= 0, w, torch.zeros_like(w))

    def forward(self, text, text_mask, image, image_present, *, tail_applied=False) -> ModelOutput:
        if not bool(self.probe.weights.any()):
            # Validation gave the probe no share under any condition: the base model's output
            # is the ensemble's, without the probe's frozen image tail (a third tail pass).
            return self.base(text, text_mask, image, image_present, tail_applied=tail_applied)
        if tail_applied:
            raise ValueError("the probe head needs the cached block input, not the tail's output")
        out = self.base(text, text_mask, image, image_present)
        logits = F.log_softmax(out.logits.float(), -1)
        w = self.condition_weights(text_mask, image_present)
        rows = w > 0
        # The probe runs only on the products whose condition gives it a share: with a photo-only
        # weight alone (the shipped 1.3.0), a product with title and photo never pays its tail.
        if bool(rows.any()):
            probe_logits, _ = self.probe(
                text[rows], text_mask[rows], image[rows], image_present[rows]
            )
            share = w[rows][:, None]
            logits[rows] = (1 - share) * logits[rows] + share * F.log_softmax(probe_logits, -1)
        return ModelOutput(
            logits,
            pool_weights=out.pool_weights,
            patch_saliency=out.patch_saliency,
            members=out.members,
        )


def build_model(
    config: dict[str, Any], *, pretrained_tail: bool = False
) -> FusionModel | FusionEnsemble | ProbeEnsemble:
    """The model a config.json describes: one ``FusionModel``, an ensemble of ``members``,
    either of them with a ``ProbeHead`` when the config has ``model.probe``."""
    if "probe" in config["model"]:
        base_config = {
            **config,
            "model": {k: v for k, v in config["model"].items() if k != "probe"},
        }
        base = build_model(base_config, pretrained_tail=pretrained_tail)
        return ProbeEnsemble(base, ProbeHead(config, pretrained_tail=pretrained_tail))
    if int(config["model"].get("members", 1)) > 1:
        return FusionEnsemble(config, pretrained_tail=pretrained_tail)
    return FusionModel(config, pretrained_tail=pretrained_tail)
