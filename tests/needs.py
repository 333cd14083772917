"""One rule for tests that need something outside the repository (a service, a browser).

Where it is missing they skip and say what to start, except under ``CI=true``, where a missing
service must fail the run: a green CI that silently skipped its end-to-end tests proves nothing.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def is_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def missing(message: str) -> NoReturn:
    """Skip with ``message``, or fail with it under ``CI=true``."""
    if is_ci():
        pytest.fail(f"{message} (CI=true: required, not skipped)", pytrace=False)
    pytest.skip(message)
