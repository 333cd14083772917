"""The probe baseline as part of the checkpoint: ProbeHead + ProbeEnsemble, fitted by
``probe.attach_probe_head`` (C and per-condition weights on validation), saved in its own
hashed safetensors file and run by the Predictor. Tiny random encoders, no pretrained weights."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.linear_model import LogisticRegression

from prodcat_django.ml.checkpoint import load_model, save_checkpoint
from prodcat_django.ml.cli import main
from prodcat_django.ml.data import read_products
from prodcat_django.ml.encoders import build_image_encoder, build_text_encoder
from prodcat_django.ml.features import FeatureCache
from prodcat_django.ml.manifest import PROBE_FILE, CheckpointError, verify_checkpoint
from prodcat_django.ml.model import PROBE_CONDITIONS, FusionEnsemble, ProbeEnsemble
from prodcat_django.ml.predictor import Predictor, ProductInput
from prodcat_django.ml.probe import (
    WEIGHT_GRID,
    _copy_regression,
    attach_probe_head,
    pooled_image,
    pooled_text,
    pretrained_tail,
)
from prodcat_django.ml.testing import tiny_config
from prodcat_django.ml.train import TrainOptions, encode_split, predict_logits, train

from .conftest import drawn_image
from .test_cli import CLASSES, write_csv

OPTIONS = {"width": 16, "heads": 2, "epochs": 1, "batch_size": 8, "lr": 1e-2}


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    root = tmp_path_factory.mktemp("probehead")
    labels = sorted(CLASSES)
    spec = tiny_config(len(labels))
    cache = FeatureCache(
        build_text_encoder(spec["text_encoder"]),
        build_image_encoder(spec["image_encoder"]),
        root=root / "cache",
        progress=False,
    )
    columns = ["title", "title_terse"]
    train_split = encode_split(
        read_products(write_csv(root, "train", 24, seed=0)), cache, labels, columns
    )
    val_split = encode_split(
        read_products(write_csv(root, "val", 12, seed=1)), cache, labels, columns
    )
    options = TrainOptions(**OPTIONS, flip=False)
    specs = {"text_spec": spec["text_encoder"], "image_spec": spec["image_encoder"]}
    base = train(options, train_split, val_split, labels, progress=False, **specs)
    messages: list[str] = []
    result = attach_probe_head(
        base, train_split, val_split, options, c_grid=(0.1, 10.0), log=messages.append
    )
    return base, result, train_split, val_split, labels, options, messages, root


def test_probe_head_is_chosen_on_validation_per_condition(fitted):
    base, result, _, _, _, _, messages, _ = fitted
    entry = next(h["probe_head"] for h in result.history if "probe_head" in h)
    assert set(entry["heads"]) == set(PROBE_CONDITIONS)
    for head in entry["heads"].values():
        assert head["C"] in (0.1, 10.0) and head["val"] == max(head["val_by_C"].values())
        assert head["weight"] in WEIGHT_GRID
        # The chosen weight has the best validation accuracy of the grid.
        assert head["val_by_weight"][str(head["weight"])] == max(head["val_by_weight"].values())
    assert any("probe head both" in m for m in messages)
    assert entry["attached"]  # always, even with weight 0 everywhere
    model = result.model
    assert isinstance(model, ProbeEnsemble) and model.base is base.model
    assert result.config["model"]["probe"]["heads"] == list(PROBE_CONDITIONS)
    chosen = [entry["heads"][h]["weight"] for h in PROBE_CONDITIONS]
    assert model.probe.weights.tolist() == chosen
    for name, acc in entry["val_accuracy"].items():
        assert acc["ensemble"] == pytest.approx(result.val[name]["accuracy"], abs=1e-5)


def test_probe_head_features_and_regression_match_the_probe_baseline(fitted):
    """The head's features are the probe's (pooled, L2-normalised, pretrained tail), and its
    linear layer reproduces sklearn's class probabilities."""
    _, result, train_split, _, labels, _, _, _ = fitted
    spec = tiny_config(len(labels))
    probe = result.model.probe
    text, mask = train_split.texts["title"]
    image, present = train_split.images["orig"]
    t, i = probe.features(text.float(), mask, image.float(), present)
    assert np.allclose(t.numpy(), pooled_text(train_split, "title"), atol=1e-5)
    assert np.allclose(i.numpy(), pooled_image(train_split, pretrained_tail(spec["image_encoder"])),
                       atol=1e-5)  # fmt: skip
    x = torch.cat([t, i], 1).numpy()
    y = train_split.labels.numpy()
    for classes in (y, (y > 0).astype(int)):  # multinomial and binary
        clf = LogisticRegression(C=3.0, max_iter=2000).fit(x, classes)
        linear = torch.nn.Linear(x.shape[1], len(labels))
        with torch.no_grad():
            _copy_regression(linear, clf)
            probs = torch.softmax(linear(torch.from_numpy(x)), -1)[:, : len(clf.classes_)]
        assert np.allclose(probs.numpy(), clf.predict_proba(x), atol=1e-4)


def test_probe_ensemble_mixes_log_probabilities_per_condition(fitted):
    base, result, _, val_split, _, _, _, _ = fitted
    model = result.model
    model.probe.weights.copy_(torch.tensor([0.25, 1.0, 0.0]))
    try:
        full = predict_logits(model, val_split, "title", True)
        alone = torch.log_softmax(predict_logits(base.model, val_split, "title", True), -1)
        probe_logits, index = model.probe(*_inputs(val_split, "title", True))
        expected = 0.75 * alone + 0.25 * torch.log_softmax(probe_logits, -1)
        assert (index == 0).all()
        assert torch.allclose(full, expected, atol=1e-5)
        # Photo only: weight 1 = the probe alone; title only: weight 0 = the model alone.
        image_only = predict_logits(model, val_split, None, True)
        p_img, _ = model.probe(*_inputs(val_split, None, True))
        assert torch.allclose(image_only, torch.log_softmax(p_img, -1), atol=1e-5)
        title_only = predict_logits(model, val_split, "title", False)
        base_title = predict_logits(base.model, val_split, "title", False)
        assert torch.allclose(title_only, torch.log_softmax(base_title, -1), atol=1e-5)
    finally:
        weights = next(h["probe_head"] for h in result.history if "probe_head" in h)["heads"]
        model.probe.weights.copy_(torch.tensor([weights[h]["weight"] for h in PROBE_CONDITIONS]))


def _inputs(split, column, use_image):
    from prodcat_django.ml.probe import _inputs as inputs

    text, mask, image, present = inputs(split, column, use_image, 16)
    return text.float(), mask, image.float(), present


def test_probe_checkpoint_round_trip_hash_and_predictor(fitted, tmp_path):
    _, result, _, val_split, labels, _, _, _ = fitted
    out = tmp_path / "p" / "1.0.0"
    config = {**result.config, "name": "p"}
    save_checkpoint(out, result.model, config, labels, {"temperature": result.temperature})
    manifest = json.loads((out / "manifest.json").read_text())
    assert PROBE_FILE in manifest["files"]  # listed and hashed like the weights
    loaded, _ = load_model(out)
    assert isinstance(loaded, ProbeEnsemble)
    assert torch.equal(loaded.probe.weights, result.model.probe.weights)
    for column, image in (("title", True), (None, True), ("title", False)):
        assert torch.allclose(
            predict_logits(loaded, val_split, column, image),
            predict_logits(result.model, val_split, column, image),
            atol=2e-2,
        )  # fmt: skip  (the trained model is stored in float32)
    predictor = Predictor.load(out, device="cpu")
    prediction = predictor.predict([ProductInput("Acme red watch", drawn_image("circle"))])[0]
    assert prediction.top.label in CLASSES
    explanation = predictor.explain(ProductInput("Acme red watch", drawn_image("circle")))
    assert explanation.tokens and sum(sum(r) for r in explanation.regions) == pytest.approx(1, 1e-4)
    assert predictor.predict([ProductInput("", None)])[0].top.label in CLASSES
    # A changed probe file is refused; so is a probe config whose file is not listed.
    (out / PROBE_FILE).write_bytes((out / PROBE_FILE).read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(CheckpointError, match="sha256 mismatch"):
        verify_checkpoint(out)
    del manifest["files"][PROBE_FILE]
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="not listed"):
        verify_checkpoint(out)


def _tiny_training(root, *, width: int = 16, epochs: int = 1):
    """CLI arguments for a seconds-long training on tiny random encoders, and its two CSVs."""
    train_csv, val_csv = write_csv(root, "train", 24, seed=0), write_csv(root, "val", 12, seed=1)
    args = ["--train", str(train_csv), "--val", str(val_csv), "--encoders", "tiny-random",
            "--width", str(width), "--heads", "2", "--epochs", str(epochs), "--batch-size", "8",
            "--cache", str(root / "cache"), "--quiet", "--json"]  # fmt: skip
    return args, train_csv, val_csv


def test_cli_from_checkpoint_adds_the_probe_head(tmp_path, capsys):
    root = tmp_path
    common, train_csv, val_csv = _tiny_training(root)
    first = root / "ck" / "base" / "1.0.0"
    assert main(["train", *common, "--out", str(first)]) == 0
    capsys.readouterr()
    second = root / "ck" / "probe" / "1.0.0"
    argv = ["train", *common, "--out", str(second), "--from-checkpoint", str(first),
            "--test", str(val_csv)]  # fmt: skip
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    manifest = json.loads((second / "manifest.json").read_text())
    training = manifest["training"]
    assert training["from_checkpoint"]["version"] == "1.0.0"
    assert set(training["probe_head"]["heads"]) == set(PROBE_CONDITIONS)
    assert set(report["test"]) == {"full", "terse", "image_only", "title_only"}
    # The probe alone and the model alone are reported too, per condition.
    assert set(report["component_accuracy"]["test"]) == {"probe", "model"}
    assert set(report["component_accuracy"]["test"]["probe"]) == set(report["test"])
    predictor = Predictor.load(second, device="cpu")
    assert predictor.predict([ProductInput("Nova green heels", Image.new("RGB", (28, 28)))])
    # The starting model's weights are unchanged: same tensors in weights.safetensors.
    a, _ = load_model(first)
    b, _ = load_model(second)
    base_b = b.base if isinstance(b, ProbeEnsemble) else b
    for key, value in a.state_dict().items():
        assert torch.equal(base_b.state_dict()[key], value), key
    wrong, wrong_val = root / "wrong.csv", root / "wrong_val.csv"
    wrong.write_text(train_csv.read_text().replace("Watches", "Clocks"))
    wrong_val.write_text(val_csv.read_text().replace("Watches", "Clocks"))
    argv = ["train", *common, "--train", str(wrong), "--val", str(wrong_val),
            "--out", str(root / "x" / "1"), "--from-checkpoint", str(first)]  # fmt: skip
    assert main(argv) != 0
    assert "are not the training CSV's" in capsys.readouterr().err


def test_a_probe_with_no_share_anywhere_is_skipped_with_the_same_probabilities(fitted):
    base, result, _, val_split, _, _, _, _ = fitted
    model = result.model
    saved = model.probe.weights.clone()
    model.probe.weights.zero_()
    calls = []
    hook = model.probe.register_forward_hook(lambda *a: calls.append(1))
    try:
        logits = predict_logits(model, val_split, "title", True)
        alone = predict_logits(base.model, val_split, "title", True)
        assert not calls  # the probe (and its image tail) never ran
        assert torch.allclose(torch.softmax(logits, -1), torch.softmax(alone, -1), atol=1e-6)
    finally:
        hook.remove()
        model.probe.weights.copy_(saved)


def test_the_probe_runs_only_on_products_whose_condition_gives_it_a_share(fitted):
    base, result, _, val_split, _, _, _, _ = fitted
    model = result.model
    saved = model.probe.weights.clone()
    model.probe.weights.copy_(torch.tensor([0.0, 0.5, 0.0]))  # photo only, as shipped 1.3.0
    seen = []
    hook = model.probe.register_forward_hook(lambda _m, args, _o: seen.append(len(args[0])))
    try:
        text, mask, image, present = _inputs(val_split, "title", True)
        mask = mask.clone()
        mask[::2] = False  # every other product: photo only
        with torch.no_grad():
            mixed = model(text, mask, image, present).logits
            alone = torch.log_softmax(base.model(text, mask, image, present).logits, -1)
            p_img, _ = model.probe(text, mask, image, present)
        photo_only = ~mask.any(1)
        expected = torch.where(
            photo_only[:, None], 0.5 * alone + 0.5 * torch.log_softmax(p_img, -1), alone
        )
        assert torch.allclose(mixed, expected, atol=1e-5)
        # The mixed forward ran the probe on the photo-only rows alone.
        seen.clear()
        with torch.no_grad():
            model(text, mask, image, present)
        assert seen[-1] == int(photo_only.sum()) < len(text)
        mask[:] = True  # no product without a title: the probe never runs
        seen.clear()
        with torch.no_grad():
            model(text, mask, image, present)
        assert not seen
    finally:
        hook.remove()
        model.probe.weights.copy_(saved)


def test_cli_from_several_checkpoints_averages_them_into_one_ensemble(tmp_path, capsys):
    root = tmp_path
    common, _, _ = _tiny_training(root)
    # (The tiny encoders are seeded by --seed, so the two members differ by their epochs.)
    seeds = [root / "ck" / f"run{k}" / "1.0.0" for k in range(2)]
    for k, out in enumerate(seeds):
        run, _, _ = _tiny_training(root, epochs=k + 1)
        assert main(["train", *run, "--out", str(out)]) == 0
    capsys.readouterr()
    both = root / "ck" / "both" / "1.0.0"
    argv = ["train", *common, "--out", str(both), "--no-probe-head",
            "--from-checkpoint", *map(str, seeds)]  # fmt: skip
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["members"] == 2
    origins = json.loads((both / "manifest.json").read_text())["training"]["from_checkpoint"]
    assert [o["name"] for o in origins] == ["run0", "run1"]
    # Each member holds its checkpoint's weights unchanged, and the ensemble's log-probabilities
    # are the members' mean.
    ensemble, _ = load_model(both)
    assert isinstance(ensemble, FusionEnsemble)
    inputs = (torch.randn(3, 5, 16), torch.ones(3, 5, dtype=torch.bool),
              torch.randn(3, 8, 7, 7), torch.ones(3, dtype=torch.bool))  # fmt: skip
    singles = []
    for member, path in zip(ensemble.members, seeds, strict=True):
        alone, _ = load_model(path)
        for key, value in alone.state_dict().items():
            assert torch.equal(member.state_dict()[key], value), key
        with torch.no_grad():
            singles.append(torch.log_softmax(alone(*inputs).logits, -1))
    with torch.no_grad():
        mean = ensemble(*inputs).logits
    assert torch.allclose(mean, torch.stack(singles).mean(0), atol=1e-5)
    # Another architecture is refused with the reason.
    other = root / "ck" / "wide" / "1.0.0"
    wide, _, _ = _tiny_training(root, width=32)
    assert main(["train", *wide, "--out", str(other)]) == 0
    capsys.readouterr()
    argv = ["train", *common, "--out", str(root / "x" / "2"),
            "--from-checkpoint", str(seeds[0]), str(other)]  # fmt: skip
    assert main(argv) != 0
    assert "only checkpoints of one recipe can be averaged" in capsys.readouterr().err
