"""A bounded mapping that forgets the least recently used entry: the bot's per-conversation memory.

Everything the bot keeps per user, thread or conversation lives in one of these, so a bot in
thousands of servers holds at most `maxsize` of each; what is forgotten can be rebuilt (a
thread's memory from its messages) or is harmless to lose (a reminder sent once more).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, MutableMapping
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Recent(MutableMapping[K, V], Generic[K, V]):
    def __init__(self, maxsize: int, on_evict: Callable[[K, V], None] | None = None):
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.maxsize = maxsize
        self.on_evict = on_evict
        self._data: OrderedDict[K, V] = OrderedDict()

    def __getitem__(self, key: K) -> V:
        value = self._data[key]
        self._data.move_to_end(key)  # reading counts as use
        return value

    def __setitem__(self, key: K, value: V) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.maxsize:
            old, gone = self._data.popitem(last=False)
            if self.on_evict is not None:
                self.on_evict(old, gone)

    def __delitem__(self, key: K) -> None:
        del self._data[key]

    def __contains__(self, key: object) -> bool:  # a membership test is no use
        return key in self._data

    def __iter__(self) -> Iterator[K]:
        return iter(list(self._data))

    def __len__(self) -> int:
        return len(self._data)
