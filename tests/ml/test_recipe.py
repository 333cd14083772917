"""The improved recipe's parts on tiny random encoders: aux heads, seed ensembles, crop + colour
views, auto_fit, the probe baseline and the checkpoints they write."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from prodcat_django.ml.augment import augment, is_view
from prodcat_django.ml.checkpoint import load_model, save_checkpoint
from prodcat_django.ml.cli import main
from prodcat_django.ml.data import read_products
from prodcat_django.ml.encoders import build_image_encoder, build_text_encoder
from prodcat_django.ml.features import FeatureCache
from prodcat_django.ml.model import FusionEnsemble
from prodcat_django.ml.predictor import Predictor, ProductInput
from prodcat_django.ml.probe import fit_probe
from prodcat_django.ml.testing import tiny_config
from prodcat_django.ml.train import (
    TrainOptions,
    auto_fit,
    encode_split,
    image_views,
    predict_logits,
    train,
    train_ensemble,
)

from .conftest import drawn_image
from .test_cli import CLASSES, write_csv

OPTIONS = {"width": 16, "heads": 2, "epochs": 2, "batch_size": 8, "lr": 1e-2}


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    root = tmp_path_factory.mktemp("recipe")
    labels = sorted(CLASSES)
    spec = tiny_config(len(labels))
    cache = FeatureCache(
        build_text_encoder(spec["text_encoder"]),
        build_image_encoder(spec["image_encoder"]),
        root=root / "cache",
        progress=False,
    )
    columns = ["title", "title_terse"]
    views = image_views(TrainOptions(augment_views=2))
    train_split = encode_split(
        read_products(write_csv(root, "train", 24, seed=0)), cache, labels, columns, views
    )
    val_split = encode_split(
        read_products(write_csv(root, "val", 9, seed=1)), cache, labels, columns
    )
    return train_split, val_split, labels, spec, root


def _specs(spec):
    return {"text_spec": spec["text_encoder"], "image_spec": spec["image_encoder"]}


def test_augment_is_a_seeded_crop_and_colour_draw():
    image = drawn_image("square", "red", (60, 40))
    a, b, c = augment(image, 1), augment(image, 1), augment(image, 2)
    assert a.tobytes() == b.tobytes()  # the same view of the same image: cacheable
    assert a.tobytes() != c.tobytes()
    assert a.size[0] <= 60 and a.size[1] <= 40 and a.mode == "RGB"
    assert is_view("aug3") and is_view("flip") and not is_view("aug0") and not is_view("crop")


def test_augmented_views_are_cached_and_differ(splits):
    train_split = splits[0]
    assert {"orig", "flip", "aug1", "aug2"} <= set(train_split.images)
    orig, aug = train_split.images["orig"][0], train_split.images["aug1"][0]
    assert not torch.equal(orig, aug)
    with pytest.raises(ValueError, match="unknown image view"):
        FeatureCache(None, build_image_encoder(splits[3]["image_encoder"])).images([], "crop")


def test_training_refuses_views_the_split_lacks(splits):
    train_split, val_split, labels, spec, _ = splits
    with pytest.raises(ValueError, match="aug3"):
        train(TrainOptions(**OPTIONS, augment_views=3), train_split, val_split, labels,
              progress=False, **_specs(spec))  # fmt: skip


def test_aux_heads_ensemble_and_their_weight_round_trips(splits, tmp_path):
    train_split, val_split, labels, spec, _ = splits
    options = TrainOptions(**OPTIONS, aux_heads=True, augment_views=2)
    result = train(options, train_split, val_split, labels, progress=False, **_specs(spec))
    model = result.model
    assert result.config["model"]["aux_heads"] is True
    assert float(model.aux_weight) in options.aux_weights
    scores = result.history[-1]["aux_weight_scores"]
    assert set(scores) == {str(w) for w in options.aux_weights}
    out = model(*_batch(train_split, 4))
    assert set(out.members) == {"main", "image", "text"}
    # Weight 0: the attention head alone; weight 1: the mean of the three log-probabilities.
    model.aux_weight.fill_(0.0)
    assert torch.allclose(model(*_batch(train_split, 4)).logits,
                          torch.log_softmax(out.members["main"], -1), atol=1e-5)  # fmt: skip
    model.aux_weight.fill_(1.0)
    logp = [torch.log_softmax(out.members[k], -1) for k in ("main", "image", "text")]
    assert torch.allclose(model(*_batch(train_split, 4)).logits, sum(logp) / 3, atol=1e-5)
    model.aux_weight.fill_(0.5)
    save_checkpoint(tmp_path / "c", model, result.config, labels, {"temperature": 1.0})
    loaded, _ = load_model(tmp_path / "c")
    assert float(loaded.aux_weight) == 0.5
    assert torch.allclose(
        predict_logits(loaded, val_split, "title", True),
        predict_logits(model, val_split, "title", True),
        atol=1e-2,
    )


def _batch(split, n):
    text, mask = split.texts["title"]
    image, present = split.images["orig"]
    return text[:n].float(), mask[:n], image[:n].float(), present[:n]


def test_seed_ensemble_averages_members_and_loads_from_a_checkpoint(splits, tmp_path):
    train_split, val_split, labels, spec, _ = splits
    options = TrainOptions(**OPTIONS)
    single = train(options, train_split, val_split, labels, progress=False, **_specs(spec))
    result = train_ensemble(options, train_split, val_split, labels, seeds=[0, 1],
                            members=[single], progress=False, **_specs(spec))  # fmt: skip
    assert isinstance(result.model, FusionEnsemble) and result.config["model"]["members"] == 2
    first = result.model.members[0]
    for key, value in single.model.state_dict().items():
        assert torch.equal(first.state_dict()[key], value), key  # the given member is reused
    batch = _batch(val_split, 5)
    expected = torch.stack(
        [torch.log_softmax(m(*batch).logits, -1) for m in result.model.members]
    ).mean(0)
    assert torch.allclose(result.model(*batch).logits, expected)
    fields = {"temperature": result.temperature, "threshold": result.threshold}
    config = {**result.config, "name": "e"}
    save_checkpoint(tmp_path / "e" / "1.0.0", result.model, config, labels, fields)
    predictor = Predictor.load(tmp_path / "e" / "1.0.0", device="cpu")
    explanation = predictor.explain(ProductInput("Acme red watch", drawn_image("circle")))
    assert explanation.prediction.top.label in CLASSES
    assert sum(sum(row) for row in explanation.regions) == pytest.approx(1.0, abs=1e-4)


def test_auto_fit_picks_by_validation_within_budget(splits):
    train_split, val_split, labels, spec, _ = splits
    messages = []
    grid = [{}, {"layers": 2}, {"width": 8}]
    result = auto_fit(train_split, val_split, labels, budget_s=1e6,
                      base=TrainOptions(**OPTIONS, aux_heads=True), grid=grid, max_seeds=2,
                      progress=False, log=messages.append, **_specs(spec))  # fmt: skip
    singles = result.trials[: len(grid)]
    assert [t["overrides"] for t in singles] == grid
    best = max(singles, key=lambda t: t["score"])
    assert result.options.layers == (2 if best["overrides"] == {"layers": 2} else 1)
    assert result.trials[-1]["overrides"] == {"seeds": [0, 1]}
    # One line per trial, one for the seed average, one for the probe head's result.
    assert len([m for m in messages if m.startswith("auto_fit:")]) == len(grid) + 2
    assert any(m.startswith("probe head both: C=") for m in messages)
    assert any("probe_head" in h for h in result.history)
    # A budget of zero still trains the first entry, then stops.
    quick = auto_fit(train_split, val_split, labels, budget_s=0, base=TrainOptions(**OPTIONS),
                     grid=grid, progress=False, probe_head=False, **_specs(spec))  # fmt: skip
    assert [t["overrides"] for t in quick.trials] == [{}]


def test_probe_chooses_c_on_validation_per_condition(splits):
    train_split, val_split, _, spec, _ = splits
    result = fit_probe(train_split, val_split, val_split, spec["image_encoder"], c_grid=(0.1, 10))
    assert set(result.conditions) == {"full", "terse", "image_only", "title_only"}
    for entry in result.conditions.values():
        assert entry["C"] in (0.1, 10) and set(entry["val_by_C"]) == {"0.1", "10"}
        assert entry["val"] == max(entry["val_by_C"].values())
        assert 0 <= entry["test"] <= 1 and entry["n_test"] == len(val_split)
    # Titles name their class here: the title-only probe is (nearly) perfect.
    assert result.conditions["title_only"]["val"] >= 0.8


def test_cli_train_auto_and_seeds_write_loadable_checkpoints(splits, tmp_path, capsys):
    root = splits[4]
    common = ["--train", str(root / "train.csv"), "--val", str(root / "val.csv"), "--encoders",
              "tiny-random", "--width", "16", "--heads", "2", "--epochs", "2", "--batch-size",
              "8", "--cache", str(tmp_path / "cache"), "--quiet", "--json"]  # fmt: skip
    out = tmp_path / "ck" / "auto" / "1.0.0"
    argv = ["train", *common, "--out", str(out), "--auto", "--budget", "0", "--aux-heads",
            "--augment-views", "1"]  # fmt: skip
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["members"] == 1 and len(report["trials"]) == 1
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["training"]["options"]["augment_views"] == 1
    assert manifest["training"]["auto_fit_trials"][0]["overrides"] == {}
    out2 = tmp_path / "ck" / "seeds" / "1.0.0"
    assert main(["train", *common, "--out", str(out2), "--seeds", "2"]) == 0
    assert json.loads(capsys.readouterr().out)["members"] == 2
    predictor = Predictor.load(out2, device="cpu")
    assert predictor.predict([ProductInput("Nova green heels", Image.new("RGB", (28, 28)))])
