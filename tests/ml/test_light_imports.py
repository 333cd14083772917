"""The web process imports manifest and images; they must not drag torch in."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "module", ["prodcat_django.ml.manifest", "prodcat_django.ml.images", "prodcat_django.ml"]
)
def test_module_does_not_import_torch(module: str) -> None:
    code = f"import sys, {module}; print('torch' in sys.modules, 'django' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["False", "False"], result.stdout + result.stderr
