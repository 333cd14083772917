"""prodcat's settings: one ``PRODCAT`` dict in the shop's settings, read lazily.

``prodcat_settings.TOP_K`` looks ``settings.PRODCAT["TOP_K"]`` up on every access (falling back
to :data:`DEFAULTS`), so ``override_settings(PRODCAT={...})`` in tests and settings changed at
run time take effect without a reload. Example::

    PRODCAT = {
        "CHECKPOINT": BASE_DIR / "model_checkpoint" / "prodcat" / "1.0.0",
        "AUTO_ACCEPT": True,
        "QUEUE": "prodcat",
    }
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

#: Every key prodcat reads, with its default and what it means.
DEFAULTS: dict[str, Any] = {
    # Checkpoint directory; None = the one shipped with the package.
    "CHECKPOINT": None,
    # torch device for the worker's model ("cpu", "cuda", "cuda:1"); None = cuda if available.
    "DEVICE": None,
    # Runtime of the frozen encoders: "auto" (ONNX Runtime where onnxruntime is installed, the
    # device is the CPU and its export matches torch, else torch; the log says which and why),
    # "torch" or "onnx". None: the PRODCAT_ENCODER_BACKEND environment variable, else "auto".
    "ENCODER_BACKEND": None,
    # Suggest a category whenever a registered product is created or its title/image changes.
    "AUTO_SUGGEST": True,
    # Apply a suggestion without review when the model's score reaches the checkpoint's
    # validated threshold and no human decided the product's category. Off by default.
    "AUTO_ACCEPT": False,
    # How many labels (best first) a suggestion keeps.
    "TOP_K": 3,
    # The Celery queue prodcat's tasks are sent to; run a worker with ``-Q <QUEUE>``.
    "QUEUE": "prodcat",
    # A worker consuming QUEUE loads the model in its main process before the pool forks; each
    # pool process shares those weights and runs one warm-up pass as it starts
    # (``worker_process_init``, in a background thread), not at its first task.
    "PRELOAD_MODEL": True,
    # A web process loads the model at start-up, in a background thread, so the first
    # ``suggest/`` request does not pay for it. Off by default: the web process then never
    # imports torch unless a request needs the model. Not for servers that load the app
    # before forking their workers (gunicorn --preload): torch does not survive a fork.
    "WARM_UP_WEB": False,
    # Products per forward pass in the worker.
    "TASK_BATCH_SIZE": 32,
    # Products per Celery task on the bulk path (admin action, backfill). One forward pass
    # (TASK_BATCH_SIZE) per task, so every worker process gets work: chunks of 100 left a
    # second process idle for a third of a 256-product run (docs/performance.md).
    "BULK_CHUNK_SIZE": 32,
    # The admin bulk action asks for confirmation above this many products.
    "BULK_CONFIRM_THRESHOLD": 200,
    # Upload limits of the synchronous suggest endpoint.
    "MAX_UPLOAD_BYTES": 10 * 1024 * 1024,
    # Pixels of a photo as decoded (the worker and suggest/ decode reduced, so a JPEG counts at
    # 1/2-1/8 of its size); above it the worker suggests from the title alone and says so.
    "MAX_IMAGE_PIXELS": 40_000_000,
    # The largest product photo file the worker reads (phone photos are 3-25 MB); a larger one
    # is not read: the worker suggests from the title alone and says so.
    "MAX_IMAGE_FILE_BYTES": 50 * 1024 * 1024,
    # Leases (seconds), see prodcat_django.services.runs. A running row's worker renews its
    # lease before every forward pass, to now + LEASE_SECONDS + twice the last pass's time;
    # once it runs out (the worker died) the sweep sends the row again.
    "LEASE_SECONDS": 20,
    # A sent row that no worker started within this long, while no worker holds a live lease
    # (so the queue is not just busy), was lost by the broker: the sweep sends it again.
    "DISPATCH_LEASE": 20,
    # Seconds between two heartbeats of a worker consuming QUEUE (written by its main process,
    # idle or busy, into WorkerHealth.updated_at); 0 or None: no heartbeat, and the admin
    # does not warn that no worker is seen.
    "WORKER_HEARTBEAT": 30,
    # The admin says that no worker runs once none was seen on QUEUE for this many seconds
    # (keep it a few heartbeats long: a busy database may delay one).
    "WORKER_LOST_AFTER": 120,
    # Time limits. A forward pass of n products may take TIME_LIMIT_PER_PRODUCT * (n + 2)
    # seconds; past that the pass is retried one product at a time and a product that hangs
    # alone fails with that reason. Each task gets Celery soft/hard time limits scaled to its
    # size: TIME_LIMIT_BASE + 2 * TIME_LIMIT_PER_PRODUCT * (n + 2) (+ 30 s for the hard one).
    "TIME_LIMIT_PER_PRODUCT": 5.0,
    "TIME_LIMIT_BASE": 120.0,
    # Dotted path of ``matcher(label: str, category_model) -> category instance | None``.
    "CATEGORY_MATCHER": "prodcat_django.matching.match_by_name_or_slug",
    # {label: "Parent > Child"}: the category path a model label means, where several
    # categories of a tree carry the label's name (the default matcher reads it).
    "LABEL_PATHS": {},
    # Images at URLs (an adapter's ImageSource.from_url), fetched by the worker only:
    # allowed schemes; allowed hosts (None = any host with public addresses only; a list =
    # only these, "cdn.example.com" exactly or ".example.com" with subdomains; a host named
    # exactly may have a private address, e.g. "127.0.0.1"); seconds for the whole download;
    # redirects followed (each checked the same way). MAX_UPLOAD_BYTES caps the size.
    "IMAGE_URL_SCHEMES": ("https",),
    "IMAGE_URL_HOSTS": None,
    "IMAGE_URL_TIMEOUT": 10.0,
    "IMAGE_URL_MAX_REDIRECTS": 3,
    # Seconds the web process waits for the broker before giving up (the suggestion then
    # stays pending and the sweep sends it later).
    "BROKER_TIMEOUT": 2.0,
    # DRF throttle rate of the API's "prodcat" scope.
    "API_THROTTLE_RATE": "60/min",
    # ── Model versions and training (prodcat_django.training) ──
    # The STORAGES alias holding trained checkpoints (shared by web and workers). When the
    # alias is not configured: a local FileSystemStorage at MEDIA_ROOT/prodcat_models.
    "MODEL_STORAGE": "prodcat_models",
    # Where each process keeps its verified local copies of checkpoints; None = a folder in the
    # system's temporary directory.
    "MODEL_CACHE_DIR": None,
    # Files of the newest this many shop-trained versions are kept (the active one always is);
    # older versions keep their row and lose their files.
    "KEEP_VERSIONS": 5,
    # The Celery queue of prodcat.retrain: training never waits behind (or starves) suggestions.
    "TRAIN_QUEUE": "prodcat_train",
    # prodcat.retrain(if_due=True) trains when at least this many new decisions or newly
    # categorized products accumulated since the active version's training.
    "RETRAIN_MIN_NEW": 50,
    # Seconds prodcat_train may spend choosing hyperparameters on validation (ml.train.auto_fit).
    "TRAIN_BUDGET": 3600,
    # Categories with fewer labelled products are left out of training.
    "MIN_PER_CATEGORY": 5,
    # Seconds after which a training lock whose holder died may be taken over.
    "TRAIN_LOCK_TIMEOUT": 6 * 3600,
    # Failed Basic/token sign-ins allowed per client address before the API answers 429 to
    # that address (checked before the credentials); None turns it off.
    "AUTH_FAILURE_RATE": "10/min",
    # ── The neighbour head and the out-of-taxonomy verdict (prodcat_django.services.neighbours) ──
    # Learn from each decision at once: products filed by a merchant, by an accepted suggestion
    # or already in the catalogue (manage.py prodcat_index), and category names, are kept in an
    # index every worker reads; categories the model cannot predict are suggested from it.
    "NEIGHBOURS": True,
    # The lookup's class (prodcat_django.index.memory.NeighbourBackend); the portable one keeps
    # the matrix in each worker's memory, refreshed from the database before each task.
    "NEIGHBOUR_BACKEND": "prodcat_django.index.memory.PortableIndex",
    # Seconds between a worker's checks for new, renamed or deleted categories (name vectors).
    "NEIGHBOUR_NAME_SYNC_SECONDS": 30.0,
    # A category with no product yet is known by its name; the shop's newest undecided
    # products (up to this many; 0 turns it off) shape it into a prototype of the products
    # that name attracts, photos included (ml.knn.refine_names), re-read at most this often.
    "NEIGHBOUR_POOL": 2000,
    "NEIGHBOUR_POOL_SECONDS": 60.0,
}


class ProdcatSettings:
    """Attribute access to ``settings.PRODCAT`` with :data:`DEFAULTS`; nothing is cached."""

    def __init__(self, defaults: dict[str, Any] | None = None) -> None:
        self._defaults = DEFAULTS if defaults is None else defaults

    @property
    def user_settings(self) -> dict[str, Any]:
        value = getattr(settings, "PRODCAT", None) or {}
        if not isinstance(value, dict):
            raise TypeError(f"settings.PRODCAT must be a dict, not {type(value).__name__}")
        return value

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in self._defaults:
            raise AttributeError(f"Unknown prodcat setting {name!r}")
        return self.user_settings.get(name, self._defaults[name])

    def unknown_keys(self) -> list[str]:
        """Keys of ``settings.PRODCAT`` that prodcat does not know (typos), sorted."""
        return sorted(set(self.user_settings) - set(self._defaults))


prodcat_settings = ProdcatSettings()
