"""`radiograph.warning_filters`: two threads changing the warning filters at once must leave the process's filters
as they were (plain `warnings.catch_warnings` does not: the choreography below shows it)."""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

from radiograph.warning_filters import warning_filter

Block = Callable[[str], AbstractContextManager[None]]


@contextmanager
def unlocked(action: str) -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter(action)  # type: ignore[arg-type]
        yield


def filters_survive(block: Block) -> bool:
    """Thread A mutes warnings; thread B enters its own block while A is inside and leaves after A has left."""
    before = list(warnings.filters)
    a_inside, a_left = threading.Event(), threading.Event()

    def a() -> None:
        with block("ignore"):
            a_inside.set()
            time.sleep(0.3)
        a_left.set()

    def b() -> None:
        a_inside.wait(5)
        with block("error"):
            a_left.wait(5)

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    after = list(warnings.filters)
    warnings.filters[:] = before
    return after == before


def test_plain_catch_warnings_in_two_threads_leaves_the_filters_changed() -> None:
    assert not filters_survive(unlocked)  # the probe can see the fault


def test_warning_filter_in_two_threads_leaves_the_filters_as_they_were() -> None:
    assert filters_survive(warning_filter)
