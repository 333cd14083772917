"""The out-of-taxonomy detector: calibration, both reasons, its files, the predictor's verdict."""

import json

import numpy as np
import pytest

from prodcat_django.ml.manifest import CheckpointError, verify_checkpoint
from prodcat_django.ml.ood import (
    FAR_METHODS,
    OOD_FILE,
    OOD_TENSORS,
    far_scores,
    fit_detector,
    install_detector,
    load_detector,
    reference_sample,
)
from prodcat_django.ml.predictor import Predictor, ProductInput

from .conftest import drawn_image


def _clusters(rng, n, centres, noise=0.05):
    labels = rng.integers(0, len(centres), n)
    x = centres[labels] + noise * rng.standard_normal((n, centres.shape[1]))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), labels


def test_calibrated_rate_and_far_products_flagged():
    rng = np.random.default_rng(0)
    centres = np.eye(8)[:4]  # four categories in 8 dims; outside products use the other four
    train, train_labels = _clusters(rng, 400, centres)
    val, _ = _clusters(rng, 200, centres)
    outside, _ = _clusters(rng, 100, np.eye(8)[4:])
    reference = reference_sample(train, train_labels, per_class=20)
    assert len(reference) == 80
    detector = fit_detector("knn", reference=reference, val_embedding=val, val_logits=None)
    assert detector.info["val_flagged_rate"] <= 0.05
    flagged_val = [v.flagged for v in detector.verdicts(val, None)]
    assert np.mean(flagged_val) <= 0.05
    verdicts = detector.verdicts(outside, None)
    assert all(v.flagged and v.reason == "far from every category" for v in verdicts)
    assert all(0 <= v.score <= 1 for v in verdicts)


def test_title_and_photo_that_disagree_are_flagged():
    rng = np.random.default_rng(1)
    n, c = 300, 5
    truth = rng.integers(0, c, n)
    agree = np.full((n, c), -2.0)
    agree[np.arange(n), truth] = 4.0  # title-only and photo-only models agree on val
    logits = agree + 0.3 * rng.standard_normal((n, c))
    detector = fit_detector(
        "msp",
        reference=np.zeros((0, 4)),
        val_embedding=None,
        val_logits=logits,
        val_title_only=agree + 0.3 * rng.standard_normal((n, c)),
        val_image_only=agree + 0.3 * rng.standard_normal((n, c)),
    )
    assert detector.uses_disagreement
    sweater_title = np.array([[4.0, -2, -2, -2, -2]])  # "sweater"
    flipflop_photo = np.array([[-2.0, -2, -2, -2, 4.0]])  # a flip-flop photo
    confident = np.array([[5.0, -2, -2, -2, -2]])
    [v] = detector.verdicts(None, confident, title_only=sweater_title, image_only=flipflop_photo)
    assert v.flagged and v.reason == "title and photo disagree"
    [ok] = detector.verdicts(None, confident, title_only=sweater_title, image_only=sweater_title)
    assert not ok.flagged and ok.reason == ""
    # Without a photo there is nothing to disagree with.
    [alone] = detector.verdicts(
        None,
        confident,
        title_only=sweater_title,
        image_only=flipflop_photo,
        has_image=np.array([False]),
    )
    assert not alone.flagged


def test_every_far_method_scores_uncertain_logits_higher():
    sharp = np.array([[8.0, 0, 0]])
    flat = np.array([[0.1, 0, 0]])
    for method in ("energy", "max_logit", "msp"):
        assert far_scores(method, logits=flat)[0] > far_scores(method, logits=sharp)[0]
    assert set(FAR_METHODS) >= {"knn", "class_mean", "energy", "max_logit", "msp"}
    with pytest.raises(ValueError, match="unknown method"):
        far_scores("vibes", logits=flat)
    with pytest.raises(ValueError, match="needs embeddings"):
        far_scores("knn", logits=flat)


def _fit_on_predictor(predictor):
    train = [
        ProductInput(f"{colour} cotton shirt", drawn_image("square", colour))
        for colour in ("navy", "blue", "teal", "black", "grey", "green") * 4
    ]
    val = [
        ProductInput(f"{colour} cotton shirt", drawn_image("square", colour))
        for colour in ("navy", "blue", "teal", "black", "grey", "green") * 5
    ]
    emb = predictor.embed(train)
    return fit_detector(
        "knn",
        reference=reference_sample(emb, np.zeros(len(emb), int), per_class=50),
        val_embedding=predictor.embed(val),
        val_logits=None,
        neighbours=3,
        embedding_id=predictor.embedding_id,
    )


def test_installed_detector_is_hashed_loaded_and_blocks_auto_accept(tiny_checkpoint):
    predictor = Predictor.load(tiny_checkpoint, device="cpu")
    assert predictor.ood is None
    plain = predictor.predict([ProductInput("navy cotton shirt")])[0]
    assert (plain.out_of_taxonomy, plain.ood_score, plain.ood_reason) == (False, None, "")
    install_detector(tiny_checkpoint, _fit_on_predictor(predictor))
    info = verify_checkpoint(tiny_checkpoint)  # both files listed and hashed
    manifest = json.loads((tiny_checkpoint / "manifest.json").read_text())
    assert {OOD_FILE, OOD_TENSORS} <= set(manifest["files"])
    assert manifest["out_of_taxonomy"]["method"] == "knn"
    assert info.name == "tiny"
    loaded = Predictor.load(tiny_checkpoint, device="cpu")
    assert loaded.ood is not None and loaded.ood.embedding_id == loaded.embedding_id
    inside, outside = loaded.predict(
        [
            ProductInput("navy cotton shirt", drawn_image("square", "navy")),
            ProductInput("zqxv plmk wrrt", drawn_image("triangle", "yellow", (90, 30))),
        ],
        top_k=3,
    )
    assert not inside.out_of_taxonomy
    assert outside.out_of_taxonomy and outside.ood_reason == "far from every category"
    assert outside.ood_score > outside.ood_threshold == loaded.ood.threshold
    assert not outside.auto_accept  # never auto-accepted, whatever its top score
    explained = loaded.explain(ProductInput("zqxv plmk wrrt", drawn_image("triangle", "yellow")))
    assert explained.prediction.ood_score is not None


def test_tampered_or_broken_detector_files_are_refused(tiny_checkpoint):
    predictor = Predictor.load(tiny_checkpoint, device="cpu")
    install_detector(tiny_checkpoint, _fit_on_predictor(predictor))
    meta = tiny_checkpoint / OOD_FILE
    text = meta.read_text()
    meta.write_text(text.replace('"threshold"', '"threshold_"'))
    with pytest.raises(CheckpointError, match=r"ood\.json"):
        verify_checkpoint(tiny_checkpoint)  # hash mismatch
    with pytest.raises(CheckpointError, match="incomplete detector"):
        load_detector(tiny_checkpoint)
    meta.write_text(text)
    (tiny_checkpoint / OOD_TENSORS).write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError, match=r"ood\.safetensors"):
        load_detector(tiny_checkpoint)
