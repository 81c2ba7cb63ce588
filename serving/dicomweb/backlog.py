"""The worker's in-memory view of what the spool holds, so that a pass costs the same whatever the backlog: the
spool's folders are listed once at start (and by the periodic maintenance), the intake adds what it spools, and
the worker takes from the front. The files stay the truth; this only orders them."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable


class Backlog:
    """Names in arrival order, each with the time it arrived; adding a name already queued keeps its place."""

    def __init__(self) -> None:
        self._items: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, name: str) -> bool:
        return name in self._items

    def add(self, name: str, arrived: float) -> None:
        self._items.setdefault(name, arrived)

    def add_all(self, items: Iterable[tuple[str, float]]) -> None:
        for name, arrived in items:
            self.add(name, arrived)

    def take(self, most: int) -> list[tuple[str, float]]:
        """Up to `most` names from the front, removed."""
        return [self._items.popitem(last=False) for _ in range(min(most, len(self._items)))]

    def put_back(self, items: list[tuple[str, float]]) -> None:
        """Returns taken names to the front, in their order (a newer arrival of the same name keeps its place)."""
        for name, arrived in reversed(items):
            if name not in self._items:
                self._items[name] = arrived
                self._items.move_to_end(name, last=False)

    def oldest(self) -> float | None:
        """Arrival time of the front name."""
        return next(iter(self._items.values()), None)
