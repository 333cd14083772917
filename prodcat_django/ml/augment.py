"""Crop and colour augmentation of product photos, with Pillow only (no torch, no torchvision).

A view ``aug<k>`` of an image is one fixed random draw, seeded by ``k`` and the image bytes, so
it can be encoded once and cached like the plain and mirrored views: training then picks one of
the cached views per product and epoch, at no encoder cost. The draw, in the spirit of
torchvision's ``RandomResizedCrop(scale=(0.6, 1))`` + ``ColorJitter(0.25, 0.25, 0.25)`` +
``RandomHorizontalFlip``: a crop of 60-100% of the area with aspect ratio 3/4-4/3, brightness,
contrast and saturation factors in [0.75, 1.25], mirrored half of the time. The crop is taken
from the photo before letterboxing, so the product is zoomed, not the white border.

Why not torchvision's transforms v2: torchvision 0.28.0's compiled ops do not load with the CPU
torch 2.13.0 pinned here (pytorch/vision#9085), and each augmented view has to go through the
frozen encoder anyway, so per-batch GPU-style transforms would buy nothing on cached features.
"""

from __future__ import annotations

import math
import random
import re

from PIL import Image, ImageEnhance

__all__ = ["AUG_VIEW", "augment", "is_view"]

AUG_VIEW = re.compile(r"aug([1-9][0-9]?)")


def is_view(view: str) -> bool:
    """``orig``, ``flip`` or ``aug1`` .. ``aug99``."""
    return view in ("orig", "flip") or AUG_VIEW.fullmatch(view) is not None


def augment(image: Image.Image, seed: int) -> Image.Image:
    """One seeded random crop + colour jitter (+ mirror) of ``image`` (RGB)."""
    rng = random.Random(seed)
    width, height = image.size
    area = width * height
    box = (0, 0, width, height)
    for _ in range(10):  # RandomResizedCrop's rejection sampling; the full image if none fits
        target = area * rng.uniform(0.6, 1.0)
        ratio = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
        w, h = round(math.sqrt(target * ratio)), round(math.sqrt(target / ratio))
        if 0 < w <= width and 0 < h <= height:
            left, top = rng.randint(0, width - w), rng.randint(0, height - h)
            box = (left, top, left + w, top + h)
            break
    out = image.crop(box)
    for enhancer in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
        out = enhancer(out).enhance(rng.uniform(0.75, 1.25))
    if rng.random() < 0.5:
        out = out.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return out
