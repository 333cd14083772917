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


def _jpeg(size: tuple[int, int], **save) -> bytes:
    image = Image.new("RGB", size, (240, 240, 240))
    image.paste((10, 10, 200), (size[0] // 4, size[1] // 4, size[0] // 2, size[1] // 2))
    return _png(image, format="JPEG", quality=70, **save)


def test_reduce_to_decodes_a_large_jpeg_reduced_at_decode_time():
    data = _jpeg((6000, 4000))
    image = load_image(data, max_pixels=1_000_000, reduce_to=512)  # 24 MP over a 1 MP cap
    assert image.mode == "RGB"
    assert 512 <= max(image.size) < 1024 and image.size[0] * 2 == image.size[1] * 3
    with pytest.raises(InvalidImageError, match="more than the limit"):
        load_image(data, max_pixels=1_000_000)  # at full size it is refused


def test_reduce_to_shrinks_other_formats_and_keeps_small_images():
    big = _png(Image.new("RGB", (3000, 1000), "green"))
    assert load_image(big, reduce_to=512).size == (600, 200)
    small = _png(Image.new("RGB", (300, 200), "green"))
    assert load_image(small, reduce_to=512).size == (300, 200)


def test_reduce_to_keeps_the_exif_orientation():
    exif = Image.Exif()
    exif[0x0112] = 6
    data = _jpeg((4000, 2000), exif=exif)
    image = load_image(data, reduce_to=256)
    assert image.height > image.width and max(image.size) >= 256


def test_reduced_transparent_palette_image_goes_on_white():
    image = Image.new("P", (2000, 2000), 0)
    image.info["transparency"] = 0
    assert load_image(_png(image, transparency=0), reduce_to=256).getpixel((0, 0)) == (
        255,
        255,
        255,
    )
