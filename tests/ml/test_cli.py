"""The command line end to end on a tiny CSV of drawn images: train, save, load, evaluate."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from prodcat_django.ml.cli import main
from prodcat_django.ml.manifest import verify_checkpoint
from prodcat_django.ml.predictor import Predictor, ProductInput

from .conftest import drawn_image

CLASSES = {
    "Shirts": ("square", "shirt"),
    "Watches": ("circle", "watch"),
    "Heels": ("triangle", "heels"),
}
BRANDS = ["Acme", "Nova", "Zest", "Orbit", "Pike", "Lumo"]
COLOURS = ["navy", "red", "green", "black"]


def write_csv(folder: Path, name: str, rows: int, *, seed: int, extra: list[dict] | None = None):
    (folder / "images").mkdir(parents=True, exist_ok=True)
    records = []
    for n in range(rows):
        label = list(CLASSES)[n % len(CLASSES)]
        shape, word = CLASSES[label]
        brand, colour = BRANDS[(n + seed) % len(BRANDS)], COLOURS[(n // 3 + seed) % len(COLOURS)]
        image = f"images/{name}-{n}.png"
        drawn_image(shape, colour, (40 + 4 * (n % 5), 40)).save(folder / image)
        records.append(
            {
                "id": f"{name}-{n}",
                "title": f"{brand} {colour} {word}",
                "title_terse": f"{brand} {colour}",
                "label": label,
                "image": image,
            }
        )
    records.extend(extra or [])
    path = folder / f"{name}.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["id", "title", "title_terse", "label", "image"])
        writer.writeheader()
        writer.writerows(records)
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("cli")
    train_csv = write_csv(root, "train", 36, seed=0)
    val_csv = write_csv(root, "val", 12, seed=1)
    out = root / "ckpt" / "tiny-cli" / "1.0.0"
    argv = [
        "train", "--train", str(train_csv), "--val", str(val_csv), "--test", str(val_csv),
        "--out", str(out), "--encoders", "tiny-random", "--width", "16", "--heads", "2",
        "--epochs", "12", "--batch-size", "8", "--lr", "1e-2", "--cache", str(root / "cache"),
        "--quiet", "--json",
    ]  # fmt: skip
    assert main(argv) == 0
    return root, out, val_csv


def test_train_writes_a_verifiable_checkpoint(trained):
    _, out, _ = trained
    info = verify_checkpoint(out)
    assert info.labels == tuple(sorted(CLASSES))
    assert (info.name, info.version) == ("tiny-cli", "1.0.0")
    manifest = json.loads((out / "manifest.json").read_text())
    training = manifest["training"]
    assert training["command"].startswith("python -m prodcat_django.ml train --train")
    assert training["data_fingerprint"].startswith("sha256:")
    assert set(manifest["metrics"]["val"]) == {"full", "terse", "image_only", "title_only"}
    assert set(manifest["metrics"]["test"]) == {"full", "terse", "image_only", "title_only"}
    assert manifest["temperature"] > 0
    # The checkpoint loads through the public interface and predicts known labels.
    predictor = Predictor.load(out, device="cpu")
    prediction = predictor.predict([ProductInput("Acme navy shirt", drawn_image("square"))])[0]
    assert prediction.top.label in CLASSES


def test_evaluate_json_has_the_documented_fields(trained, capsys):
    root, out, val_csv = trained
    capsys.readouterr()
    argv = ["evaluate", "--data", str(val_csv), "--checkpoint", str(out), "--json", "--quiet",
            "--cache", str(root / "cache")]  # fmt: skip
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    for key in ("n", "accuracy", "macro_f1", "ece", "per_class", "auto_accept", "confusion"):
        assert key in report
    assert report["n"] == 12
    assert set(report["per_class"]["Shirts"]) == {"precision", "recall", "f1", "support"}
    assert set(report["auto_accept"]) >= {"threshold", "precision", "coverage"}
    matrix = report["confusion"]["matrix"]
    assert sum(map(sum, matrix)) == 12 and len(matrix) == len(report["confusion"]["labels"])
    assert 0.0 < report["attention_image_share"] < 1.0
    # Agrees with the metrics recorded at training time for the same data.
    manifest = json.loads((out / "manifest.json").read_text())
    assert report["accuracy"] == pytest.approx(
        manifest["metrics"]["test"]["full"]["accuracy"], abs=1e-4
    )


def test_evaluate_unseen_labels_and_missing_images(trained, tmp_path, capsys):
    root, out, _ = trained
    extra = [
        {"id": "x1", "title": "Acme plush toy", "title_terse": "Acme", "label": "Toys",
         "image": ""},
        {"id": "x2", "title": "Nova red shirt", "title_terse": "Nova red", "label": "Shirts",
         "image": "images/missing.png"},
    ]  # fmt: skip
    data = write_csv(tmp_path, "odd", 6, seed=3, extra=extra)
    base = ["evaluate", "--data", str(data), "--checkpoint", str(out), "--quiet",
            "--cache", str(root / "cache")]  # fmt: skip
    capsys.readouterr()
    assert main([*base, "--json"]) == 2  # default: a missing image file is an error
    assert "missing.png" in capsys.readouterr().err
    assert main([*base, "--json", "--missing-images", "warn"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 8
    assert report["unknown_labels"] == {"Toys": 1}
    assert report["per_class"]["Toys"]["recall"] == 0.0
    assert any("missing.png" in w for w in report["warnings"])
    # The readable report and the plot.
    plot = tmp_path / "report.png"
    assert main([*base, "--missing-images", "warn", "--no-image", "--plot", str(plot)]) == 0
    text = capsys.readouterr().out
    assert "accuracy=" in text and "Toys (1)" in text and "image: no" in text
    assert plot.stat().st_size > 10_000
    assert main([*base, "--missing-images", "warn", "--no-title"]) == 0
    assert "title: none" in capsys.readouterr().out
    assert main([*base, "--no-title", "--no-image"]) == 2
    assert "leave nothing to classify" in capsys.readouterr().err


def test_bad_csv_gives_clear_error(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("id,name\n1,x\n")
    assert main(["evaluate", "--data", str(bad), "--json"]) == 2
    assert "missing column(s) title, label, image" in capsys.readouterr().err


def test_encode_fills_the_cache_with_the_checkpoints_encoders(trained, tmp_path, capsys):
    _, out, val_csv = trained
    cache = tmp_path / "cache"
    argv = ["encode", "--data", str(val_csv), "--checkpoint", str(out), "--flip",
            "--cache", str(cache), "--quiet", "--json"]  # fmt: skip
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["encoded"] == {str(val_csv): 12}
    files = list(cache.rglob("*.npy"))
    # 12 images x 2 views, plus the distinct titles of both text columns.
    assert len(files) >= 24 + 12
    before = {f: f.stat().st_mtime_ns for f in files}
    assert main(argv) == 0  # a second run finds everything cached and rewrites nothing
    assert {f: f.stat().st_mtime_ns for f in cache.rglob("*.npy")} == before


def test_fingerprint_changes_with_an_image(tmp_path):
    from prodcat_django.ml.data import fingerprint, read_products

    csv_path = write_csv(tmp_path, "fp", 3, seed=0)
    products = read_products(csv_path)
    before = fingerprint([csv_path], products)
    assert fingerprint([csv_path], products) == before
    drawn_image("circle", "green").save(products[0].image)
    assert fingerprint([csv_path], products) != before


def test_train_refuses_to_overwrite_a_checkpoint(trained, capsys):
    root, out, val_csv = trained
    before = (out / "manifest.json").read_bytes()
    argv = ["train", "--train", str(val_csv), "--val", str(val_csv), "--out", str(out),
            "--encoders", "tiny-random", "--cache", str(root / "cache"), "--quiet"]  # fmt: skip
    assert main(argv) == 2
    assert "already exists and is not empty" in capsys.readouterr().err
    assert (out / "manifest.json").read_bytes() == before
