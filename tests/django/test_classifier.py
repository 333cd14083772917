"""The worker's model cache: once per process, per checkpoint, never shared across fork."""

import os

import pytest

from prodcat_django import classifier


def test_loaded_once_per_process(model_checkpoint):
    classifier.clear_cache()
    first = classifier.get_predictor()
    assert classifier.get_predictor() is first
    assert first.info.path.resolve() == model_checkpoint.resolve()
    assert classifier.checkpoint_info().labels == first.info.labels


def test_a_new_checkpoint_setting_loads_a_new_model(model_checkpoint, confident_checkpoint):
    one_label = classifier.get_predictor()
    assert one_label.info.labels == ("Shoes",)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_loads_its_own_model(model_checkpoint):
    parent = classifier.get_predictor()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: like a Celery prefork worker process
        try:
            child = classifier.get_predictor()
            ok = child is not parent and child.info.labels == parent.info.labels
            os.write(write, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.close(write)
    answer = os.read(read, 1)
    os.waitpid(pid, 0)
    assert answer == b"1"
    assert classifier.get_predictor() is parent


def test_checkpoint_path_defaults_to_the_shipped_one(settings, monkeypatch, tmp_path):
    monkeypatch.setenv("PRODCAT_CHECKPOINT", str(tmp_path))  # how ml.manifest finds "shipped"
    settings.PRODCAT = {**settings.PRODCAT, "CHECKPOINT": None}
    assert classifier.checkpoint_path() == tmp_path
    settings.PRODCAT = {**settings.PRODCAT, "CHECKPOINT": "~/ckpt"}
    assert classifier.checkpoint_path() == (tmp_path.home() / "ckpt").resolve()
