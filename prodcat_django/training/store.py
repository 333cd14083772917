"""The model store: one :class:`~prodcat_django.models.ModelVersion` row per version, the
checkpoint files in a Django storage, and a verified local copy in every process.

Web and workers may run on different machines: the row is the truth (status, the sha256 of
every file), the storage (``PRODCAT["MODEL_STORAGE"]``, a ``STORAGES`` alias; S3 or similar in
production) holds the files, and :func:`local_checkpoint` downloads a version into
``MODEL_CACHE_DIR`` and checks every hash before anything loads it. The shipped checkpoint (or
``PRODCAT["CHECKPOINT"]``) is the built-in version: no files in the storage, active whenever no
other version is.

The worker calls :func:`active_predictor` before each task: one indexed query says which version
is active; a new one is fetched, verified and loaded, and the old model is dropped.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, Storage, storages
from django.core.files.storage.handler import InvalidStorageError
from django.db import IntegrityError, transaction
from django.utils import timezone

from prodcat_django.conf import prodcat_settings
from prodcat_django.models import ModelVersion, ModelVersionStatus

if TYPE_CHECKING:
    from prodcat_django.ml.manifest import CheckpointInfo
    from prodcat_django.ml.predictor import Predictor

logger = logging.getLogger(__name__)

#: The permission that allows activating and rolling back versions (admin and API).
ACTIVATE_PERMISSION = "prodcat_django.activate_modelversion"


class StoreError(Exception):
    """A version that cannot be stored, fetched or activated; the message says why."""


# ── storage and local copies ────────────────────────────────────────────────────────────────


def model_storage() -> Storage:
    """The ``STORAGES`` alias ``MODEL_STORAGE``; a local folder when the alias is not set."""
    alias = prodcat_settings.MODEL_STORAGE
    try:
        return storages[alias]
    except InvalidStorageError:
        from django.conf import settings

        root = Path(settings.MEDIA_ROOT or ".") / "prodcat_models"
        return FileSystemStorage(location=str(root), base_url=None)


def local_cache_dir() -> Path:
    configured = prodcat_settings.MODEL_CACHE_DIR
    if configured:
        return Path(configured).expanduser()
    return Path(tempfile.gettempdir()) / "prodcat-models"


#: Local copies this process has verified, by manifest sha256.
_verified: dict[str, Path] = {}
_lock = threading.Lock()


def builtin_checkpoint() -> Path:
    """The built-in version's folder: ``PRODCAT["CHECKPOINT"]`` or the shipped checkpoint."""
    from prodcat_django.classifier import checkpoint_path

    return checkpoint_path()


def local_checkpoint(version: ModelVersion) -> Path:
    """A local folder holding ``version``'s checkpoint, every file's sha256 checked.

    Downloaded from the model storage on first use in this machine's cache; a cached copy is
    re-verified once per process. Raises :class:`StoreError` for missing files or any hash
    that differs from what the row records (a tampered or corrupted storage is refused).
    """
    if version.builtin:
        return builtin_checkpoint()
    if version.files_deleted:
        raise StoreError(
            f"{version.name} {version.version}: its files were deleted (KEEP_VERSIONS); "
            "import the checkpoint again with manage.py prodcat_models import DIR"
        )
    sha = version.manifest_sha256
    with _lock:
        known = _verified.get(sha)
        if known is not None and known.is_dir():
            return known
        target = local_cache_dir() / sha[:32]
        if target.is_dir():
            try:
                _verify_local(target, version)
            except StoreError:
                logger.warning("prodcat: local copy %s failed verification; fetching again", target)
                shutil.rmtree(target, ignore_errors=True)
        if not target.is_dir():
            _download(version, target)
        _verified[sha] = target
        return target


def _download(version: ModelVersion, target: Path) -> None:
    storage = model_storage()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        for name, expected in version.files.items():
            key = _storage_key(version.storage_prefix, name)
            try:
                with storage.open(key, "rb") as handle:
                    data = handle.read()
            except (OSError, FileNotFoundError) as exc:
                raise StoreError(
                    f"{version.name} {version.version}: {key} cannot be read from the model "
                    f"storage ({exc})"
                ) from exc
            actual = _sha256(data)
            if actual != expected:
                raise StoreError(
                    f"{version.name} {version.version}: {key} has sha256 {actual[:12]}..., the "
                    f"version row records {expected[:12]}...; the stored file was changed or "
                    "corrupted, so it is not loaded"
                )
            path = staging / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        _verify_local(staging, version)
        try:
            os.replace(staging, target)
        except OSError:
            if not target.is_dir():  # another process of this machine won the race: fine
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _verify_local(path: Path, version: ModelVersion) -> CheckpointInfo:
    from prodcat_django.ml.manifest import CheckpointError, sha256_file, verify_checkpoint

    try:
        info = verify_checkpoint(path)
    except CheckpointError as exc:
        raise StoreError(f"{version.name} {version.version}: {exc}") from exc
    actual = sha256_file(path / "manifest.json")
    if actual != version.manifest_sha256:
        raise StoreError(
            f"{version.name} {version.version}: {path / 'manifest.json'} has sha256 "
            f"{actual[:12]}..., the version row records {version.manifest_sha256[:12]}...; "
            "refusing to load it"
        )
    return info


def _storage_key(prefix: str, name: str) -> str:
    return f"{prefix.rstrip('/')}/{name}"


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


# ── adding versions ─────────────────────────────────────────────────────────────────────────


def ensure_builtin() -> ModelVersion:
    """The row of the built-in checkpoint (created on first call; active if nothing else is)."""
    from prodcat_django.ml.manifest import read_checkpoint, sha256_file

    path = builtin_checkpoint()
    info = read_checkpoint(path)
    sha = sha256_file(path / "manifest.json")
    row = ModelVersion.objects.filter(name=info.name, version=info.version).first()
    if row is not None:
        if row.builtin and row.manifest_sha256 != sha:
            row.manifest_sha256 = sha
            row.metrics = info.metrics
            row.save(update_fields=["manifest_sha256", "metrics"])
        return row
    with transaction.atomic():
        has_active = ModelVersion.objects.filter(status=ModelVersionStatus.ACTIVE).exists()
        try:
            with transaction.atomic():
                return ModelVersion.objects.create(
                    name=info.name,
                    version=info.version,
                    builtin=True,
                    status=(
                        ModelVersionStatus.RETIRED if has_active else ModelVersionStatus.ACTIVE
                    ),
                    activated_at=None if has_active else timezone.now(),
                    metrics=info.metrics,
                    manifest_sha256=sha,
                    trained_at=_parse_time(info.created_at),
                    note="the checkpoint shipped with prodcat (or PRODCAT['CHECKPOINT'])",
                )
        except IntegrityError:  # created concurrently
            return ModelVersion.objects.get(name=info.name, version=info.version)


def add_version(
    path: str | Path,
    *,
    label_map: dict[str, dict[str, Any]] | None = None,
    product_model: str = "",
    metrics: dict[str, Any] | None = None,
    comparison: dict[str, Any] | None = None,
    trained_by: Any = None,
    dataset_fingerprint: str = "",
    dataset_size: int = 0,
    note: str = "",
) -> ModelVersion:
    """Verify the checkpoint folder at ``path``, copy its files to the model storage and add its
    row as a candidate. Importing the same checkpoint twice returns the existing row; another
    checkpoint under an existing name and version is refused."""
    from prodcat_django.ml.manifest import CheckpointError, sha256_file, verify_checkpoint

    root = Path(path)
    try:
        info = verify_checkpoint(root)
    except CheckpointError as exc:
        raise StoreError(f"not a usable checkpoint: {exc}") from exc
    sha = sha256_file(root / "manifest.json")
    existing = ModelVersion.objects.filter(name=info.name, version=info.version).first()
    if existing is not None:
        if existing.manifest_sha256 == sha:
            return existing
        raise StoreError(
            f"a different checkpoint is already stored as {info.name} {info.version}; give this "
            "one another version (its manifest's 'version')"
        )
    files = {
        f.relative_to(root).as_posix(): sha256_file(f)
        for f in sorted(root.rglob("*"))
        if f.is_file()
    }
    prefix = f"{info.name}/{info.version}-{sha[:12]}"
    storage = model_storage()
    for name in files:
        key = _storage_key(prefix, name)
        if storage.exists(key):
            storage.delete(key)  # a leftover of an interrupted import of this very checkpoint
        saved = storage.save(key, ContentFile((root / name).read_bytes()))
        if saved != key:
            raise StoreError(f"the model storage saved {key} as {saved}; it must keep names")
    user = trained_by if getattr(trained_by, "is_authenticated", False) else None
    return ModelVersion.objects.create(
        name=info.name,
        version=info.version,
        status=ModelVersionStatus.CANDIDATE,
        label_map=label_map or {},
        product_model=product_model,
        metrics=metrics if metrics is not None else info.metrics,
        comparison=comparison or {},
        manifest_sha256=sha,
        files=files,
        storage_prefix=prefix,
        dataset_fingerprint=dataset_fingerprint,
        dataset_size=dataset_size,
        trained_by=user,
        trained_by_name=user.get_username() if user is not None else "",
        trained_at=_parse_time(info.created_at) or timezone.now(),
        note=note,
    )


def _parse_time(text: str) -> Any:
    from django.utils.dateparse import parse_datetime

    try:
        return parse_datetime(text.replace("Z", "+00:00")) if text else None
    except ValueError:
        return None


# ── activation ──────────────────────────────────────────────────────────────────────────────


def active_version() -> ModelVersion | None:
    """The active row (one indexed query), or None: then the built-in checkpoint is active."""
    return ModelVersion.objects.filter(status=ModelVersionStatus.ACTIVE).first()


def find_version(spec: str) -> ModelVersion:
    """A version by ``VERSION``, ``NAME:VERSION``, ``builtin`` or its row id (``#12``)."""
    spec = spec.strip()
    if spec == "builtin":
        return ensure_builtin()
    if spec.startswith("#") and spec[1:].isdigit():
        row = ModelVersion.objects.filter(pk=int(spec[1:])).first()
    elif ":" in spec:
        name, _, version = spec.partition(":")
        row = ModelVersion.objects.filter(name=name, version=version).first()
    else:
        rows = list(ModelVersion.objects.filter(version=spec)[:2])
        if len(rows) > 1:
            raise StoreError(f"several models have version {spec!r}; say NAME:VERSION")
        row = rows[0] if rows else None
    if row is None:
        raise StoreError(f"no model version {spec!r} (see manage.py prodcat_models list)")
    return row


def activate(version: ModelVersion, *, rerun: bool = True) -> ModelVersion:
    """Make ``version`` the active one, atomically: the previous active row is retired in the
    same transaction (a partial unique constraint allows one active row). Its files are checked
    first (downloaded and verified), so a broken version is never activated. After commit, the
    undecided ready suggestions of older versions are re-run (``rerun``) and old versions'
    files beyond ``KEEP_VERSIONS`` are deleted. Decided suggestions are never touched."""
    local_checkpoint(version)  # raises StoreError before anything changes
    with transaction.atomic():
        row = ModelVersion.objects.select_for_update().get(pk=version.pk)
        if row.files_deleted:
            raise StoreError(f"{row.name} {row.version}: its files were deleted")
        ModelVersion.objects.filter(status=ModelVersionStatus.ACTIVE).exclude(pk=row.pk).update(
            status=ModelVersionStatus.RETIRED
        )
        if row.status != ModelVersionStatus.ACTIVE:
            row.status = ModelVersionStatus.ACTIVE
            row.activated_at = timezone.now()
            row.save(update_fields=["status", "activated_at"])
        if rerun:
            transaction.on_commit(lambda: rerun_stale_suggestions(row), robust=True)
        transaction.on_commit(prune_files, robust=True)
    version.__dict__.update(status=row.status, activated_at=row.activated_at)
    return row


def rollback() -> ModelVersion:
    """Activate the version that was active before the current one (the built-in one if none)."""
    ensure_builtin()
    current = active_version()
    previous = (
        ModelVersion.objects.exclude(pk=getattr(current, "pk", None))
        .filter(activated_at__isnull=False, files_deleted=False)
        .order_by("-activated_at", "-pk")
        .first()
    )
    if previous is None:
        previous = ensure_builtin()
        if current is not None and previous.pk == current.pk:
            raise StoreError("nothing to roll back to: the built-in version is active")
    return activate(previous)


def rerun_stale_suggestions(version: ModelVersion) -> int:
    """Queue new suggestions for products whose current suggestion is ready (not yet reviewed)
    but was made by another model version. Accepted and rejected ones are left alone."""
    from collections import defaultdict

    from prodcat_django.models import CategorySuggestion, SuggestionStatus
    from prodcat_django.registry import get_adapter
    from prodcat_django.services.requests import request_suggestions

    info_name, info_version = _model_identity(version)
    stale = (
        CategorySuggestion.objects.current()
        .filter(status=SuggestionStatus.READY)
        .exclude(model_name=info_name, model_version=info_version)
        .values_list("content_type_id", "object_id")
    )
    by_type: dict[int, list[str]] = defaultdict(list)
    for ct_id, object_id in stale.iterator():
        by_type[ct_id].append(object_id)
    total = 0
    from django.contrib.contenttypes.models import ContentType

    for ct_id, object_ids in by_type.items():
        model = ContentType.objects.get_for_id(ct_id).model_class()
        try:
            spec = get_adapter(model) if model is not None else None
        except LookupError:
            spec = None
        if spec is None:
            continue
        batch = request_suggestions(
            spec.model._default_manager.filter(pk__in=object_ids),
            label=f"re-run with {version.name} {version.version}",
        )
        total += batch.total
    if total:
        logger.info("prodcat: %d ready suggestion(s) re-run with %s", total, version)
    return total


def _model_identity(version: ModelVersion) -> tuple[str, str]:
    # The name/version the worker writes on suggestions: the checkpoint's own manifest values.
    return version.name, version.version


def prune_files(keep: int | None = None) -> list[ModelVersion]:
    """Delete the storage files of shop-trained versions older than the newest
    ``KEEP_VERSIONS`` (never the active one's). Rows stay, marked ``files_deleted``, and this
    process's local copies of them go too. Returns the pruned rows."""
    keep = int(prodcat_settings.KEEP_VERSIONS if keep is None else keep)
    rows = list(
        ModelVersion.objects.filter(builtin=False, files_deleted=False).order_by(
            "-created_at", "-pk"
        )
    )
    pruned = []
    storage = model_storage()
    for row in rows[max(0, keep) :]:
        if row.status == ModelVersionStatus.ACTIVE:
            continue
        for name in row.files:
            key = _storage_key(row.storage_prefix, name)
            try:
                storage.delete(key)
            except OSError as exc:  # keep going; the row says what is left
                logger.warning("prodcat: could not delete %s: %s", key, exc)
        ModelVersion.objects.filter(pk=row.pk).update(files_deleted=True)
        local = local_cache_dir() / row.manifest_sha256[:32]
        shutil.rmtree(local, ignore_errors=True)
        _verified.pop(row.manifest_sha256, None)
        pruned.append(row)
    return pruned


# ── the worker's model ──────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class ActiveModel:
    """What the worker classifies with: the loaded predictor and its version row (None while
    the built-in version has no row yet)."""

    predictor: Predictor
    version: ModelVersion | None


def active_predictor() -> ActiveModel:
    """The active version's predictor, loaded in this process (the previous one is dropped).

    Cheap when nothing changed: one query for the active row and a dictionary lookup. A new
    active version is fetched into the local cache, verified, then loaded.
    """
    from prodcat_django.classifier import get_predictor

    row = active_version()
    path = builtin_checkpoint() if row is None or row.builtin else local_checkpoint(row)
    return ActiveModel(predictor=get_predictor(path), version=row)


def forget_local_copies(rows: Iterable[ModelVersion] = ()) -> None:
    """Forget which local copies this process verified (tests; after editing the cache)."""
    with _lock:
        if not rows:
            _verified.clear()
        for row in rows:
            _verified.pop(row.manifest_sha256, None)
