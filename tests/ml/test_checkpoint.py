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
    with pytest.raises(CheckpointError, match=r"head has 3 outputs, but .* say 4 labels"):
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


def _rehash(checkpoint):
    """Rewrite manifest.json over the files as they are now (what an attacker or a careless
    copy script would do), keeping its other fields."""
    manifest = json.loads((checkpoint / "manifest.json").read_text())
    manifest.pop("files")
    write_manifest(checkpoint, {k: v for k, v in manifest.items() if k != "format"})


def _truncate(checkpoint):
    weights = checkpoint / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])


def _pickle_as_safetensors(checkpoint):
    import pickle

    (checkpoint / "weights.safetensors").write_bytes(pickle.dumps({"head.5.weight": [1.0] * 64}))


def _fewer_labels_everywhere(checkpoint):
    labels = json.loads((checkpoint / "labels.json").read_text())[:-1]
    (checkpoint / "labels.json").write_text(json.dumps(labels))
    config = json.loads((checkpoint / "config.json").read_text())
    config["model"]["num_labels"] = len(labels)
    (checkpoint / "config.json").write_text(json.dumps(config))
    manifest = json.loads((checkpoint / "manifest.json").read_text())
    manifest["num_labels"] = len(labels)
    (checkpoint / "manifest.json").write_text(json.dumps(manifest))


BROKEN_WITH_A_REWRITTEN_MANIFEST = {
    "truncated": (_truncate, "truncated"),
    "pickle posing as safetensors": (_pickle_as_safetensors, "not a safetensors file"),
    "consistent label files, wider head": (_fewer_labels_everywhere, "head has 3 outputs"),
}


@pytest.mark.parametrize("case", sorted(BROKEN_WITH_A_REWRITTEN_MANIFEST))
def test_verify_refuses_what_the_loader_refuses(tiny_checkpoint, case):
    # The hashes match (the manifest was rewritten), so only the header check catches these;
    # verify_checkpoint is what manage.py check runs, without torch.
    damage, message = BROKEN_WITH_A_REWRITTEN_MANIFEST[case]
    damage(tiny_checkpoint)
    _rehash(tiny_checkpoint)
    with pytest.raises(CheckpointError, match=message):
        verify_checkpoint(tiny_checkpoint)
    with pytest.raises(CheckpointError):
        Predictor.load(tiny_checkpoint)


def test_weights_symlinked_from_outside_are_refused(tiny_checkpoint, tmp_path):
    outside = tmp_path / "elsewhere.safetensors"
    weights = tiny_checkpoint / "weights.safetensors"
    outside.write_bytes(weights.read_bytes())
    weights.unlink()
    weights.symlink_to(outside)
    with pytest.raises(CheckpointError, match=r"symlink .* outside the checkpoint folder"):
        verify_checkpoint(tiny_checkpoint)


def test_header_reader_lists_the_tensors(tiny_checkpoint):
    from prodcat_django.ml.manifest import read_weights_header

    tensors = read_weights_header(tiny_checkpoint / "weights.safetensors")
    assert tensors and all(isinstance(shape, tuple) for _dtype, shape in tensors.values())
    assert tensors["head.5.weight"][1][0] == len(LABELS)
