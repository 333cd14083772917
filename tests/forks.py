"""Run a function in a forked child and bring back what it found (as a prefork pool process
would run it): ``facts_from_fork(child)`` returns ``child()``'s JSON-able dict, or {} when the
child failed or hung past ``timeout`` seconds, so the caller's assertion says so."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from typing import Any


def facts_from_fork(child: Callable[[], dict[str, Any]], timeout: int = 60) -> dict[str, Any]:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            signal.alarm(timeout)  # a hung child must fail the test, not hang it
            os.close(read)
            os.write(write, json.dumps(child()).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as fh:
        facts = json.loads(fh.read() or "{}")
    os.waitpid(pid, 0)
    return facts
