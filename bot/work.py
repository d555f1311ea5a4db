"""The answer queue: a fixed number of workers, a bounded line in front of them, and interaction deadlines.

Discord gives an interaction's token 15 minutes; time spent waiting in line or behind another
turn of the same conversation counts against it. A question that waits is told its place in
line; one that could no longer be answered before its token expires is dropped, while the bot
can still say so; and when the line is full, new questions are turned away at once.
"""

from __future__ import annotations

import asyncio
import functools
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

TOKEN_LIFE = 15 * 60
# Work that has not finished this long before the token expires is reported another way.
TOKEN_MARGIN = 90
# How often a waiting question looks at the clock (the clock may be a test's).
POLL = 0.5


class QueueFull(Exception):
    """More questions are waiting than the settings allow."""


class TooLate(Exception):
    """The question waited so long that its answer would arrive after its token expired."""


class AnswerQueue:
    def __init__(self, workers: int, max_waiting: int, clock: Callable[[], float]):
        self.workers = workers
        self.max_waiting = max_waiting
        self.clock = clock
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="newsdesk-ask")
        self.running = 0
        self._line: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        return len(self._line)

    def admit(self) -> None:
        """Raise QueueFull if a new question would have to wait and the line is full."""
        if self.running >= self.workers and self.waiting >= self.max_waiting:
            raise QueueFull

    async def run(self, fn: Callable[..., T], *args: Any, give_up_at: float | None = None,
                  on_wait: Callable[[int], Awaitable[None]] | None = None, **kwargs: Any) -> T:
        """`fn(*args, **kwargs)` on a worker thread once one is free.

        on_wait(ahead) is awaited once if the question has to wait; TooLate is raised if no worker
        is free by `give_up_at` (on `clock`).
        """
        await self._acquire(give_up_at, on_wait)
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self.pool, functools.partial(fn, *args, **kwargs))
        finally:
            self._release()

    async def _acquire(self, give_up_at: float | None, on_wait: Callable[[int], Awaitable[None]] | None) -> None:
        if self.running < self.workers and not self._line:
            self.running += 1
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._line.append(turn)
        try:
            if on_wait is not None:
                await on_wait(self.running + len(self._line) - 1)
            await wait_until(turn, give_up_at, self.clock)
        except BaseException:
            if turn in self._line:
                self._line.remove(turn)
            elif turn.done() and not turn.cancelled():  # handed a worker just as we gave up: pass it on
                self._release()
            raise

    def _release(self) -> None:
        while self._line:
            turn = self._line.popleft()
            if not turn.done():
                turn.set_result(None)  # the worker passes straight to the next in line
                return
        self.running -= 1

    def shutdown(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


async def wait_until(awaitable: Awaitable[Any], give_up_at: float | None, clock: Callable[[], float]) -> Any:
    """Await it, raising TooLate once `clock()` passes `give_up_at` (checked every POLL seconds)."""
    task = asyncio.ensure_future(awaitable)
    try:
        while True:
            await asyncio.wait({task}, timeout=POLL)
            if task.done():
                return task.result()
            if give_up_at is not None and clock() >= give_up_at:
                raise TooLate
    finally:
        if not task.done():  # no await since the check: what it waited for is not half taken
            task.cancel()


def token_expires(interaction: Any) -> float:
    """When the interaction's token stops working, in epoch seconds (it is issued with the interaction)."""
    return interaction.created_at.timestamp() + TOKEN_LIFE
