"""Real-service plumbing for the end-to-end tests: service probes and a Celery worker process.

Nothing here mocks anything: the probes open real connections, and ``CeleryWorker`` runs
``celery worker`` as a subprocess against the same database and broker as the test process.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

REPO_ROOT = Path(__file__).resolve().parents[2]

T = TypeVar("T")


@dataclass(frozen=True)
class Probe:
    """The outcome of checking one service: ``error`` is None when it answered."""

    name: str
    error: str | None
    hint: str


def probe_postgres(host: str, port: int, user: str, password: str | None = None) -> Probe:
    hint = f"start PostgreSQL on {host}:{port} (user {user!r}, trust auth or PGPASSWORD)"
    try:
        import psycopg
    except ImportError:
        return Probe("PostgreSQL", "psycopg is not installed", "pip install 'psycopg[binary]'")
    try:
        with psycopg.connect(
            host=host,
            port=port,
            user=user,
            password=password or None,
            dbname="postgres",
            connect_timeout=3,
        ) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:  # any driver error means "not usable", and says why
        return Probe("PostgreSQL", f"{type(exc).__name__}: {exc}".strip(), hint)
    return Probe("PostgreSQL", None, hint)


def probe_redis(url: str) -> Probe:
    parts = urlsplit(url)
    hint = f"start Redis on {parts.hostname}:{parts.port or 6379}"
    try:
        import redis
    except ImportError:
        return Probe("Redis", "redis-py is not installed", "pip install redis")
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
        client.ping()
        client.close()
    except Exception as exc:
        return Probe("Redis", f"{type(exc).__name__}: {exc}", hint)
    return Probe("Redis", None, hint)


def probe_amqp(url: str) -> Probe:
    """A real AMQP handshake through kombu (a bare TCP connect would accept a wrong vhost)."""
    parts = urlsplit(url)
    hint = f"start RabbitMQ on {parts.hostname}:{parts.port or 5672} (user guest/guest, vhost /)"
    try:
        from kombu import Connection

        with Connection(url, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1)
    except Exception as exc:
        return Probe("RabbitMQ", f"{type(exc).__name__}: {exc}", hint)
    return Probe("RabbitMQ", None, hint)


def tcp_open(host: str, port: int, timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def delete_redis_queue(url: str, queue: str) -> None:
    """Remove ``queue`` and its kombu routing keys from Redis (other keys are left alone)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = [queue, *client.scan_iter(match=f"_kombu.binding*.{queue}")]
        client.delete(*keys)
    finally:
        client.close()


def wait_until(
    fetch: Callable[[], T],
    done: Callable[[T], bool],
    *,
    timeout: float,
    interval: float = 0.5,
    what: str,
    on_timeout: Callable[[], str] | None = None,
) -> T:
    """Call ``fetch`` until ``done(value)``; raise ``AssertionError`` naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    value = fetch()
    while not done(value):
        if time.monotonic() > deadline:
            extra = f"\n{on_timeout()}" if on_timeout else ""
            raise AssertionError(
                f"timed out after {timeout:.0f}s waiting for {what}; last: {value!r}{extra}"
            )
        time.sleep(interval)
        value = fetch()
    return value


@dataclass
class CeleryWorker:
    """``celery -A tests.celery_app worker`` as a child process, stopped on ``stop()``.

    ``env`` is added to this process's environment, which is how the worker learns the test
    database's name and the broker URL.
    """

    broker_url: str
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    queue: str = "prodcat"
    concurrency: int = 1
    hostname: str = field(default_factory=lambda: f"e2e-{uuid.uuid4().hex[:8]}@%h")
    process: subprocess.Popen | None = None
    settings_module: str = "tests.settings_e2e"
    app: str = "tests.celery_app"

    def start(self, *, ready_timeout: float = 60.0) -> None:
        env = {**os.environ, **self.env}
        env["DJANGO_SETTINGS_MODULE"] = self.settings_module
        env["PRODCAT_E2E_BROKER_URL"] = self.broker_url
        env["PYTHONUNBUFFERED"] = "1"
        # The worker is a fresh interpreter: make ``tests.*`` importable from the repo root.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        cmd = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            self.app,
            "worker",
            "-Q",
            self.queue,
            "-P",
            "prefork",
            "-c",
            str(self.concurrency),
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-n",
            self.hostname,
            "-l",
            "INFO",
        ]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("wb")
        try:
            self.process = subprocess.Popen(
                cmd,
                cwd=REPO_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so a hang kills the pool too
            )
        finally:
            log.close()  # the child holds its own descriptor
        self._wait_ready(ready_timeout)

    def _wait_ready(self, timeout: float) -> None:
        # Celery logs "<hostname> ready." once the consumer is connected to the broker.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                code = self.process.returncode
                raise RuntimeError(f"the Celery worker exited with code {code}:\n{self.log_tail()}")
            if " ready." in self.log_text():
                return
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(
            f"the Celery worker was not ready after {timeout:.0f}s:\n{self.log_tail()}"
        )

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def pool_pids(self) -> list[int]:
        """The pool processes (children of the worker's main process)."""
        if self.process is None:
            return []
        try:
            found = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
            return [int(pid) for pid in found.read_text().split()]
        except OSError:
            return []

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def stop(self, timeout: float = 20.0) -> None:
        """Warm shutdown (SIGTERM), then SIGKILL the whole process group if it hangs."""
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def delete_amqp_queue(url: str, queue: str) -> None:
    """Delete ``queue`` (Celery declares it durable) and its exchange; absent ones are fine."""
    from amqp.exceptions import NotFound
    from kombu import Connection

    with Connection(url, connect_timeout=3) as conn:
        for delete in ("queue_delete", "exchange_delete"):
            channel = conn.channel()  # a failed delete closes its channel: one each
            try:
                getattr(channel, delete)(queue)
            except NotFound:
                pass
            finally:
                channel.close()


@contextmanager
def using_broker(url: str) -> Iterator[None]:
    """Point this process's Celery app at ``url`` so on_commit dispatches reach that broker.

    The app caches its connection and producer pools, so they are dropped on the way in and
    on the way out (the same reset Celery itself does after a fork).
    """
    from celery import current_app

    app = current_app._get_current_object()
    previous = app.conf.broker_url

    def reset_pools() -> None:
        if app._pool is not None:
            app._pool.force_close_all()
        app._pool = None
        app.amqp._producer_pool = None

    reset_pools()
    app.conf.broker_url = url
    try:
        yield
    finally:
        reset_pools()
        app.conf.broker_url = previous


def drawn_photo(color: str = "goldenrod", *, size: int = 320, fmt: str = "JPEG") -> bytes:
    """A product-like photo drawn with Pillow: a garment silhouette on a white background."""
    import io

    from PIL import Image, ImageDraw

    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    s = size / 10
    # Body, sleeves and a neckline: a T-shirt outline, filled.
    draw.polygon(
        [
            (3 * s, 2 * s),
            (1 * s, 3.5 * s),
            (2 * s, 4.5 * s),
            (3 * s, 4 * s),
            (3 * s, 9 * s),
            (7 * s, 9 * s),
            (7 * s, 4 * s),
            (8 * s, 4.5 * s),
            (9 * s, 3.5 * s),
            (7 * s, 2 * s),
        ],
        fill=color,
        outline="black",
    )
    draw.ellipse((4.2 * s, 1.6 * s, 5.8 * s, 2.8 * s), fill="white", outline="black")
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, quality=90)
    return buffer.getvalue()
