"""Private services and processes the fault tests start, break and stop, each by pid.

Used by the fixtures in ``conftest.py`` and by the PostgreSQL-restart scenario, which runs in
its own process against a private cluster.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from tests.e2e.harness import (
    REPO_ROOT,
    CeleryWorker,
    probe_postgres,
    probe_redis,
    tcp_open,
    wait_until,
)
from tests.needs import missing


@dataclass
class PrivateRedis:
    """``redis-server`` on its own port, no persistence (as a cache-style broker runs)."""

    port: int
    log_path: Path
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            missing("redis-server is not installed (apt-get install redis-server)")
        if tcp_open("127.0.0.1", self.port, timeout=0.5):
            missing(f"port {self.port} is taken: set PRODCAT_FAULTS_REDIS_PORT to a free one")
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    *(binary, "--port", str(self.port), "--bind", "127.0.0.1"),
                    *("--save", "", "--appendonly", "no"),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_until(
            lambda: probe_redis(self.url).error,
            lambda error: error is None,
            timeout=10,
            interval=0.1,
            what=f"the private Redis on port {self.port}",
        )

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def freeze(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def restart(self) -> None:
        self.kill()
        self.start()


@dataclass
class Beat:
    """``celery beat`` running the sweep (``CELERY_BEAT_SCHEDULE`` of the fault settings)."""

    broker_url: str
    log_path: Path
    workdir: Path
    process: subprocess.Popen | None = None

    def start(self) -> None:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings_faults",
            "PRODCAT_E2E_BROKER_URL": self.broker_url,
            "PRODCAT_E2E_RUN_ID": settings.PRODCAT_E2E_RUN_ID,
            "PYTHONPATH": str(REPO_ROOT),
        }
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    *(sys.executable, "-m", "celery", "-A", "tests.faults.celery_app", "beat"),
                    *("-s", str(self.workdir / "beat-schedule"), "-l", "INFO"),
                ],
                cwd=REPO_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def make_worker(broker_url: str, db_name: str, log_path: Path, checkpoint: Path) -> CeleryWorker:
    return CeleryWorker(
        broker_url=broker_url,
        log_path=log_path,
        queue=settings.PRODCAT["QUEUE"],
        concurrency=2,
        settings_module="tests.settings_faults",
        app="tests.faults.celery_app",
        env={
            "PRODCAT_E2E_RUN_ID": settings.PRODCAT_E2E_RUN_ID,
            "PRODCAT_E2E_DB_NAME": db_name,
            "PRODCAT_E2E_MEDIA_ROOT": str(settings.MEDIA_ROOT),
            "PRODCAT_E2E_CHECKPOINT": str(checkpoint),
        },
    )


@dataclass
class PrivatePostgres:
    """A PostgreSQL cluster made with ``initdb`` in a temporary folder, on its own port,
    loopback only, trust auth, run as the ``postgres`` user when this process is root."""

    port: int
    log_path: Path
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="prodcat-pg-")))
    process: subprocess.Popen | None = None

    @staticmethod
    def binaries() -> Path:
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        if not found:
            missing("PostgreSQL server binaries (initdb) are not installed")
        return found[-1].parent

    def _as_owner(self) -> list[str]:
        if os.getuid() != 0:
            return []
        return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"]

    def init(self) -> None:
        if tcp_open("127.0.0.1", self.port, timeout=0.5):
            missing(f"port {self.port} is taken: set PRODCAT_FAULTS_PG_PORT to a free one")
        data = self.root / "data"
        data.mkdir()
        if os.getuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
            shutil.chown(data, "postgres", "postgres")
        subprocess.run(
            [
                *self._as_owner(),
                *(str(self.binaries() / "initdb"), "-D", str(data)),
                *("-A", "trust", "-U", "postgres", "--no-sync"),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    *self._as_owner(),
                    *(str(self.binaries() / "postgres"), "-D", str(self.root / "data")),
                    *("-p", str(self.port), "-k", str(self.root)),
                    *("-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_until(
            lambda: probe_postgres("127.0.0.1", self.port, "postgres").error,
            lambda error: error is None,
            timeout=30,
            interval=0.2,
            what=f"the private PostgreSQL on port {self.port}",
        )

    def stop(self) -> None:
        """Fast shutdown (SIGINT: clients are disconnected, as in a restart or failover)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
