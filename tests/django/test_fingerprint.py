import io

import pytest
from django.core.files.base import ContentFile

from prodcat_django.fingerprint import (
    FINGERPRINT_VERSION,
    compute_fingerprint,
    normalize_title,
    product_fingerprint,
)
from tests.shop_data import png_bytes


def test_fingerprint_is_sha256_hex_and_deterministic():
    fp = compute_fingerprint("Red dress", b"\x89PNG...")
    assert len(fp) == 64
    assert int(fp, 16) >= 0
    assert fp == compute_fingerprint("Red dress", b"\x89PNG...")
    assert FINGERPRINT_VERSION == 1


def test_title_normalisation_ignores_whitespace_and_unicode_form_but_not_case():
    assert normalize_title("  Red \t dress\n") == "Red dress"
    assert compute_fingerprint("Red  dress ", None) == compute_fingerprint("Red dress", None)
    # "é" precomposed vs "e" + combining acute
    assert compute_fingerprint("Caf\u00e9", None) == compute_fingerprint("Cafe\u0301", None)
    assert compute_fingerprint("red dress", None) != compute_fingerprint("Red dress", None)


def test_every_input_counts():
    base = compute_fingerprint("Red dress", b"abc")
    assert compute_fingerprint("Red dresses", b"abc") != base
    assert compute_fingerprint("Red dress", b"abd") != base
    assert compute_fingerprint("Red dress", None) != base
    # an empty image file is not "no image"
    assert compute_fingerprint("Red dress", b"") != compute_fingerprint("Red dress", None)


def test_encoding_is_unambiguous_between_title_and_image():
    # The title is length-prefixed, so moving bytes between the parts changes the digest.
    assert compute_fingerprint("ab", b"c") != compute_fingerprint("a", b"bc")


def test_file_objects_hash_like_bytes():
    data = png_bytes() * 100
    assert compute_fingerprint("t", io.BytesIO(data)) == compute_fingerprint("t", data)


@pytest.mark.django_db
def test_product_fingerprint_reads_the_image_through_storage(make_product):
    data = png_bytes("blue")
    product = make_product(title="Blue vase", image=data)
    assert product_fingerprint(product) == compute_fingerprint("Blue vase", data)
    no_image = make_product(title="Blue vase")
    assert product_fingerprint(no_image) == compute_fingerprint("Blue vase", None)


@pytest.mark.django_db
def test_missing_image_file_counts_as_no_image(make_product, caplog):
    product = make_product(title="Blue vase", image=png_bytes("blue"))
    product.image.storage.delete(product.image.name)
    assert product_fingerprint(product) == compute_fingerprint("Blue vase", None)
    assert "unreadable" in caplog.text


@pytest.mark.django_db
def test_fingerprint_changes_with_a_new_image(make_product):
    product = make_product(title="Blue vase", image=png_bytes("blue"))
    before = product_fingerprint(product)
    product.image.save("other.png", ContentFile(png_bytes("green")), save=False)
    assert product_fingerprint(product) != before
