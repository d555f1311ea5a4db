"""Follow the live index generation: every question reads one consistent, committed generation.

A reader holds a SQLite read transaction for the length of one question, so an update that
commits meanwhile is seen by the next question, not halfway through this one. FAISS segments are
immutable and cached by name; a new generation loads only the segments it added, and the masks
of chunks deleted since. The keyword index is reloaded once per new generation and one searcher
(a fixed snapshot) serves all its questions; if that snapshot already holds a batch being written
(tantivy commits before SQLite), its chunks are cut off by chunk id, and what the generation
deleted is dropped by the answer's chunk lookup. The cut-off is a filter every query must
intersect with, which turns BM25's top-k pruning off (2-3x slower at a million chunks), so it
is applied only to the snapshots that need it.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from newsdesk.errors import IndexMissing
from newsdesk.keyword_index import KeywordIndex
from newsdesk.layout import current_store
from newsdesk.retrieve import Generation
from newsdesk.store import Store
from newsdesk.vectors import Segment, read_segment

# Errors that mean "a merge or a rebuild removed files this snapshot listed": FAISS raises
# RuntimeError for a file that is gone, numpy FileNotFoundError, SQLite OperationalError.
_RACING = (FileNotFoundError, RuntimeError, OSError, sqlite3.OperationalError, ValueError)
ATTEMPTS = 5


class IndexReader:
    def __init__(self, index_dir: Path, *, hint: str = "run `newsdesk index` to build one from your corpus"):
        self.index_dir = index_dir
        self.hint = hint
        self._lock = threading.Lock()
        self._store: Store | None = None
        self._keywords: KeywordIndex | None = None
        self._segments: dict[str, Segment] = {}
        self._alive: dict[str, np.ndarray] = {}
        self._generation: int | None = None
        self._searcher: Any = None
        self._ahead = False  # the searcher holds chunks of a batch newer than the generation
        self.store  # fail now, not at the first question, when there is no index

    @property
    def store(self) -> Store:
        folder = current_store(self.index_dir)
        if folder is None:
            raise IndexMissing(f"no index in {self.index_dir}: {self.hint}")
        with self._lock:
            if self._store is None or self._store.folder != folder:
                self._store = Store(folder, readonly=True)  # a rebuild switched stores: start over
                self._keywords = None
                self._segments, self._alive, self._generation = {}, {}, None
            return self._store

    @contextmanager
    def generation(self) -> Iterator[Generation]:
        for attempt in range(ATTEMPTS):
            store = self.store
            conn = store.conn
            try:
                conn.execute("BEGIN")
                try:
                    view = self._sync(store, conn)
                except BaseException:
                    conn.execute("COMMIT")
                    raise
                break
            except _RACING:
                if attempt == ATTEMPTS - 1:
                    raise
                with self._lock:  # take the newer generation (or store) on the next attempt
                    self._generation = None
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
                dead = Store.dead_in_segments(conn)
                alive = {name: ~np.isin(segments[name].ids, np.array(ids, dtype=np.int64))
                         for name, ids in dead.items() if name in segments}
                if self._keywords is None:
                    self._keywords = KeywordIndex.open_for_reading(store.folder / "keywords")
                else:
                    self._keywords.reload()
                self._searcher = self._keywords.searcher()
                self._ahead = self._keywords.holds_ids_from(self._searcher, manifest["next_chunk_id"])
                self._segments, self._alive, self._generation = segments, alive, generation
                self._dead_keywords = len(Store.dead_in_keywords(conn))
            return Generation(conn, manifest, dict(self._segments), self._alive, self._keywords,
                              self._searcher, self._dead_keywords, store.folder, self._ahead)
