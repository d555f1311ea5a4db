"""Per-user rate limit: at most `limit` questions in any `window` seconds (a sliding window)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class RateLimiter:
    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.monotonic):
        self.limit = limit
        self.window = window
        self.clock = clock
        self._recent: dict[int, deque[float]] = {}

    def acquire(self, user_id: int) -> float:
        """0 when the user may ask now (and the question is counted), else the seconds to wait."""
        if self.limit <= 0:
            return 0.0
        now = self.clock()
        recent = self._recent.setdefault(user_id, deque())
        while recent and recent[0] <= now - self.window:
            recent.popleft()
        if len(recent) >= self.limit:
            return recent[0] + self.window - now
        recent.append(now)
        if len(self._recent) > 10_000:  # forget users who have not asked for a while
            self._recent = {u: q for u, q in self._recent.items() if q and q[-1] > now - self.window}
        return 0.0
