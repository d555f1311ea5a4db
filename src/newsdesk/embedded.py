"""The embedded index: a folder holding SQLite (`newsdesk.store`), FAISS segments
(`newsdesk.vectors`) and a tantivy keyword index (`newsdesk.keyword_index`), laid out and
switched as `newsdesk.layout` describes. The default, and enough for one machine up to millions
of chunks (docs/scale.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from newsdesk.backend import Batch, Signature
from newsdesk.embed import copy_encoder
from newsdesk.groups import GroupKeeper, StoredGroups
from newsdesk.keyword_index import KeywordIndex, day_number
from newsdesk.keywords import terms
from newsdesk.layout import (begin_build, building_store, current_store, discard_build, publish, remove_other_stores,
                             writer_lock)
from newsdesk.load import Skipped
from newsdesk.reader import IndexReader
from newsdesk.results import Report
from newsdesk.retrieve import Generation, dense_ranking, keyword_ranking
from newsdesk.store import ChunkRow, DocText, Filters, Store
from newsdesk.vectors import new_segment, read_segment, segment_files, write_segment

log = logging.getLogger("newsdesk.index")

# Small segments are merged once there are more than this many (searching each costs a little).
MAX_SEGMENTS = 8


@dataclass
class EmbeddedView:
    """One committed generation of the embedded index."""

    gen: Generation

    @property
    def manifest(self) -> dict[str, Any]:
        return self.gen.manifest

    @property
    def conn(self):  # the SQLite snapshot, for embedded-only tools (check, benchmarks, tests)
        return self.gen.conn

    def dense(self, vector: np.ndarray, depth: int, filters: Filters) -> list[tuple[int, float]]:
        return dense_ranking(self.gen, vector, depth, filters)

    def keyword(self, query: str, depth: int, filters: Filters) -> list[tuple[int, float]]:
        return keyword_ranking(self.gen, query, depth, filters)

    def chunks(self, ids: Sequence[int]) -> dict[int, ChunkRow]:
        return Store.chunk_rows(self.gen.conn, list(ids))

    def vector(self, row: ChunkRow) -> np.ndarray:
        return self.gen.segments[row.segment].vector_of(row.id)

    def documents(self, doc_ids: Sequence[str]) -> dict[str, DocText]:
        return Store.document_texts(self.gen.conn, list(doc_ids)) if doc_ids else {}

    def document_frequencies(self, stems: Sequence[str]) -> dict[str, int]:
        return self.gen.document_frequencies(list(stems))

    def sentence_vectors(self, ids: Sequence[int]) -> dict[int, bytes]:
        return Store.sentence_vectors(self.gen.conn, list(ids))

    def count_documents(self, filters: Filters) -> tuple[int, int, int]:
        where, params = filters.sql()
        matching = self.gen.conn.execute(f"SELECT count(*) FROM docs d WHERE {where}", params).fetchone()[0]
        total, undated = self.gen.conn.execute("SELECT count(*), coalesce(sum(published IS NULL), 0) FROM docs").fetchone()
        return int(matching), int(total), int(undated)

    def source_counts(self) -> dict[str, int]:
        return dict(self.gen.conn.execute(
            "SELECT coalesce(source, ''), count(*) FROM docs GROUP BY 1 ORDER BY 2 DESC, 1"))

    def segment_count(self) -> int:
        return len(self.gen.segments)

    def fingerprints(self) -> list[tuple[str, bytes, str | None]]:
        return Store.fingerprints(self.gen.conn)

    def copy_groups(self, doc_ids: Sequence[str]) -> dict[str, str]:
        return Store.copy_groups(self.gen.conn, list(doc_ids)) if doc_ids else {}

    def group_members(self, doc_ids: Sequence[str]) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
        return Store.group_members(self.gen.conn, list(doc_ids)) if doc_ids else {}

    def headers(self, doc_ids: Sequence[str]) -> dict[str, Report]:
        return {d: Report(d, *h) for d, h in Store.headers(self.gen.conn, list(doc_ids)).items()} if doc_ids else {}

    @property
    def folder(self) -> Path:
        return self.gen.folder


class EmbeddedBackend:
    def __init__(self, index_dir: Path, *, hint: str = "run `newsdesk index` to build one from your corpus"):
        self.index_dir = index_dir
        self.location = str(index_dir)
        self.hint = hint
        self._reader: IndexReader | None = None

    @property
    def reader(self) -> IndexReader:
        if self._reader is None:
            self._reader = IndexReader(self.index_dir, hint=self.hint)
        return self._reader

    def exists(self) -> bool:
        return current_store(self.index_dir) is not None

    def encoder_copy(self, kind: str) -> Path | None:
        """The ONNX file the live index was built with (kept inside it, see EmbeddedWriter.keep_encoder)."""
        store = current_store(self.index_dir)
        name = "model-int8.onnx" if kind == "onnx-int8" else "model.onnx"
        return store / "encoder" / name if store is not None else None

    def manifest(self) -> dict[str, Any]:
        return self.reader.store.manifest()

    @contextmanager
    def generation(self) -> Iterator[EmbeddedView]:
        with self.reader.generation() as gen:
            yield EmbeddedView(gen)

    @contextmanager
    def writer(self, *, new_manifest: dict[str, Any], compatible: Callable[[dict], None], rebuild: bool,
               lock_timeout: float) -> Iterator[EmbeddedWriter]:
        lock = writer_lock(self.index_dir, lock_timeout)
        try:
            remove_other_stores(self.index_dir)  # what a finished rebuild left behind
            writer = EmbeddedWriter.open(self.index_dir, new_manifest, compatible,
                                         rebuild=rebuild or current_store(self.index_dir) is None)
            try:
                yield writer
            finally:
                writer.close()
        finally:
            lock.release()

    def check(self) -> list[str]:
        from newsdesk.check import check_index

        return check_index(self.reader)

    def close(self) -> None:
        if self._reader is not None:
            self._reader.store.close()


class EmbeddedWriter:
    """An update of the embedded index: the live store, or a store being built beside it."""

    def __init__(self, index_dir: Path, store: Store, *, fresh: bool, resumed: bool):
        self.index_dir = index_dir
        self.store = store
        self.fresh = fresh
        self.resumed = resumed
        remove_unreferenced_segments(store)
        self.keywords = KeywordIndex(store.folder / "keywords", create=not (store.folder / "keywords").exists())
        try:
            purge(store, self.keywords)
            self.groups = StoredGroups(lambda: store.conn)
            with store.transaction() as conn:
                if added := Store.add_missing_prints(conn):
                    log.info("fingerprinted %d articles indexed before fingerprints were kept", added)
                manifest = store.manifest(conn)
                if not manifest.get("banded"):
                    if banded := Store.add_missing_bands(conn):
                        log.info("stored the band keys of %d articles indexed before they were kept", banded)
                    Store.set_meta(conn, banded=True)
                if not manifest.get("grouped"):  # groups never written: write them all
                    conn.execute("DELETE FROM groups")
                    Store.set_groups(conn, GroupKeeper(lambda: Store.fingerprints(conn)).all_rows(), ())
                    Store.set_meta(conn, grouped=True, generation=manifest["generation"] + 1)
        except BaseException:
            self.close()  # no writer object reaches the caller: let go of tantivy's lock here
            raise

    @classmethod
    def open(cls, index_dir: Path, new_manifest: dict[str, Any], compatible: Callable[[dict], None], *,
             rebuild: bool) -> EmbeddedWriter:
        building = building_store(index_dir)
        if building is not None:
            store = Store(building)
            try:
                compatible(store.manifest())
                log.info("continuing the build that an earlier run left unfinished in %s", building)
                return cls(index_dir, store, fresh=True, resumed=True)
            except Exception:  # noqa: BLE001 - built with other settings, or unreadable: start over
                store.close()
                log.info("discarding an unfinished build made with other settings (%s)", building)
                discard_build(index_dir)
        live = current_store(index_dir)
        if rebuild or live is None:
            store = Store.create(begin_build(index_dir))
            with store.transaction() as conn:
                Store.set_meta(conn, **new_manifest, generation=0, next_chunk_id=1, created=_now(), updated=_now(),
                               grouped=True, banded=True, documents=0, chunks=0, vectors=0, fingerprint=f"{0:032x}")
            return cls(index_dir, store, fresh=True, resumed=False)
        store = Store(live)
        compatible(store.manifest())
        return cls(index_dir, store, fresh=False, resumed=False)

    # -- what is indexed -----------------------------------------------------------------------
    def manifest(self) -> dict[str, Any]:
        return self.store.manifest()

    def files(self) -> dict[str, Signature]:
        return Store.files(self.store.conn)

    def problems(self) -> list[Skipped]:
        return Store.problems(self.store.conn)

    def documents_by_path(self, paths: Sequence[str]) -> dict[str, dict[str, str]]:
        return Store.documents_by_path(self.store.conn, list(paths))

    def document_hash(self, doc_id: str) -> str | None:
        return Store.document_hash(self.store.conn, doc_id)

    def document_owner(self, doc_id: str, rereading: Sequence[str]) -> str | None:
        return Store.document_owner(self.store.conn, doc_id, list(rereading))

    def keep_encoder(self, onnx_file: Path) -> None:
        copy_encoder(onnx_file, self.store.folder / "encoder")

    # -- writing -------------------------------------------------------------------------------
    def commit(self, batch: Batch) -> None:
        commit_batch(self.store, self.keywords, batch, self.groups)

    def finish(self) -> None:
        compact(self.store, everything=self.fresh)
        self.keywords.close()
        self.store.close()
        if self.fresh:
            publish(self.index_dir, self.store.folder)
            remove_other_stores(self.index_dir)

    def close(self) -> None:
        self.keywords.abandon()  # finished: nothing left; failed: what was not committed goes
        self.store.close()


def commit_batch(store: Store, keywords: KeywordIndex, batch: Batch,
                 groups: GroupKeeper | StoredGroups | None = None) -> None:
    """One batch: the vector segment and the keyword entries first, then the SQLite transaction
    that makes them part of the index. A crash before that transaction leaves files and keyword
    entries no generation refers to; the next update removes them."""
    from newsdesk.index import document_print

    manifest = store.manifest()
    generation = manifest["generation"] + 1
    first_id = manifest["next_chunk_id"]
    vectors = batch.vectors if batch.vectors is not None else np.zeros((0, manifest["dimension"]), np.float32)
    ids = np.arange(first_id, first_id + len(vectors), dtype=np.int64)
    segment = f"seg-{generation:06d}"
    if len(vectors):
        with store.transaction() as conn:  # source names get their numbers (a harmless dictionary)
            numbers = {doc.source: Store.source_number(conn, doc.source, create=True) for doc, _ in batch.docs}
        days = np.array([day_number(doc.published) for doc, chunks in batch.docs for _ in chunks], dtype=np.int32)
        sources = np.array([numbers[doc.source] for doc, chunks in batch.docs for _ in chunks], dtype=np.int32)
        # Written and fsynced before the transaction that references it: a crash in between
        # leaves an unreferenced file, never a reference to a missing one.
        write_segment(new_segment(segment, ids, vectors, days, sources), store.folder / "segments")
        rows = []
        pos = 0
        for doc, doc_chunks in batch.docs:
            title = " ".join(terms(doc.title))
            day = day_number(doc.published)
            for c in doc_chunks:
                rows.append((int(ids[pos]), " ".join(terms(c.text)), title, day, doc.source, doc.doc_id))
                pos += 1
        keywords.add(rows)
        keywords.commit()
    fingerprint = int(manifest["fingerprint"], 16)
    documents, chunks = manifest["documents"], manifest["chunks"]
    regroup = groups is not None and bool(batch.removals or batch.docs)
    if regroup:
        groups.prepare()
    with store.transaction() as conn:
        replaced = [*batch.removals, *(doc.doc_id for doc, _ in batch.docs)]
        for doc_id, old_hash in Store.documents(conn, replaced).items():
            fingerprint ^= document_print(doc_id, old_hash)
            chunks -= Store.remove_document(conn, doc_id)
            documents -= 1
        pos = 0
        for k, (doc, doc_chunks) in enumerate(batch.docs):
            n = len(doc_chunks)
            Store.add_document(conn, doc, doc_chunks, ids[pos:pos + n].tolist(), segment,
                               batch.sentence_vectors[pos:pos + n], batch.prints[k] if batch.prints else None)
            fingerprint ^= document_print(doc.doc_id, doc.content_hash())
            pos += n
            chunks += n
            documents += 1
        if len(vectors):
            conn.execute("INSERT INTO segments(name, vectors) VALUES (?, ?)", (segment, len(vectors)))
        if regroup:
            added = [(doc.doc_id, data, doc.published) for (doc, _), data in zip(batch.docs, batch.prints)]
            Store.set_groups(conn, *groups.change(batch.removals, added))
        Store.record_files(conn, batch.files, batch.gone, batch.problems)
        Store.set_meta(
            conn, generation=generation, next_chunk_id=first_id + len(vectors), updated=_now(),
            documents=documents, chunks=chunks, vectors=manifest["vectors"] + len(vectors),
            fingerprint=f"{fingerprint:032x}",
        )


def purge(store: Store, keywords: KeywordIndex) -> None:
    """Remove from the keyword index what no generation may see any more: entries of chunks at
    or above next_chunk_id (written by a batch that crashed before its commit) and of chunks
    deleted by earlier updates. Runs at the start of an update, under the writer lock."""
    manifest = store.manifest()
    dead = Store.dead_in_keywords(store.conn)
    keywords.delete_from(manifest["next_chunk_id"])
    keywords.delete(dead)
    keywords.commit()
    if dead:
        with store.transaction() as conn:
            conn.executemany("UPDATE dead SET keywords = 0 WHERE id = ?", [(i,) for i in dead])
            conn.execute("DELETE FROM dead WHERE segment = '' AND keywords = 0")


def compact(store: Store, *, everything: bool = False) -> bool:
    """Merge small segments into one and drop the vectors of deleted chunks.

    The large base segment is left alone unless `everything` (a fresh build), so the cost of
    a merge stays proportional to recent updates, not to the index. A merge as large as
    newsdesk.vectors.ANN_THRESHOLD becomes an approximate segment.
    """
    folder = store.folder / "segments"
    sizes = dict(store.conn.execute("SELECT name, vectors FROM segments"))
    if everything:
        chosen = sorted(sizes)
    else:
        if len(sizes) <= MAX_SEGMENTS:
            return False
        largest = max(sizes.values())
        chosen = sorted(name for name, n in sizes.items() if n < largest / 4) or sorted(sizes)
    if len(chosen) < 2:
        return False
    marks = ",".join("?" * len(chosen))
    live_ids = np.array([r[0] for r in store.conn.execute(
        f"SELECT id FROM chunks WHERE segment IN ({marks})", chosen)], dtype=np.int64)
    parts: list[tuple[np.ndarray, ...]] = []
    for name in chosen:
        segment = read_segment(name, folder)
        keep = np.isin(segment.ids, live_ids)
        parts.append((segment.ids[keep], segment.vectors()[keep], segment.days[keep], segment.sources[keep]))
        del segment
    manifest = store.manifest()
    generation = manifest["generation"] + 1
    merged = new_segment(f"seg-{generation:06d}", *(np.concatenate([p[i] for p in parts]) for i in range(4)))
    del parts
    write_segment(merged, folder)
    with store.transaction() as conn:
        conn.execute(f"UPDATE chunks SET segment = ? WHERE segment IN ({marks})", [merged.name, *chosen])
        conn.execute(f"DELETE FROM segments WHERE name IN ({marks})", chosen)
        conn.execute(f"UPDATE dead SET segment = '' WHERE segment IN ({marks})", chosen)
        conn.execute("DELETE FROM dead WHERE segment = '' AND keywords = 0")
        conn.execute("INSERT INTO segments(name, vectors) VALUES (?, ?)", (merged.name, merged.size))
        vectors = conn.execute("SELECT coalesce(sum(vectors), 0) FROM segments").fetchone()[0]
        Store.set_meta(conn, generation=generation, updated=_now(), vectors=vectors)
    remove_unreferenced_segments(store)
    return True


def remove_unreferenced_segments(store: Store) -> None:
    """Segment files no generation refers to: merged away, or written by a crashed update."""
    names = {r[0] for r in store.conn.execute("SELECT name FROM segments")}
    wanted = {f for name in names for f in segment_files(name)}
    for path in (store.folder / "segments").iterdir():
        if path.name not in wanted:
            path.unlink(missing_ok=True)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
