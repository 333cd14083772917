"""Fixtures of the plain-shop shape tests: a loopback HTTP server for images at URLs (ports
7300-7399), the categories named as the tiny checkpoint's labels, and a reviewer."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.shop_data import make_user, media_root  # noqa: F401 - media_root is autouse

PORTS = range(7300, 7400)


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before each chunk of the body (a slow server)
    chunks: int = 1
    send_length: bool = True  # False: no Content-Length, the body ends with the connection


class ImageServer:
    """Serves ``routes`` on 127.0.0.1 and records every request path in ``hits``."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits.append(self.path)
                route = server.routes.get(self.path)
                if route is None:
                    self.send_error(404)
                    return
                self.send_response(route.status)
                for name, value in route.headers.items():
                    self.send_header(name, value)
                if route.send_length and "Content-Length" not in route.headers:
                    self.send_header("Content-Length", str(len(route.body)))
                if not route.send_length:
                    self.close_connection = True
                self.end_headers()
                size = max(1, len(route.body) // route.chunks)
                for start in range(0, len(route.body), size):
                    if route.delay:
                        time.sleep(route.delay)
                    try:
                        self.wfile.write(route.body[start : start + size])
                        self.wfile.flush()
                    except OSError:
                        return

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = _bind(Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def add(self, path: str, body: bytes = b"", **options: Any) -> str:
        self.routes[path] = Route(body=body, **options)
        return self.url(path)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _bind(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    for port in PORTS:
        try:
            httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        except OSError:
            continue
        httpd.daemon_threads = True
        return httpd
    raise RuntimeError(f"no free port in {PORTS.start}-{PORTS.stop - 1} for the image server")


@pytest.fixture
def image_server(settings: Any) -> Iterator[ImageServer]:
    """The loopback image server, allowed explicitly (plain http, the 127.0.0.1 host)."""
    server = ImageServer()
    settings.PRODCAT = {
        **settings.PRODCAT,
        "IMAGE_URL_SCHEMES": ("http",),
        "IMAGE_URL_HOSTS": ["127.0.0.1"],
        "IMAGE_URL_TIMEOUT": 2.0,
    }
    try:
        yield server
    finally:
        server.close()


#: Deciding sets the product's category: the reviewer may change each shape's products too.
CHANGE_SHAPES = tuple(
    f"change_{name}"
    for name in ("article", "cdnitem", "labelleditem", "mpttitem", "bearditem", "taggeditem")
)


@pytest.fixture
def reviewer(db: None) -> Any:
    return make_user("reviewer", "review_categorysuggestion", *CHANGE_SHAPES)


def free_port_is_refused() -> int:
    """A port in our range with nothing listening (for a refused connection)."""
    for port in PORTS:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) != 0:
                return port
    raise RuntimeError("every port of the range is in use")


@pytest.fixture(scope="session")
def _shoes_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from prodcat_django.ml.testing import build_random_checkpoint

    return build_random_checkpoint(tmp_path_factory.mktemp("shoes"), ["Shoes"], name="shoes")


@pytest.fixture
def shoes_checkpoint(_shoes_checkpoint: Any, model_checkpoint: Any, settings: Any) -> Iterator[Any]:
    """A one-label checkpoint: every prediction is "Shoes" (score 1.0), so each shape's
    suggestion is known in advance."""
    from prodcat_django.classifier import clear_cache

    settings.PRODCAT = {**settings.PRODCAT, "CHECKPOINT": str(_shoes_checkpoint)}
    clear_cache()
    yield _shoes_checkpoint
    clear_cache()
