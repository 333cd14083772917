"""The product classifier: frozen text and image encoders fused by cross-modal attention.

Nothing in this subpackage imports Django, so it can be trained, evaluated and benchmarked
alone (``python -m prodcat_django.ml --help``). See docs/architecture.md for the interface the
Django side relies on. This ``__init__`` stays import-light: torch is only imported by the
modules that need it.
"""
