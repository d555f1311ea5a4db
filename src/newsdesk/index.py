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
from newsdesk.load import Document, LoadResult, Skipped, load_file, require_corpus
from newsdesk.scan import Scan, scan_corpus
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
    embed_seconds: float = 0.0  # of `seconds`, the time spent in the encoder
    rebuilt: bool = False
    documents: int = 0
    chunks: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)  # still being written: next update

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
    settle: float = 0.0,
    on_batch: Callable[[int], None] | None = None,
) -> UpdateReport:
    """Bring the index in `settings.index_dir` up to date with `settings.corpus_dir`.

    Files modified less than `settle` seconds ago wait for the next update (see `scan_corpus`).
    """
    started = time.perf_counter()
    index_dir = settings.index_dir
    lock = writer_lock(index_dir, lock_timeout)
    try:
        require_corpus(settings.corpus_dir)  # before a new store is created for nothing
        remove_other_stores(index_dir)  # what a crashed rebuild left behind
        live = current_store(index_dir)
        fresh = rebuild or live is None
        if fresh:
            store = Store.create(new_store(index_dir))
            with store.transaction() as conn:
                Store.set_meta(conn, **manifest_for(settings, embedder), generation=0, next_chunk_id=1,
                               created=_now(), updated=_now(), documents=0, chunks=0, vectors=0,
                               fingerprint=f"{0:032x}")
        else:
            store = Store(live)
            check_compatible(store.manifest(), settings, index_dir)
            remove_unreferenced_segments(store)
        scan = scan_corpus(settings.corpus_dir, Store.files(store.conn), settle)
        report = _apply(store, scan, embedder, settings, progress, on_batch)
        report.rebuilt = fresh
        compact(store, everything=fresh)
        store.close()
        if fresh:
            publish(index_dir, store.folder)
            remove_other_stores(index_dir)
    finally:
        lock.release()
    report.seconds = time.perf_counter() - started
    return report


def _apply(store: Store, scan: Scan, embedder: Embedder, settings: Settings,
           progress: bool, on_batch: Callable[[int], None] | None) -> UpdateReport:
    report = UpdateReport(ignored=scan.ignored, deferred=scan.deferred)
    loaded = LoadResult()
    for rel in scan.changed:
        loaded.extend(load_file(settings.corpus_dir / rel, settings.corpus_dir))
    affected = {*scan.changed, *scan.gone}
    before = Store.documents_in(store.conn, affected)  # doc_id -> content hash
    problems = list(loaded.skipped)
    wanted: dict[str, Document] = {}
    for doc in loaded.documents:
        owner = wanted.get(doc.doc_id) or Store.document_owner(store.conn, doc.doc_id, affected)
        if owner is not None:
            where = owner.source_path if isinstance(owner, Document) else owner
            problems.append(Skipped(doc.source_path, f"duplicate id {doc.doc_id!r}, already used by {where}"))
            continue
        wanted[doc.doc_id] = doc
    todo = []
    for doc_id, doc in wanted.items():
        old = before.get(doc_id)
        if old is None:
            report.added.append(doc_id)
            todo.append(doc)
        elif old != doc.content_hash():
            report.updated.append(doc_id)
            todo.append(doc)
        else:
            report.unchanged += 1
    report.removed = [doc_id for doc_id in before if doc_id not in wanted]
    report.unchanged += store.manifest()["documents"] - len(before)

    chunker = Chunker(embedder.tokenizer, settings.chunking, embedder.max_tokens - 2)
    batches = _batches([(doc, chunker.chunk(doc)) for doc in todo]) or [[]]
    removals = report.removed
    for n, batch in enumerate(batches):
        texts = [c.text for _, chunks in batch for c in chunks]
        started = time.perf_counter()
        vectors = embedder.encode(texts, progress=progress)
        report.embed_seconds += time.perf_counter() - started
        last = n == len(batches) - 1
        # The file signatures go in with the last batch: a crash before it means the next run
        # reads these files again, finds the committed documents unchanged and carries on.
        files = (scan, problems) if last else None
        if batch or removals or (files and (scan.changed or scan.gone)):
            _commit_batch(store, batch, vectors, removals, files)
        removals = []  # removed in the first transaction, together with its additions
        report.chunks_embedded += len(texts)
        if on_batch and batch:
            on_batch(report.chunks_embedded)
    manifest = store.manifest()
    report.documents, report.chunks = manifest["documents"], manifest["chunks"]
    report.skipped = Store.problems(store.conn)
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
                  removals: list[str], files: tuple[Scan, list[Skipped]] | None) -> None:
    manifest = store.manifest()
    generation = manifest["generation"] + 1
    first_id = manifest["next_chunk_id"]
    ids = np.arange(first_id, first_id + len(vectors), dtype=np.int64)
    segment = f"seg-{generation:06d}"
    if len(vectors):
        # Written and fsynced before the transaction that references it: a crash in between
        # leaves an unreferenced file, never a reference to a missing one.
        write_segment(new_segment(segment, ids, vectors), store.folder / "segments")
    fingerprint = int(manifest["fingerprint"], 16)
    documents, chunks = manifest["documents"], manifest["chunks"]
    with store.transaction() as conn:
        replaced = [*removals, *(doc.doc_id for doc, _ in batch)]
        for doc_id, old_hash in Store.documents(conn, replaced).items():
            fingerprint ^= document_print(doc_id, old_hash)
            chunks -= Store.remove_document(conn, doc_id)
            documents -= 1
        pos = 0
        for doc, doc_chunks in batch:
            Store.add_document(conn, doc, doc_chunks, ids[pos:pos + len(doc_chunks)].tolist(), segment)
            fingerprint ^= document_print(doc.doc_id, doc.content_hash())
            pos += len(doc_chunks)
            chunks += len(doc_chunks)
            documents += 1
        if len(vectors):
            conn.execute("INSERT INTO segments(name, vectors) VALUES (?, ?)", (segment, len(vectors)))
        if files is not None:
            scan, problems = files
            Store.record_files(conn, scan.changed, scan.gone, problems)
        Store.set_meta(
            conn, generation=generation, next_chunk_id=first_id + len(vectors), updated=_now(),
            documents=documents, chunks=chunks, vectors=manifest["vectors"] + len(vectors),
            fingerprint=f"{fingerprint:032x}",
        )


def document_print(doc_id: str, content_hash: str) -> int:
    """A document's share of the corpus fingerprint: XOR-ed in and out as documents come and go."""
    return int.from_bytes(hashlib.sha256(f"{doc_id}\0{content_hash}".encode()).digest()[:16], "big")


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
        vectors = conn.execute("SELECT coalesce(sum(vectors), 0) FROM segments").fetchone()[0]
        Store.set_meta(conn, generation=generation, updated=_now(), vectors=vectors)
    remove_unreferenced_segments(store)
    return True


def remove_unreferenced_segments(store: Store) -> None:
    """Segment files no generation refers to: merged away, or written by a crashed update."""
    names = {r[0] for r in store.conn.execute("SELECT name FROM segments")}
    for path in (store.folder / "segments").iterdir():
        if path.name.startswith(".") or path.stem not in names:
            path.unlink(missing_ok=True)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
