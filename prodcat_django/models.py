"""Suggestion storage: an abstract-base ladder (like django-taggit's) plus the concrete models.

- :class:`SuggestionBase`: every field of a suggestion except the product reference.
- :class:`GenericSuggestionBase`: adds a generic reference (content type + ``object_id`` as text,
  so integer, UUID and string primary keys all work) and the uniqueness constraint.
- :class:`CategorySuggestion`: the concrete model the whole pipeline uses.
- :class:`ForeignKeySuggestionBase`: for shops that want a real foreign key; subclass it with
  ``product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name=...)``.
  In this version the pipeline (services, tasks, admin, API) works on
  :class:`CategorySuggestion` only; the FK base gives such shops the same columns and
  constraint for their own storage.

:class:`SuggestionBatch` groups the suggestions of one bulk request so its progress can be
watched; :class:`SuggestionDecision` is the append-only audit trail of accept/reject decisions.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class SuggestionStatus(models.TextChoices):
    PENDING = "pending", _("pending")
    RUNNING = "running", _("running")
    READY = "ready", _("ready")
    FAILED = "failed", _("failed")
    ACCEPTED = "accepted", _("accepted")
    REJECTED = "rejected", _("rejected")
    OBSOLETE = "obsolete", _("obsolete")


#: Statuses that carry a human (or auto-accept) decision; such rows are never rewritten.
DECIDED_STATUSES = (SuggestionStatus.ACCEPTED, SuggestionStatus.REJECTED)
#: Statuses a worker still has to process.
OPEN_STATUSES = (SuggestionStatus.PENDING, SuggestionStatus.RUNNING)


class SuggestionBatch(models.Model):
    """One bulk request (admin action, backfill): who queued how many products, and when."""

    content_type = models.ForeignKey(
        ContentType, on_delete=models.CASCADE, related_name="+", verbose_name=_("product type")
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("queued by"),
    )
    created_at = models.DateTimeField(_("queued at"), auto_now_add=True)
    total = models.PositiveIntegerField(_("products"), default=0)
    label = models.CharField(_("label"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("suggestion batch")
        verbose_name_plural = _("suggestion batches")
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        products = "product" if self.total == 1 else "products"
        return self.label or f"batch {self.pk} ({self.total} {products})"

    def progress(self) -> dict[str, Any]:
        """Counts of this batch's suggestions per status, plus ``total``, ``done``, ``finished``.

        ``done`` counts every suggestion that left pending/running; the batch is ``finished``
        when nothing is left to run.
        """
        counts = dict.fromkeys(SuggestionStatus.values, 0)
        rows = (
            CategorySuggestion.objects.filter(batch=self)
            .values_list("status")
            .annotate(n=models.Count("pk"))
        )
        for status, n in rows:
            counts[status] = n
        open_ = sum(counts[s] for s in OPEN_STATUSES)
        done = sum(counts.values()) - open_
        return {**counts, "total": self.total, "done": done, "finished": open_ == 0}


class SuggestionQuerySet(models.QuerySet):
    def current(self) -> SuggestionQuerySet:
        return self.filter(is_current=True)

    def for_product(self, product: models.Model) -> SuggestionQuerySet:
        ct = ContentType.objects.get_for_model(product, for_concrete_model=True)
        return self.filter(content_type=ct, object_id=str(product.pk))

    def current_for(self, product: models.Model) -> SuggestionQuerySet:
        return self.for_product(product).filter(is_current=True)


class SuggestionBase(models.Model):
    """The fields of a category suggestion, without the product reference."""

    status = models.CharField(
        _("status"),
        max_length=16,
        choices=SuggestionStatus.choices,
        default=SuggestionStatus.PENDING,
        db_index=True,
    )
    # [{"label": str, "score": float}], best first, TOP_K long; scores are calibrated.
    labels = models.JSONField(_("labels"), default=list, blank=True)
    label = models.CharField(_("top label"), max_length=200, blank=True)
    score = models.FloatField(_("top score"), null=True, blank=True)
    # The shop category the top label matched (CATEGORY_MATCHER); blank when none matched.
    category_pk = models.CharField(_("matched category"), max_length=64, blank=True)
    auto_accepted = models.BooleanField(_("auto-accepted"), default=False)
    # What the model attended to, computed by the worker in the same forward pass as ``labels``:
    # {"tokens": [[word, weight], ...], "regions": 7x7 lists, "modality_weight": {"text",
    # "image"}}; null until the row is ready (and for rows made before this field existed).
    explanation = models.JSONField(_("explanation"), null=True, blank=True)
    model_name = models.CharField(_("model"), max_length=100, blank=True)
    model_version = models.CharField(_("model version"), max_length=50, blank=True)
    # sha256 of the title and image the suggestion is for (prodcat_django.fingerprint); blank
    # for a bulk-queued row until the worker reads the product.
    fingerprint = models.CharField(_("input fingerprint"), max_length=64, blank=True)
    # The product's latest suggestion; older ones stay for history with is_current=False.
    is_current = models.BooleanField(_("current"), default=True)
    error = models.TextField(_("error"), blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("reviewed by"),
    )
    reviewed_at = models.DateTimeField(_("reviewed at"), null=True, blank=True)
    # The category the merchant chose instead of the suggestion (reject with correction).
    correction_pk = models.CharField(_("correction"), max_length=64, blank=True)
    # The product's category when the worker made the suggestion ("" = none): accepting it
    # later asks for confirmation when the product was filed elsewhere since. Null for rows
    # made before this was recorded.
    product_category_pk = models.CharField(  # noqa: DJ001 - null (unknown) is not "" (none)
        _("product's category when suggested"), max_length=64, null=True, blank=True
    )
    note = models.TextField(_("note"), blank=True)
    batch = models.ForeignKey(
        SuggestionBatch,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("batch"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    # When the Celery task was last handed to the broker; null = never (broker down).
    dispatched_at = models.DateTimeField(_("dispatched at"), null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    # The lease (prodcat_django.services.runs): a pending row's broker delivery is due by
    # ``lease_until`` (DISPATCH_LEASE after sending); a running row's worker renews it before
    # every forward pass (LEASE_SECONDS). The sweep re-sends rows whose lease ran out.
    lease_until = models.DateTimeField(_("lease until"), null=True, blank=True, db_index=True)
    # The Celery task id holding the row while it runs; its own redelivery may take it back.
    lease_owner = models.CharField(_("lease owner"), max_length=64, blank=True)
    # True while the row is being decoded or is in a forward pass: a row found so after its
    # worker died was a suspect in that crash.
    in_flight = models.BooleanField(_("in flight"), default=False)
    # How often a worker died (or hung past its hard time limit) with this row in flight.
    crashes = models.PositiveSmallIntegerField(_("crashes"), default=0)
    # The out-of-taxonomy verdict (issue 10): the product probably fits none of the categories
    # the model and the neighbour index know. A flagged suggestion is never auto-accepted; the
    # admin offers "File under…" instead of Accept. ``ood_score`` is the detector's score
    # (higher = further outside), ``ood_threshold`` the calibrated cut it was compared with,
    # ``ood_reason`` a short why ("far from every category", "title and photo disagree").
    out_of_taxonomy = models.BooleanField(
        _("may not fit any category"), default=False, db_index=True
    )
    ood_score = models.FloatField(_("out-of-taxonomy score"), null=True, blank=True)
    ood_threshold = models.FloatField(_("out-of-taxonomy threshold"), null=True, blank=True)
    ood_reason = models.CharField(_("out-of-taxonomy reason"), max_length=200, blank=True)
    # The product's pooled title + photo embedding from the same forward pass (float16 bytes,
    # little-endian) and the id of the encoder that made it: accepting or correcting the
    # suggestion files this vector in the neighbour index without running the model again.
    embedding = models.BinaryField(_("embedding"), null=True, blank=True, editable=False)
    embedding_id = models.CharField(_("embedding id"), max_length=100, blank=True)

    objects = SuggestionQuerySet.as_manager()

    class Meta:
        abstract = True
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        top = f"{self.label} ({self.score:.0%})" if self.label and self.score is not None else ""
        return f"{top or 'suggestion'} [{self.get_status_display()}]"

    @property
    def is_decided(self) -> bool:
        return self.status in DECIDED_STATUSES


class GenericSuggestionBase(SuggestionBase):
    """A suggestion for any product model, through a generic reference."""

    content_type = models.ForeignKey(
        ContentType, on_delete=models.CASCADE, related_name="+", verbose_name=_("product type")
    )
    # Text so that integer, UUID and string primary keys all fit.
    object_id = models.CharField(_("product id"), max_length=64)
    product = GenericForeignKey("content_type", "object_id")

    class Meta(SuggestionBase.Meta):
        abstract = True
        constraints = [
            # At most one current suggestion per product; this also makes two current
            # suggestions for the same product and the same inputs (fingerprint) impossible.
            models.UniqueConstraint(
                fields=["content_type", "object_id"],
                condition=Q(is_current=True),
                name="%(app_label)s_%(class)s_one_current",
            ),
        ]


class ForeignKeySuggestionBase(SuggestionBase):
    """Abstract base for shops that want a real foreign key to their product.

    Subclass it and add the key, named ``product``::

        class ProductSuggestion(ForeignKeySuggestionBase):
            product = models.ForeignKey(Product, on_delete=models.CASCADE,
                                        related_name="suggestions")

            class Meta(ForeignKeySuggestionBase.Meta):
                constraints = [ForeignKeySuggestionBase.one_current_constraint("product")]

    The pipeline of this version stores suggestions in :class:`CategorySuggestion` only.
    """

    class Meta(SuggestionBase.Meta):
        abstract = True

    @staticmethod
    def one_current_constraint(field: str = "product") -> models.UniqueConstraint:
        """The partial unique constraint "one current suggestion per product" for ``field``."""
        return models.UniqueConstraint(
            fields=[field],
            condition=Q(is_current=True),
            name="%(app_label)s_%(class)s_one_current",
        )


class CategorySuggestion(GenericSuggestionBase):
    """A category suggestion for a registered product (the pipeline's model)."""

    class Meta(GenericSuggestionBase.Meta):
        verbose_name = _("category suggestion")
        verbose_name_plural = _("category suggestions")
        # A product's history; current lookups use the partial unique index.
        indexes = [models.Index(fields=["content_type", "object_id"], name="prodcat_sugg_product")]
        permissions = [
            ("review_categorysuggestion", _("Can accept or reject category suggestions")),
        ]


class DecisionAction(models.TextChoices):
    ACCEPTED = "accepted", _("accepted")
    REJECTED = "rejected", _("rejected")
    AUTO_ACCEPTED = "auto_accepted", _("auto-accepted")


class SuggestionDecision(models.Model):
    """Audit trail: one row per accept/reject/auto-accept, never updated or deleted.

    The product reference and labels are copied so the row stays readable after the product
    is deleted; the suggestion itself cannot be deleted while a decision refers to it.
    """

    suggestion = models.ForeignKey(
        CategorySuggestion,
        on_delete=models.PROTECT,
        related_name="decisions",
        verbose_name=_("suggestion"),
    )
    content_type = models.ForeignKey(
        ContentType, on_delete=models.PROTECT, related_name="+", verbose_name=_("product type")
    )
    object_id = models.CharField(_("product id"), max_length=64)
    action = models.CharField(_("action"), max_length=16, choices=DecisionAction.choices)
    # Null for auto-accept, and when the deciding user was deleted later.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("user"),
    )
    username = models.CharField(_("username"), max_length=150, blank=True)
    created_at = models.DateTimeField(_("decided at"), auto_now_add=True)
    from_label = models.CharField(_("suggested label"), max_length=200, blank=True)
    from_score = models.FloatField(_("suggested score"), null=True, blank=True)
    # The category the product got from this decision; blank for a plain rejection.
    category_pk = models.CharField(_("category set"), max_length=64, blank=True)
    previous_category_pk = models.CharField(_("previous category"), max_length=64, blank=True)
    model_version = models.CharField(_("model version"), max_length=50, blank=True)
    note = models.TextField(_("note"), blank=True)

    class Meta:
        verbose_name = _("suggestion decision")
        verbose_name_plural = _("suggestion decisions")
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["content_type", "object_id"], name="prodcat_decision_product"),
        ]
        default_permissions = ("view",)

    def __str__(self) -> str:
        who = self.username or "auto"
        return f"{self.get_action_display()} by {who}: {self.from_label} -> {self.category_pk}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ValueError("Suggestion decisions are an append-only audit trail")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise ValueError("Suggestion decisions are an append-only audit trail")

    @property
    def is_human(self) -> bool:
        return self.action != DecisionAction.AUTO_ACCEPTED


class WorkerHealth(models.Model):
    """What each Celery worker last said about its model, for screens that show health.

    One row per worker hostname, written by the worker when it loads the model (once per
    process) and whenever loading fails; ``model_loaded=False`` with ``error`` says why that
    worker stopped taking prodcat tasks.
    """

    hostname = models.CharField(_("worker"), max_length=255, unique=True)
    pid = models.PositiveIntegerField(_("process id"), default=0)
    checkpoint = models.CharField(_("checkpoint"), max_length=500, blank=True)
    model_loaded = models.BooleanField(_("model loaded"), default=False)
    model_name = models.CharField(_("model"), max_length=100, blank=True)
    model_version = models.CharField(_("model version"), max_length=50, blank=True)
    error = models.TextField(_("error"), blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("worker health")
        verbose_name_plural = _("worker health")
        ordering = ["hostname"]
        default_permissions = ("view",)

    def __str__(self) -> str:
        state = "model loaded" if self.model_loaded else f"no model: {self.error}"
        return f"{self.hostname}: {state}"


class ModelVersionStatus(models.TextChoices):
    CANDIDATE = "candidate", _("candidate")
    ACTIVE = "active", _("active")
    RETIRED = "retired", _("retired")


class ModelVersion(models.Model):
    """One trained model of the shop (or the built-in one): its identity, labels and metrics.

    The checkpoint files live in the model storage (``PRODCAT["MODEL_STORAGE"]``, a
    ``STORAGES`` alias) under ``storage_prefix``; every process keeps a verified local copy
    (:mod:`prodcat_django.training.store`). At most one row is active, by a partial unique
    constraint, so activation is one atomic update.
    """

    name = models.CharField(_("name"), max_length=100)
    version = models.CharField(_("version"), max_length=50)
    status = models.CharField(
        _("status"),
        max_length=16,
        choices=ModelVersionStatus.choices,
        default=ModelVersionStatus.CANDIDATE,
        db_index=True,
    )
    # The shipped checkpoint (or PRODCAT["CHECKPOINT"]): its files are not in the storage, and
    # its labels are matched to shop categories by LabelMapping rows and CATEGORY_MATCHER.
    builtin = models.BooleanField(_("built-in"), default=False)
    # For a shop-trained model: {label: {"category_pk": str, "name": display name when trained}},
    # one entry per output (labels are the category pks as text). Empty for the built-in one.
    label_map = models.JSONField(_("label map"), default=dict, blank=True)
    # The product model it was trained for ("app_label.Model"); blank for the built-in one.
    product_model = models.CharField(_("product model"), max_length=200, blank=True)
    # manifest.json's metrics plus the training report (held-out comparison, dataset counts).
    metrics = models.JSONField(_("metrics"), default=dict, blank=True)
    # The promotion gate's verdict against the version active when this one was trained.
    comparison = models.JSONField(_("comparison"), default=dict, blank=True)
    manifest_sha256 = models.CharField(_("manifest sha256"), max_length=64)
    # {file name: sha256} of the checkpoint folder (manifest.json's table plus the manifest).
    files = models.JSONField(_("files"), default=dict, blank=True)
    storage_prefix = models.CharField(_("storage prefix"), max_length=300, blank=True)
    files_deleted = models.BooleanField(_("files deleted"), default=False)
    dataset_fingerprint = models.CharField(_("dataset fingerprint"), max_length=80, blank=True)
    # Labelled products and decisions the training saw (the retrain schedule counts from here).
    dataset_size = models.PositiveIntegerField(_("dataset size"), default=0)
    trained_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("trained by"),
    )
    trained_by_name = models.CharField(_("trained by (name)"), max_length=150, blank=True)
    trained_at = models.DateTimeField(_("trained at"), null=True, blank=True)
    created_at = models.DateTimeField(_("added at"), auto_now_add=True)
    activated_at = models.DateTimeField(_("activated at"), null=True, blank=True)
    note = models.TextField(_("note"), blank=True)

    class Meta:
        verbose_name = _("model version")
        verbose_name_plural = _("model versions")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="prodcat_modelversion_unique"),
            models.UniqueConstraint(
                fields=["status"],
                condition=Q(status="active"),
                name="prodcat_modelversion_one_active",
            ),
        ]
        permissions = [
            ("activate_modelversion", _("Can activate and roll back model versions")),
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.version} ({self.get_status_display()})"

    @property
    def is_active(self) -> bool:
        return self.status == ModelVersionStatus.ACTIVE


class LabelMapping(models.Model):
    """A built-in model's label mapped to a shop category by primary key, editable in the admin.

    Consulted before ``CATEGORY_MATCHER``, so a renamed category keeps its label: the worker
    records the match the name matcher found the first time, and a merchant can point any
    label at any category.
    """

    model_name = models.CharField(_("model"), max_length=100)
    label = models.CharField(_("label"), max_length=200)
    category_type = models.ForeignKey(
        ContentType, on_delete=models.CASCADE, related_name="+", verbose_name=_("category type")
    )
    category_pk = models.CharField(_("category"), max_length=64)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("label mapping")
        verbose_name_plural = _("label mappings")
        ordering = ["model_name", "label"]
        constraints = [
            models.UniqueConstraint(
                fields=["model_name", "label", "category_type"], name="prodcat_labelmapping_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.label} -> {self.category_pk}"


class TrainingLock(models.Model):
    """The cross-machine lock of training: one row per lock name while a training runs.

    Taken by inserting the row (the primary key makes a second insert fail on every database);
    a row past ``expires_at`` (a machine that died mid-training) may be taken over.
    """

    name = models.CharField(_("name"), max_length=50, primary_key=True)
    holder = models.CharField(_("holder"), max_length=200)
    acquired_at = models.DateTimeField(_("acquired at"))
    expires_at = models.DateTimeField(_("expires at"))

    class Meta:
        verbose_name = _("training lock")
        verbose_name_plural = _("training locks")
        default_permissions = ()

    def __str__(self) -> str:
        return f"{self.name} held by {self.holder}"


class NeighbourSource(models.TextChoices):
    """Why a vector is in the neighbour index."""

    MERCHANT = "merchant", _("filed by a merchant")
    ACCEPTED = "accepted", _("accepted suggestion")
    CATALOGUE = "catalogue", _("already in the catalogue")
    NAME = "name", _("category name")


class NeighbourVector(models.Model):
    """One vector of the neighbour index: a product filed under a category, or a category's
    name (and description) standing in for a category without products.

    The portable store (:mod:`prodcat_django.index`): vectors are float16 bytes, so any
    database holds them; each worker keeps the matrix in memory and applies the rows whose
    ``revision`` is above the one it loaded (a tombstone, ``active=False``, removes a vector).
    ``content_type``/``object_id`` name the product (or, for ``source="name"``, the category).
    """

    content_type = models.ForeignKey(
        ContentType, on_delete=models.CASCADE, related_name="+", verbose_name=_("object type")
    )
    object_id = models.CharField(_("object id"), max_length=64)
    # The shop's category model; null for products that store category names.
    category_type = models.ForeignKey(
        ContentType,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("category type"),
    )
    category_pk = models.CharField(_("category"), max_length=64)
    source = models.CharField(_("source"), max_length=16, choices=NeighbourSource.choices)
    vector = models.BinaryField(_("vector"), editable=False)
    dim = models.PositiveIntegerField(_("dimensions"), default=0)
    # Predictor.embedding_id of the encoder that made the vector: another one's are recomputed.
    embedding_id = models.CharField(_("embedding id"), max_length=100)
    # What the vector was computed from (the product's input fingerprint, or a hash of the
    # category's name and description), so a stale vector is recognised.
    fingerprint = models.CharField(_("input fingerprint"), max_length=64, blank=True)
    revision = models.BigIntegerField(_("revision"), default=0)
    active = models.BooleanField(_("active"), default=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("neighbour vector")
        verbose_name_plural = _("neighbour vectors")
        ordering = ["revision", "pk"]
        default_permissions = ("view",)
        constraints = [
            models.UniqueConstraint(
                fields=["content_type", "object_id", "category_pk", "embedding_id"],
                name="prodcat_neighbour_unique",
            ),
        ]
        indexes = [
            models.Index(fields=["embedding_id", "revision"], name="prodcat_neighbour_rev"),
            models.Index(fields=["content_type", "object_id"], name="prodcat_neighbour_obj"),
        ]

    def __str__(self) -> str:
        return f"{self.get_source_display()} {self.object_id} -> {self.category_pk}"


class NeighbourIndexState(models.Model):
    """The index's change counter: every write to :class:`NeighbourVector` raises ``revision``
    in the same transaction (the row lock orders writers), so a worker that sees revision N
    also sees every vector written up to N; one cheap query before each task tells a worker
    whether its in-memory matrix is still current."""

    name = models.CharField(_("name"), max_length=50, primary_key=True)
    revision = models.BigIntegerField(_("revision"), default=0)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("neighbour index state")
        verbose_name_plural = _("neighbour index state")
        default_permissions = ()

    def __str__(self) -> str:
        return f"{self.name}: revision {self.revision}"


class CategoryDescription(models.Model):
    """A merchant's words about a category (optional): embedded with its name by the text
    encoder, it stands in for the category until products are filed under it."""

    category_type = models.ForeignKey(
        ContentType, on_delete=models.CASCADE, related_name="+", verbose_name=_("category type")
    )
    category_pk = models.CharField(_("category"), max_length=64)
    description = models.TextField(
        _("description"),
        help_text=_("What belongs in this category, in a sentence or a few words."),
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("category description")
        verbose_name_plural = _("category descriptions")
        ordering = ["category_type", "category_pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["category_type", "category_pk"], name="prodcat_categorydescription_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.category_pk}: {self.description[:40]}"
