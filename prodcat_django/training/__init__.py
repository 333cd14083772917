"""The shop's own models: the model store, datasets built from the catalogue and the merchants'
decisions, training with the promotion gate, and scheduled retraining.

- :mod:`~prodcat_django.training.store`: model versions (rows + files in a Django storage),
  verified local copies, activation and rollback, the worker's active model.
- :mod:`~prodcat_django.training.labels`: model labels to shop categories (pks for shop-trained
  versions, the admin-editable mapping and the name matcher for the built-in one).
- :mod:`~prodcat_django.training.dataset`: which products are labelled and by what, the group
  split, the dataset fingerprint, the CSV export.
- :mod:`~prodcat_django.training.trainer`: training a new version and the promotion gate.
- :mod:`~prodcat_django.training.schedule`: the cross-machine lock and "is a retrain due".

The commands (``prodcat_train``, ``prodcat_models``, ``prodcat_export_dataset``), the
``prodcat.retrain`` task and the admin's model-versions page are thin entry points over these.
Nothing here imports torch at import time; training and the worker's load import it when called.
"""
