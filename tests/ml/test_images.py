import io

import pytest
from PIL import Image

from prodcat_django.ml.images import InvalidImageError, load_image, to_square


def _png(image: Image.Image, **save) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=save.pop("format", "PNG"), **save)
    return buffer.getvalue()


def test_load_image_from_bytes_path_and_file(tmp_path):
    data = _png(Image.new("L", (20, 10), 128))
    path = tmp_path / "a.png"
    path.write_bytes(data)
    for source in (data, path, str(path), io.BytesIO(data)):
        image = load_image(source)
        assert image.mode == "RGB" and image.size == (20, 10)


def test_exif_orientation_is_applied():
    image = Image.new("RGB", (30, 10), "red")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    assert load_image(_png(image, format="JPEG", exif=exif)).size == (10, 30)


def test_transparent_background_becomes_white():
    image = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    assert load_image(_png(image)).getpixel((0, 0)) == (255, 255, 255)


@pytest.mark.parametrize("data", [b"", b"not an image at all", _png(Image.new("RGB", (9, 9)))[:40]])
def test_undecodable_data_raises_readable_error(data):
    with pytest.raises(InvalidImageError, match="cannot decode image"):
        load_image(data)


def test_missing_file_raises_invalid_image(tmp_path):
    with pytest.raises(InvalidImageError, match="cannot read image"):
        load_image(tmp_path / "nope.jpg")


def test_decompression_bomb_is_refused_before_decoding():
    data = _png(Image.new("1", (3000, 3000)))
    with pytest.raises(InvalidImageError, match="more than the limit"):
        load_image(data, max_pixels=1_000_000)


def test_to_square_letterboxes_on_white():
    square = to_square(Image.new("RGB", (100, 50), "black"), 28)
    assert square.size == (28, 28)
    assert square.getpixel((14, 0)) == (255, 255, 255)  # padding band
    assert square.getpixel((14, 14)) == (0, 0, 0)
