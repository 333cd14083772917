"""Error text that leaves the server: stored on a suggestion, shown by the API and the admin.

Exception messages from storages, Pillow and torch often carry absolute server paths
(``[Errno 2] No such file or directory: '/srv/shop/media/products/x.jpg'``); those tell any
API user how the server is laid out. :func:`without_paths` keeps the file's name only.
"""

from __future__ import annotations

import re

# An absolute POSIX path of two or more parts, or a Windows drive path, not part of a URL or
# of a word ("10/min", "http://host/a/b" are left alone).
_ABSOLUTE_PATH = re.compile(
    r"(?<![\w.:/\\~-])(?:/(?:[^\s/'\"`<>]+/)+|[A-Za-z]:\\(?:[^\s\\'\"`<>]+\\)+)"
    r"(?P<name>[^\s/\\'\"`<>]*)"
)


def without_paths(text: str) -> str:
    """``text`` with each absolute path replaced by its last part (the file's name)."""
    return _ABSOLUTE_PATH.sub(lambda m: m.group("name") or "…", text or "")
