"""calibrate-ood, evaluate's out_of_taxonomy and learning-curve on tiny CSVs of drawn images."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from prodcat_django.ml.cli import main
from prodcat_django.ml.manifest import verify_checkpoint
from prodcat_django.ml.predictor import Predictor, ProductInput
from prodcat_django.ml.testing import build_random_checkpoint

from .conftest import drawn_image
from .test_cli import write_csv


def write_outside(folder: Path, rows: int = 12) -> Path:
    """Products of categories the model does not know (and one of a label it does)."""
    records = []
    for n in range(rows):
        image = f"images/outside-{n}.png"
        drawn_image("triangle", "yellow", (90, 20 + n)).save(folder / image)
        label = "Lamps" if n % 2 else "Mugs"
        records.append({"id": f"o{n}", "title": f"qzx wlv {n}", "label": label, "image": image})
    records.append({"id": "known", "title": "Acme navy shirt", "label": "Shirts", "image": ""})
    path = folder / "outside.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["id", "title", "label", "image"])
        writer.writeheader()
        writer.writerows(records)
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli-ood")
    train_csv = write_csv(root, "train", 36, seed=0)
    val_csv = write_csv(root, "val", 24, seed=1)
    out = root / "ckpt" / "tiny-ood" / "1.0.0"
    argv = [
        "train", "--train", str(train_csv), "--val", str(val_csv), "--out", str(out),
        "--encoders", "tiny-random", "--width", "16", "--heads", "2", "--epochs", "6",
        "--batch-size", "8", "--lr", "1e-2", "--cache", str(root / "cache"), "--quiet", "--json",
    ]  # fmt: skip
    assert main(argv) == 0
    return root, out, train_csv, val_csv


def test_calibrate_ood_writes_a_hashed_copy_with_a_new_version(trained, capsys):
    root, ckpt, train_csv, val_csv = trained
    outside = write_outside(root)
    out = root / "ckpt" / "tiny-ood" / "1.0.1"
    argv = [
        "calibrate-ood", "--checkpoint", str(ckpt), "--data", str(train_csv), str(val_csv),
        "--outside", str(outside), "--out", str(out), "--version", "1.0.1",
        "--test-inside", str(val_csv), "--test-outside", str(outside),
        "--cache", str(root / "cache"), "--quiet", "--json",
    ]  # fmt: skip
    # Training already attached the default detector (no outside data there to choose on).
    trained_meta = json.loads((ckpt / "ood.json").read_text())
    assert trained_meta["method"] == "class_mean" and trained_meta["val_flagged_rate"] <= 0.05
    before = (ckpt / "manifest.json").read_text()
    capsys.readouterr()
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    info = verify_checkpoint(out)
    assert info.version == "1.0.1"
    assert verify_checkpoint(ckpt).version == "1.0.0"  # the original is untouched
    assert (ckpt / "manifest.json").read_text() == before
    methods = {row["method"] for row in result["candidates"]}
    assert methods == {"knn", "class_mean", "energy", "max_logit", "msp"}
    assert result["val"]["inside"]["flagged"] <= 0.05
    assert result["val"]["outside"]["n"] == 12  # the Shirts row is not "outside"
    assert 0.0 <= result["test"]["auroc"] <= 1.0
    meta = json.loads((out / "ood.json").read_text())
    assert meta["method"] == result["method"] and meta["command"].startswith("python -m")
    predictor = Predictor.load(out, device="cpu")
    assert predictor.ood is not None
    assert predictor.ood.embedding_id == predictor.embedding_id
    [p] = predictor.predict([ProductInput("qzx wlv", drawn_image("triangle", "yellow", (90, 20)))])
    assert p.ood_threshold == pytest.approx(result["threshold"])

    # evaluate reports the verdict's threshold and share flagged, JSON and readable.
    capsys.readouterr()
    evaluate = ["evaluate", "--data", str(outside), "--checkpoint", str(out)]
    common = ["--cache", str(root / "cache"), "--quiet"]
    assert main([*evaluate, *common, "--json"]) == 0
    ood = json.loads(capsys.readouterr().out)["out_of_taxonomy"]
    assert ood["threshold"] == pytest.approx(result["threshold"])
    assert 0.0 <= ood["rate"] <= 1.0 and "rate_unknown_labels" in ood
    assert main([*evaluate, *common]) == 0
    assert "out of taxonomy (" in capsys.readouterr().out
    plain = build_random_checkpoint(root / "plain", ["Heels", "Shirts", "Watches"])
    assert main(["evaluate", "--data", str(val_csv), "--checkpoint", str(plain), *common]) == 0
    assert "no detector in this checkpoint" in capsys.readouterr().out


def test_calibrate_ood_refuses_unclear_targets(trained, capsys):
    root, ckpt, train_csv, val_csv = trained
    base = ["calibrate-ood", "--checkpoint", str(ckpt), "--data", str(train_csv), str(val_csv)]
    assert main([*base, "--cache", str(root / "cache"), "--quiet"]) == 2
    assert "--out DIR (a copy) or --in-place" in capsys.readouterr().err
    assert main([*base, "--out", str(ckpt), "--quiet"]) == 2
    assert "not empty" in capsys.readouterr().err


def test_learning_curve_command(trained, capsys):
    root, _, train_csv, val_csv = trained
    capsys.readouterr()
    argv = [
        "learning-curve", "--train", str(train_csv), "--val", str(val_csv), "--test",
        str(val_csv), "--shots", "0", "3", "--seeds", "2", "--checkpoint",
        str(trained[1]), "--cache", str(root / "cache"), "--quiet", "--json",
    ]  # fmt: skip
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    for mode in ("text", "title+photo", "class_mean (reference)"):
        points = result["modes"][mode]["test"]
        assert set(points) == {"0", "3"}
        assert all(0.0 <= p["mean"] <= 1.0 for p in points.values())
    assert result["modes"]["title+photo"]["test"]["3"]["mean"] > 1 / 3  # better than chance
