"""prodcat's admin: registers the review admin, batches and the audit trail on ``admin.site``.

- :class:`~prodcat_django.admin.review.CategorySuggestionAdmin`: review suggestions (accept,
  reject, reject with a chosen category), see why the model suggested them.
- :class:`~prodcat_django.admin.history.SuggestionBatchAdmin`: bulk requests and their
  progress page; :class:`~prodcat_django.admin.history.SuggestionDecisionAdmin`: the audit trail.
- :class:`~prodcat_django.admin.versions.ModelVersionAdmin`: model versions, metrics side by
  side, activate / roll back; :class:`~prodcat_django.admin.versions.LabelMappingAdmin`: the
  built-in model's labels mapped to shop categories.
- For the shop's product admin: :class:`SuggestCategoriesAdminMixin` and
  :func:`enable_suggestions` (from :mod:`prodcat_django.admin.product`, re-exported here).

A custom ``AdminSite`` can register these classes itself; links follow the site's namespace.
Nothing here imports torch or loads the model: the explanation view shows what the worker stored.
"""

from django.contrib import admin

from prodcat_django.admin.descriptions import CategoryDescriptionAdmin
from prodcat_django.admin.history import SuggestionBatchAdmin, SuggestionDecisionAdmin
from prodcat_django.admin.product import SuggestCategoriesAdminMixin, enable_suggestions
from prodcat_django.admin.review import CategorySuggestionAdmin
from prodcat_django.admin.versions import LabelMappingAdmin, ModelVersionAdmin
from prodcat_django.models import (
    CategoryDescription,
    CategorySuggestion,
    LabelMapping,
    ModelVersion,
    SuggestionBatch,
    SuggestionDecision,
)

__all__ = [
    "INDEX_TEMPLATE",
    "CategoryDescriptionAdmin",
    "CategorySuggestionAdmin",
    "LabelMappingAdmin",
    "ModelVersionAdmin",
    "SuggestCategoriesAdminMixin",
    "SuggestionBatchAdmin",
    "SuggestionDecisionAdmin",
    "enable_suggestions",
]

#: The admin index with how many suggestions wait for review (a custom site sets its own
#: ``index_template`` to this, or includes ``{% prodcat_review_summary %}`` in its own).
INDEX_TEMPLATE = "admin/prodcat_django/index.html"

if admin.site.index_template is None:
    admin.site.index_template = INDEX_TEMPLATE
admin.site.register(CategorySuggestion, CategorySuggestionAdmin)
admin.site.register(SuggestionBatch, SuggestionBatchAdmin)
admin.site.register(SuggestionDecision, SuggestionDecisionAdmin)
admin.site.register(ModelVersion, ModelVersionAdmin)
admin.site.register(LabelMapping, LabelMappingAdmin)
admin.site.register(CategoryDescription, CategoryDescriptionAdmin)
