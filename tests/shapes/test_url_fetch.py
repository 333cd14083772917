"""The worker's guarded download of images at URLs, against a real loopback HTTP server:
allowed schemes and hosts, no private addresses unless a host is named, redirects checked hop
by hop, a timeout for the whole download, a size cap, and the upload decoding limits."""

from __future__ import annotations

import pytest

from prodcat_django.adapters import ImageSource
from prodcat_django.adapters.url_fetch import ImageFetchError, fetch_image
from tests.shapes.conftest import free_port_is_refused
from tests.shop_data import png_bytes


def test_fetches_the_bytes(image_server):
    data = png_bytes("green")
    url = image_server.add("/a.png", data)
    assert fetch_image(url) == data
    assert ImageSource.from_url(url).read(max_bytes=10_000) == data


def test_only_allowed_schemes(image_server, settings):
    url = image_server.add("/a.png", png_bytes())
    settings.PRODCAT = {**settings.PRODCAT, "IMAGE_URL_SCHEMES": ("https",)}
    with pytest.raises(ImageFetchError, match="scheme 'http' is not allowed"):
        fetch_image(url)
    with pytest.raises(ImageFetchError, match="scheme 'file' is not allowed"):
        fetch_image("file:///etc/passwd")
    assert image_server.hits == []


def test_only_allowed_hosts(image_server):
    image_server.add("/a.png", png_bytes())
    with pytest.raises(ImageFetchError, match="host 'localhost' is not in"):
        fetch_image(image_server.url("/a.png", host="localhost"))
    assert image_server.hits == []


def test_private_addresses_need_the_host_named_exactly(image_server, settings):
    url = image_server.add("/a.png", png_bytes())
    for hosts in (None, [".0.0.1"]):  # any public host; a suffix pattern
        settings.PRODCAT = {**settings.PRODCAT, "IMAGE_URL_HOSTS": hosts}
        with pytest.raises(ImageFetchError, match=r"non-public address 127\.0\.0\.1"):
            fetch_image(url)
    assert image_server.hits == []


def test_redirects_are_checked_hop_by_hop(image_server, settings):
    data = png_bytes("olive")
    final = image_server.add("/final.png", data)
    hop = image_server.add("/hop", status=302, headers={"Location": "/final.png"})
    assert fetch_image(hop) == data  # a redirect within the allowed host is followed

    # To a private address whose host is not named exactly: refused before connecting.
    settings.PRODCAT = {**settings.PRODCAT, "IMAGE_URL_HOSTS": ["127.0.0.1", ".0.0.1"]}
    away = image_server.add("/away", status=301, headers={"Location": "http://10.0.0.1/x.png"})
    with pytest.raises(ImageFetchError, match=r"non-public address 10\.0\.0\.1"):
        fetch_image(away)
    # To another host than the allowed one.
    elsewhere = image_server.add(
        "/elsewhere", status=302, headers={"Location": final.replace("127.0.0.1", "localhost")}
    )
    with pytest.raises(ImageFetchError, match="host 'localhost' is not in"):
        fetch_image(elsewhere)
    # Too many hops.
    settings.PRODCAT = {**settings.PRODCAT, "IMAGE_URL_MAX_REDIRECTS": 2}
    image_server.add("/loop", status=302, headers={"Location": "/loop"})
    with pytest.raises(ImageFetchError, match="more than 2 redirects"):
        fetch_image(image_server.url("/loop"))


def test_size_cap(image_server):
    data = png_bytes(size=(400, 400)) + b"\0" * 50_000
    url = image_server.add("/big.png", data)
    with pytest.raises(ImageFetchError, match="limit is 1000"):
        fetch_image(url, max_bytes=1000)  # refused by its Content-Length, before reading
    assert fetch_image(url, max_bytes=len(data)) == data


def test_size_cap_without_content_length(image_server):
    data = b"x" * 20_000
    image_server.add("/chunked.png", data, send_length=False, chunks=10)
    with pytest.raises(ImageFetchError, match="over the limit of 1000 bytes"):
        fetch_image(image_server.url("/chunked.png"), max_bytes=1000)


def test_timeout_for_the_whole_download(image_server, settings):
    settings.PRODCAT = {**settings.PRODCAT, "IMAGE_URL_TIMEOUT": 0.5}
    url = image_server.add("/slow.png", b"y" * 4000, chunks=8, delay=0.2)  # 1.6 s in all
    with pytest.raises(ImageFetchError, match=r"timed out|TimeoutError"):
        fetch_image(url)


def test_http_errors_and_refused_connections(image_server):
    with pytest.raises(ImageFetchError, match="HTTP 404"):
        fetch_image(image_server.url("/nothing"))
    with pytest.raises(ImageFetchError, match="ConnectionRefusedError"):
        fetch_image(f"http://127.0.0.1:{free_port_is_refused()}/a.png")


def test_the_decoding_limits_are_the_uploads(image_server, settings):
    from prodcat_django.ml.images import ImageTooLargeError, InvalidImageError, load_image

    settings.PRODCAT = {**settings.PRODCAT, "MAX_IMAGE_PIXELS": 1000}
    big = fetch_image(image_server.add("/px.png", png_bytes(size=(100, 100))))
    with pytest.raises(ImageTooLargeError):
        load_image(big, max_pixels=settings.PRODCAT["MAX_IMAGE_PIXELS"])
    junk = fetch_image(image_server.add("/junk.png", b"not an image"))
    with pytest.raises(InvalidImageError):
        load_image(junk, max_pixels=10**6)
