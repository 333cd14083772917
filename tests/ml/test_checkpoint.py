import json

import pytest

from prodcat_django.ml.manifest import (
    CheckpointError,
    read_checkpoint,
    verify_checkpoint,
    write_manifest,
)
from prodcat_django.ml.predictor import Predictor

from .conftest import LABELS


def test_valid_checkpoint_verifies(tiny_checkpoint):
    info = verify_checkpoint(tiny_checkpoint)
    assert info.labels == LABELS
    assert (info.name, info.version) == ("tiny", "0.0.1")
    assert info.temperature == 1.0 and info.threshold == 0.5
    manifest = json.loads((tiny_checkpoint / "manifest.json").read_text())
    assert set(manifest["files"]) == {"config.json", "labels.json", "weights.safetensors"}


@pytest.mark.parametrize("name", ["weights.safetensors", "config.json", "labels.json"])
def test_flipped_byte_is_refused(tiny_checkpoint, name):
    path = tiny_checkpoint / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=f"{name}.*(sha256 mismatch|not valid JSON)"):
        Predictor.load(tiny_checkpoint)


def test_label_count_mismatch_is_refused(tiny_checkpoint):
    (tiny_checkpoint / "labels.json").write_text(json.dumps([*LABELS, "Extra"]))
    with pytest.raises(
        CheckpointError, match=r"4 labels, but config.json's model has num_labels=3"
    ):
        read_checkpoint(tiny_checkpoint)
    # Even with the manifest rehashed, the weights do not fit four labels.
    config = json.loads((tiny_checkpoint / "config.json").read_text())
    config["model"]["num_labels"] = 4
    (tiny_checkpoint / "config.json").write_text(json.dumps(config))
    manifest = json.loads((tiny_checkpoint / "manifest.json").read_text())
    manifest.pop("files")
    manifest["num_labels"] = 4
    write_manifest(tiny_checkpoint, {k: v for k, v in manifest.items() if k != "format"})
    with pytest.raises(CheckpointError, match="shape"):
        Predictor.load(tiny_checkpoint)


def test_unlisted_weight_file_is_refused(tiny_checkpoint):
    (tiny_checkpoint / "extra.safetensors").write_bytes(b"x")
    with pytest.raises(CheckpointError, match=r"extra\.safetensors: weight file not listed"):
        verify_checkpoint(tiny_checkpoint)


def test_missing_file_and_folder_are_refused(tiny_checkpoint, tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint folder"):
        read_checkpoint(tmp_path / "absent")
    (tiny_checkpoint / "weights.safetensors").unlink()
    with pytest.raises(
        CheckpointError, match=r"weights\.safetensors: listed in manifest.json but missing"
    ):
        verify_checkpoint(tiny_checkpoint)


def test_unsupported_format_is_refused(tiny_checkpoint):
    manifest = json.loads((tiny_checkpoint / "manifest.json").read_text())
    manifest["format"] = "something-else/9"
    (tiny_checkpoint / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="unsupported format"):
        read_checkpoint(tiny_checkpoint)
