"""The bounded LRU behind the per-process caches (prodcat_django/lru.py)."""

import pytest

from prodcat_django.lru import BoundedLRU


def test_least_recent_goes_first_and_get_refreshes():
    lru = BoundedLRU(2)
    lru.put("a", 1)
    lru.put("b", 2)
    assert lru.get("a") == 1  # "a" is now the most recent
    lru.put("c", 3)
    assert lru.get("b") is None and lru.get("a") == 1 and lru.get("c") == 3 and len(lru) == 2
    lru.discard(["a", "missing"])
    assert lru.get("a") is None and len(lru) == 1
    lru.clear()
    assert len(lru) == 0
    with pytest.raises(ValueError, match="size"):
        BoundedLRU(0)
