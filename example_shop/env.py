"""Read the shop's deployment settings from environment variables.

Kept apart from settings.py so the parsing can be tested and its errors are clear.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_bool(name: str, default: bool) -> bool:
    """``name`` as a boolean; an unrecognised value is an error, not silently False."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use 1/0, true/false).")


def env_list(name: str, default: list[str]) -> list[str]:
    """A comma-separated list, blanks dropped."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def database_from_url(url: str, *, base_dir: Path) -> dict[str, Any]:
    """A ``DATABASES['default']`` dict from ``postgres://user:pass@host:port/name?opt=v``
    or ``sqlite:///relative/or/absolute/path.sqlite3``."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in {"postgres", "postgresql", "pgsql"}:
        name = unquote(parts.path.lstrip("/"))
        if not name:
            raise ImproperlyConfigured(f"Database URL {url!r} names no database.")
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or ""),
            "OPTIONS": dict(parse_qsl(parts.query)),
            # Reuse connections across requests; workers hold theirs between tasks.
            "CONN_MAX_AGE": 60,
            "CONN_HEALTH_CHECKS": True,
        }
    if scheme == "sqlite":
        # sqlite:///var/db.sqlite3 is relative to the project; sqlite:////abs/path is absolute.
        raw_path = unquote(parts.path)
        path = Path(raw_path[1:]) if raw_path.startswith("//") else Path(raw_path.lstrip("/"))
        if not raw_path.startswith("//"):
            path = base_dir / path
        if not str(path):
            raise ImproperlyConfigured(f"Database URL {url!r} names no file.")
        return sqlite_database(path)
    raise ImproperlyConfigured(
        f"Unsupported database URL scheme {parts.scheme!r} in {url!r}; "
        "use postgres://user:password@host:5432/name or sqlite:///path."
    )


def sqlite_database(path: Path) -> dict[str, Any]:
    """SQLite with a busy timeout: the web process and the worker write to the same file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": path,
        "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
    }
