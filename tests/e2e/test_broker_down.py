"""With the broker unreachable a product still saves at once; its suggestion waits, pending,
until ``prodcat_dispatch_pending`` sends it, and then the real worker finishes it."""

from __future__ import annotations

import io
import time
from typing import Any

import pytest
from django.core.management import call_command

from prodcat_django.models import CategorySuggestion, SuggestionStatus
from tests.e2e.harness import CeleryWorker, tcp_open, using_broker
from tests.e2e.waiting import assert_ready, wait_for_suggestion
from tests.testapp.models import Product

DEAD_BROKER = "redis://127.0.0.1:1/0"  # port 1: nothing listens there


@pytest.mark.e2e
def test_save_survives_a_down_broker_and_the_sweep_sends_it_later(
    redis_worker: CeleryWorker, label_categories: dict[str, Any], settings: Any
) -> None:
    assert not tcp_open("127.0.0.1", 1)
    with using_broker(DEAD_BROKER):
        started = time.monotonic()
        product = Product.objects.create(title="Brown Leather Belt")
        elapsed = time.monotonic() - started

    # BROKER_TIMEOUT is 2 s; a refused connection fails at once.
    assert elapsed < 3 * settings.PRODCAT["BROKER_TIMEOUT"], elapsed
    suggestion = CategorySuggestion.objects.current_for(product).get()
    assert suggestion.status == SuggestionStatus.PENDING
    assert suggestion.dispatched_at is None

    out = io.StringIO()
    call_command("prodcat_dispatch_pending", stdout=out)
    assert "Dispatched 1 of 1" in out.getvalue()

    finished = wait_for_suggestion(product, redis_worker)
    assert finished.pk == suggestion.pk
    assert_ready(finished, redis_worker)
