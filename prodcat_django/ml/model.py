"""The trainable part: image tail, fusion (text / image / concat / attention) and classifier.

Inputs are the cached encoder outputs: title token states ``(B, T, Dt)`` with a ``(B, T)`` mask
(True = real token) and the image map ``(B, C, 7, 7)`` with a ``(B,)`` presence flag. All four
fusions share the image tail and the training loop; only the fusion differs:

- ``text`` / ``image``: one mean-pooled modality -> MLP.
- ``concat``: both pooled vectors concatenated -> MLP (the paper's "traditional multimodal").
- ``attention``: token-by-patch cross-attention in both directions, then attention pooling over
  all tokens and patches. Each modality's sequence starts with a learned "null" token that is
  always attendable, so an absent image or empty title never gives an all-masked softmax.
"""

from __future__ import annotations

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
        for module in self.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
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
            return self._attend(text, text_mask, patches, image_present)
        pooled = []
        if self.uses_text():
            weights = text_mask.unsqueeze(-1).float()
            mean = (text * weights).sum(1) / weights.sum(1).clamp(min=1.0)
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
