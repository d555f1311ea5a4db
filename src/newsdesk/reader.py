"""Follow the live index generation: every question reads one consistent, committed generation.

A reader holds a SQLite read transaction for the length of one question, so an update that
commits meanwhile is seen by the next question, not halfway through this one. FAISS segments
are immutable and cached by name; a new generation loads only the segments it added.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from newsdesk.errors import IndexMissing
from newsdesk.layout import current_store
from newsdesk.retrieve import Generation
from newsdesk.store import Store
from newsdesk.vectors import Segment, read_segment


class IndexReader:
    def __init__(self, index_dir: Path, *, hint: str = "run `newsdesk index` to build one from your corpus"):
        self.index_dir = index_dir
        self.hint = hint
        self._lock = threading.Lock()
        self._store: Store | None = None
        self._segments: dict[str, Segment] = {}
        self._generation: int | None = None
        self._dead = 0
        self.store  # fail now, not at the first question, when there is no index

    @property
    def store(self) -> Store:
        folder = current_store(self.index_dir)
        if folder is None:
            raise IndexMissing(f"no index in {self.index_dir}: {self.hint}")
        with self._lock:
            if self._store is None or self._store.folder != folder:
                self._store = Store(folder)  # a rebuild switched stores: start over
                self._segments, self._generation = {}, None
            return self._store

    @contextmanager
    def generation(self) -> Iterator[Generation]:
        for attempt in range(3):
            try:
                store = self.store
                conn = store.conn
                conn.execute("BEGIN")
                try:
                    view = self._sync(store, conn)
                except BaseException:
                    conn.execute("COMMIT")
                    raise
                break
            except (FileNotFoundError, RuntimeError, sqlite3.OperationalError):
                # A merge or a rebuild removed files this snapshot listed (FAISS raises
                # RuntimeError for a file that is gone): take the newer generation.
                if attempt == 2:
                    raise
                if self._store is not None:
                    self._store.close()
        try:
            yield view
        finally:
            conn.execute("COMMIT")

    def _sync(self, store: Store, conn: sqlite3.Connection) -> Generation:
        manifest = store.manifest(conn)
        generation = manifest["generation"]
        with self._lock:
            if generation != self._generation:
                names = [name for (name,) in conn.execute("SELECT name FROM segments")]
                segments = {name: self._segments.get(name) or read_segment(name, store.folder / "segments")
                            for name in names}
                self._segments, self._generation = segments, generation
                self._dead = manifest["vectors"] - manifest["chunks"]
            return Generation(conn, manifest, dict(self._segments), self._dead, store.folder)
