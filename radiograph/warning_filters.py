"""Warning filters changed for a block of code, one thread at a time.

`warnings.catch_warnings` saves and restores the process's one filter list, so two threads inside it at once can
restore each other's filters: the process may end up ignoring every warning for good, or never again turning one
into an error. Every such block in the product goes through `warning_filter`, which holds one lock while it runs.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

_LOCK = threading.Lock()


@contextmanager
def warning_filter(action: Literal["ignore", "error"], category: type[Warning] = Warning) -> Iterator[None]:
    """`action` for warnings of `category` inside the block; keep the block short, other threads wait for it."""
    with _LOCK, warnings.catch_warnings():
        warnings.simplefilter(action, category)
        yield
