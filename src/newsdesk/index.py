"""Build and update the index: corpus -> documents -> chunks -> vectors + keywords.

An update compares the corpus with the documents already indexed (content hash per document),
embeds only what is new or changed, and removes what changed or disappeared. Each batch of
documents is one SQLite transaction plus one new FAISS segment, so a crash loses at most the
batch in flight and the next run picks up where it stopped.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from newsdesk.chunk import Chunk, Chunker
from newsdesk.config import Settings
from newsdesk.embed import Embedder
from newsdesk.layout import current_store, new_store, publish, remove_other_stores, writer_lock
from newsdesk.load import Document, Skipped, load_corpus
from newsdesk.store import FORMAT_VERSION, Store
from newsdesk.vectors import new_segment, read_segment, write_segment

# Documents are committed in batches of about this many chunks: big enough that encoding runs
# at full speed, small enough that an interrupted update keeps most of its work.
BATCH_CHUNKS = 2048
# Small segments are merged once there are more than this many (searching each costs a little).
MAX_SEGMENTS = 8


class IndexMismatch(Exception):
    """The index on disk was built with another model or other chunking settings."""


@dataclass
class UpdateReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    chunks_embedded: int = 0
    seconds: float = 0.0
    rebuilt: bool = False
    documents: int = 0
    chunks: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)


def manifest_for(settings: Settings, embedder: Embedder) -> dict:
    return {
        "format": FORMAT_VERSION,
        "model": settings.model_id(),
        "dimension": embedder.dimension,
        "max_tokens": embedder.max_tokens,
        "chunking": settings.chunking.to_dict(),
    }


def check_compatible(manifest: dict, settings: Settings, index_dir: Path) -> None:
    """Refuse to mix vectors from two models or two chunkings in one index."""
    wanted = {"format": FORMAT_VERSION, "model": settings.model_id(), "chunking": settings.chunking.to_dict()}
    for key, value in wanted.items():
        if manifest.get(key) != value:
            raise IndexMismatch(
                f"the index in {index_dir} was built with {key}={manifest.get(key)!r}, "
                f"but this run uses {key}={value!r}; run `newsdesk index --rebuild` to rebuild it "
                "(or pass the settings it was built with)"
            )


def update_index(
    settings: Settings,
    embedder: Embedder,
    *,
    rebuild: bool = False,
    progress: bool = False,
    lock_timeout: float = -1,
    on_batch: Callable[[int], None] | None = None,
) -> UpdateReport:
    """Bring the index in `settings.index_dir` up to date with `settings.corpus_dir`."""
    started = time.perf_counter()
    index_dir = settings.index_dir
    lock = writer_lock(index_dir, lock_timeout)
    try:
        corpus = load_corpus(settings.corpus_dir)
        remove_other_stores(index_dir)  # what a crashed rebuild left behind
        live = current_store(index_dir)
        fresh = rebuild or live is None
        if fresh:
            store = Store.create(new_store(index_dir))
            with store.transaction() as conn:
                Store.set_meta(conn, **manifest_for(settings, embedder), generation=0, next_chunk_id=1,
                               created=_now(), documents=0, chunks=0, fingerprint=_fingerprint({}))
        else:
            store = Store(live)
            check_compatible(store.manifest(), settings, index_dir)
            remove_unreferenced_segments(store)
        report = _apply(store, corpus.documents, embedder, settings, progress, on_batch)
        report.rebuilt = fresh
        compact(store, everything=fresh)
        report.skipped, report.ignored = corpus.skipped, corpus.ignored
        store.close()
        if fresh:
            publish(index_dir, store.folder)
            remove_other_stores(index_dir)
    finally:
        lock.release()
    report.seconds = time.perf_counter() - started
    return report


def _apply(store: Store, documents: list[Document], embedder: Embedder, settings: Settings,
           progress: bool, on_batch: Callable[[int], None] | None) -> UpdateReport:
    report = UpdateReport()
    indexed = dict(store.conn.execute("SELECT doc_id, content_hash FROM docs"))
    wanted: dict[str, Document] = {}
    for doc in documents:
        wanted.setdefault(doc.doc_id, doc)  # a duplicate id keeps the first file, in path order
    todo = []
    for doc_id, doc in wanted.items():
        old = indexed.get(doc_id)
        if old is None:
            report.added.append(doc_id)
            todo.append(doc)
        elif old != doc.content_hash():
            report.updated.append(doc_id)
            todo.append(doc)
        else:
            report.unchanged += 1
    report.removed = [doc_id for doc_id in indexed if doc_id not in wanted]

    chunker = Chunker(embedder.tokenizer, settings.chunking, embedder.max_tokens - 2)
    batches = _batches([(doc, chunker.chunk(doc)) for doc in todo])
    removals = set(report.updated) | set(report.removed)
    if not batches and removals:
        batches = [[]]
    for batch in batches:
        texts = [c.text for _, chunks in batch for c in chunks]
        vectors = embedder.encode(texts, progress=progress)
        _commit_batch(store, batch, vectors, removals)
        removals = set()  # removed in the first transaction, together with its additions
        report.chunks_embedded += len(texts)
        if on_batch:
            on_batch(report.chunks_embedded)
    manifest = store.manifest()
    report.documents, report.chunks = manifest["documents"], manifest["chunks"]
    return report


def _batches(items: list[tuple[Document, list[Chunk]]]) -> list[list[tuple[Document, list[Chunk]]]]:
    batches: list[list[tuple[Document, list[Chunk]]]] = []
    size = BATCH_CHUNKS
    for item in items:
        if size + len(item[1]) > BATCH_CHUNKS and size > 0:
            batches.append([])
            size = 0
        batches[-1].append(item)
        size += len(item[1])
    return batches


def _commit_batch(store: Store, batch: list[tuple[Document, list[Chunk]]], vectors: np.ndarray,
                  removals: set[str]) -> None:
    manifest = store.manifest()
    generation = manifest["generation"] + 1
    first_id = manifest["next_chunk_id"]
    ids = np.arange(first_id, first_id + len(vectors), dtype=np.int64)
    segment = f"seg-{generation:06d}"
    if len(vectors):
        # Written and fsynced before the transaction that references it: a crash in between
        # leaves an unreferenced file, never a reference to a missing one.
        write_segment(new_segment(segment, ids, vectors), store.folder / "segments")
    with store.transaction() as conn:
        for doc_id in removals:
            Store.remove_document(conn, doc_id)
        pos = 0
        for doc, chunks in batch:
            Store.remove_document(conn, doc.doc_id)  # an update replaces the previous version
            Store.add_document(conn, doc, chunks, ids[pos:pos + len(chunks)].tolist(), segment)
            pos += len(chunks)
        if len(vectors):
            conn.execute("INSERT INTO segments(name, vectors) VALUES (?, ?)", (segment, len(vectors)))
        hashes = dict(conn.execute("SELECT doc_id, content_hash FROM docs"))
        Store.set_meta(
            conn, generation=generation, next_chunk_id=first_id + len(vectors), updated=_now(),
            documents=len(hashes), chunks=conn.execute("SELECT count(*) FROM chunks").fetchone()[0],
            fingerprint=_fingerprint(hashes),
        )


def compact(store: Store, *, everything: bool = False) -> bool:
    """Merge small segments into one and drop the vectors of deleted chunks.

    The large base segment is left alone unless `everything` (a fresh build), so the cost of
    a merge stays proportional to recent updates, not to the index.
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
    live = store.conn.execute(
        f"SELECT id FROM chunks WHERE segment IN ({','.join('?' * len(chosen))})", chosen).fetchall()
    live_ids = np.array([r[0] for r in live], dtype=np.int64)
    parts_ids, parts_vectors = [], []
    for name in chosen:
        segment = read_segment(name, folder)
        ids = segment.ids
        keep = np.isin(ids, live_ids)
        parts_ids.append(ids[keep])
        parts_vectors.append(segment.vectors()[keep])
    manifest = store.manifest()
    generation = manifest["generation"] + 1
    merged = new_segment(f"seg-{generation:06d}", np.concatenate(parts_ids), np.concatenate(parts_vectors))
    write_segment(merged, folder)
    with store.transaction() as conn:
        marks = ",".join("?" * len(chosen))
        conn.execute(f"UPDATE chunks SET segment = ? WHERE segment IN ({marks})", [merged.name, *chosen])
        conn.execute(f"DELETE FROM segments WHERE name IN ({marks})", chosen)
        conn.execute("INSERT INTO segments(name, vectors) VALUES (?, ?)", (merged.name, merged.index.ntotal))
        Store.set_meta(conn, generation=generation, updated=_now())
    remove_unreferenced_segments(store)
    return True


def remove_unreferenced_segments(store: Store) -> None:
    """Segment files no generation refers to: merged away, or written by a crashed update."""
    names = {r[0] for r in store.conn.execute("SELECT name FROM segments")}
    for path in (store.folder / "segments").iterdir():
        if path.name.startswith(".") or path.stem not in names:
            path.unlink(missing_ok=True)


def _fingerprint(hashes: dict[str, str]) -> str:
    digest = hashlib.sha256()
    for doc_id in sorted(hashes):
        digest.update(f"{doc_id}\0{hashes[doc_id]}\n".encode())
    return digest.hexdigest()[:16]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
