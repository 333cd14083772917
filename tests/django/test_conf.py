import pytest
from django.test import override_settings

from prodcat_django.conf import DEFAULTS, ProdcatSettings, prodcat_settings


def test_defaults_apply_for_missing_keys(settings):
    settings.PRODCAT = {}
    assert prodcat_settings.TOP_K == 3
    assert prodcat_settings.QUEUE == "prodcat"
    assert prodcat_settings.AUTO_ACCEPT is False
    assert prodcat_settings.MAX_UPLOAD_BYTES == 10 * 1024 * 1024


def test_settings_are_read_on_every_access():
    with override_settings(PRODCAT={"TOP_K": 5}):
        assert prodcat_settings.TOP_K == 5
        with override_settings(PRODCAT={"TOP_K": 1, "QUEUE": "other"}):
            assert prodcat_settings.TOP_K == 1
            assert prodcat_settings.QUEUE == "other"
        assert prodcat_settings.TOP_K == 5
        assert DEFAULTS["QUEUE"] == prodcat_settings.QUEUE


def test_missing_prodcat_setting_means_all_defaults(settings):
    del settings.PRODCAT
    assert DEFAULTS["BULK_CHUNK_SIZE"] == prodcat_settings.BULK_CHUNK_SIZE
    assert prodcat_settings.unknown_keys() == []


def test_unknown_attribute_is_an_error():
    with pytest.raises(AttributeError, match="Unknown prodcat setting 'TOPK'"):
        _ = prodcat_settings.TOPK


def test_unknown_keys_are_listed(settings):
    settings.PRODCAT = {"TOPK": 2, "QUEUE": "q", "AUTOACCEPT": True}
    assert prodcat_settings.unknown_keys() == ["AUTOACCEPT", "TOPK"]


def test_non_dict_is_a_clear_error(settings):
    settings.PRODCAT = ["TOP_K", 3]
    with pytest.raises(TypeError, match=r"settings\.PRODCAT must be a dict"):
        _ = prodcat_settings.TOP_K


def test_custom_defaults():
    assert ProdcatSettings({"X": 1}).X == 1
