"""prodcat's DRF API: synchronous suggestions, queued suggestions, and their review.

Mount it in the shop's URLconf (it needs ``djangorestframework`` and ``drf-spectacular``,
the ``api`` extra)::

    path("api/prodcat/", include("prodcat_django.api.urls")),

Endpoints (see :mod:`prodcat_django.api.views`): ``POST suggest/``,
``POST`` and ``GET products/<pk>/suggestions/`` (``?model=<app_label>.<ModelName>`` when
several product models are registered), ``GET suggestions/<id>/``,
``POST suggestions/<id>/accept/`` and ``POST suggestions/<id>/reject/``. Permissions are in
:mod:`prodcat_django.api.permissions`. Importing this package never imports torch: the
suggest endpoint loads the model lazily on its first request.
"""
