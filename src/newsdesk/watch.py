"""Keep an index current while the corpus changes: filesystem events, debounced into updates.

watchdog delivers the events (inotify on Linux); where that is unavailable (a network share, a
container without inotify) a polling observer takes over. Events only say "something changed":
the update itself compares the corpus with the index, so a lost or duplicated event costs
nothing but a rescan, and a periodic rescan catches whatever events were missed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.polling import PollingObserver

from newsdesk.desk import Desk
from newsdesk.index import UpdateReport

log = logging.getLogger("newsdesk.watch")


class _Nudge(FileSystemEventHandler):
    def __init__(self, watcher: Watcher):
        self.watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        path = str(event.src_path)
        if "/." in path.replace("\\", "/"):  # hidden files: editors' swap files, .DS_Store
            return
        if event.event_type in ("opened", "closed_no_write"):
            return
        self.watcher.nudge()


class Watcher:
    """Runs `desk.update()` after the corpus changes, once per burst of changes.

    debounce: seconds without new events before updating (500 files copied at once are one update).
    settle: a file modified less than this many seconds ago is left for the next update, so a
        file still being copied is indexed once, complete.
    rescan: seconds between updates even without events (events can be lost).
    """

    def __init__(self, desk: Desk, *, debounce: float = 1.0, settle: float = 1.0, rescan: float = 300.0,
                 poll: bool = False, on_update: Callable[[UpdateReport], None] | None = None):
        self.desk = desk
        self.debounce, self.settle, self.rescan = debounce, settle, rescan
        self.poll = poll
        self.on_update = on_update
        self._changed = threading.Event()
        self._stop = threading.Event()
        self._last_event = 0.0
        self._thread: threading.Thread | None = None
        self._observer = None
        self.updates = 0

    def nudge(self) -> None:
        self._last_event = time.monotonic()
        self._changed.set()

    def start(self) -> Watcher:
        corpus = str(self.desk.settings.corpus_dir)
        handler = _Nudge(self)
        try:
            if self.poll:
                raise OSError("polling requested")
            self._observer = Observer()
            self._observer.schedule(handler, corpus, recursive=True)
            self._observer.start()
        except OSError as err:
            log.info("watching %s by polling (%s)", corpus, err)
            self._observer = PollingObserver(timeout=1.0)
            self._observer.schedule(handler, corpus, recursive=True)
            self._observer.start()
        self._thread = threading.Thread(target=self._loop, name="newsdesk-watch", daemon=True)
        self._thread.start()
        self.nudge()  # catch up with whatever changed while nobody was watching
        return self

    def stop(self) -> None:
        self._stop.set()
        self._changed.set()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> Watcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._changed.wait(timeout=self.rescan)
            if self._stop.is_set():
                break
            # Debounce: wait until the burst is over.
            while (quiet := time.monotonic() - self._last_event) < self.debounce and not self._stop.is_set():
                time.sleep(self.debounce - quiet)
            self._changed.clear()
            try:
                report = self.desk.update(settle=self.settle)
            except Exception:  # keep watching: the next change or rescan retries
                log.exception("index update failed")
                time.sleep(self.debounce)
                continue
            self.updates += 1
            if report.changed or report.deferred:
                log.info(
                    "index updated: %d added, %d updated, %d removed, %d unchanged; %d chunks embedded in %.2f s%s",
                    len(report.added), len(report.updated), len(report.removed), report.unchanged,
                    report.chunks_embedded, report.seconds,
                    f"; {len(report.deferred)} file(s) still being written" if report.deferred else "",
                )
            if report.deferred:  # come back once they have settled
                self._last_event = time.monotonic()
                self._changed.set()
            if self.on_update:
                self.on_update(report)
