"""Management commands: backfill, dispatch pending suggestions, verify the checkpoint.

Each is a thin entry point over prodcat_django.services (or the checkpoint loader)."""
