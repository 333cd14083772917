"""Helpers of the tests that use the test shop's database: a per-test media root (autouse
in each conftest.py that imports it), pictures drawn by Pillow, and users with exactly the
permissions a test needs. The ``categories`` and ``make_product`` fixtures are in
tests/conftest.py."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from PIL import Image, ImageDraw


@pytest.fixture(autouse=True)
def media_root(settings: Any, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


def png_bytes(color: str = "red", size: tuple[int, int] = (64, 48), fmt: str = "PNG") -> bytes:
    """A small picture: a coloured background with a white ellipse."""
    image = Image.new("RGB", size, color)
    ImageDraw.Draw(image).ellipse((8, 8, size[0] - 8, size[1] - 8), fill="white")
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def make_user(username: str, *codenames: str, **fields: Any) -> User:
    """A user (password "pw") with exactly these permissions; ``fields`` such as is_staff."""
    user = User.objects.create_user(username, password="pw", **fields)
    for codename in codenames:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    return User.objects.get(pk=user.pk)  # fresh: no stale permission cache
