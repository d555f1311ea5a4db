"""Build and update the index: corpus -> documents -> chunks -> vectors + keywords.

An update compares the corpus with what is indexed (file signatures, then a content hash per
document), embeds only what is new or changed, and removes what changed or disappeared. Files
are read, chunked and embedded as a stream, a batch of about `BATCH_CHUNKS` chunks at a time;
each batch is one commit that also records the files it completed, so a crash loses at most the
batch in flight and the next run carries on from there. That holds for a first build or a
rebuild too: it is written beside the live index, kept when interrupted, and continued by the
next run, which switches it in only when it is complete.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from newsdesk.chunk import Chunk, Chunker
from newsdesk.config import Settings
from newsdesk.embed import Encoder, OnnxEncoder, copy_encoder, quantize_sentences
from newsdesk.errors import IndexMismatch
from newsdesk.keyword_index import KeywordIndex, day_number
from newsdesk.keywords import terms
from newsdesk.layout import (begin_build, building_store, current_store, discard_build, publish, remove_other_stores,
                             writer_lock)
from newsdesk.load import Document, LoadResult, Skipped, load_file, require_corpus
from newsdesk.scan import Scan, scan_corpus
from newsdesk.store import FORMAT_VERSION, Store
from newsdesk.vectors import new_segment, read_segment, segment_files, write_segment

log = logging.getLogger("newsdesk.index")

# Documents are committed in batches of about this many chunks: big enough that encoding runs
# at full speed, small enough that an interrupted update keeps most of its work.
BATCH_CHUNKS = 2048
# Small segments are merged once there are more than this many (searching each costs a little).
MAX_SEGMENTS = 8


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
    resumed: bool = False  # continued a build an earlier run left unfinished
    documents: int = 0
    chunks: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    warnings: list[Skipped] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)  # still being written: next update

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)


def manifest_for(settings: Settings, encoder: Encoder) -> dict:
    return {
        "format": FORMAT_VERSION,
        "model": settings.model_id(),
        "encoder": encoder.kind,
        "dimension": encoder.dimension,
        "max_tokens": encoder.max_tokens,
        "chunking": settings.chunking.to_dict(),
    }


def check_compatible(manifest: dict, settings: Settings, where: Path | str, encoder: str | None = None) -> None:
    """Refuse to mix vectors from two models, encoders or chunkings (or an old format) in one index."""
    if manifest.get("format") != FORMAT_VERSION:
        raise IndexMismatch(
            f"the index in {where} was made by an older newsdesk (format {manifest.get('format')}, this one writes "
            f"{FORMAT_VERSION}); run `newsdesk index --rebuild` to rebuild it")
    wanted = {"model": settings.model_id(), "chunking": settings.chunking.to_dict()}
    if encoder is not None:
        wanted["encoder"] = encoder
    for key, value in wanted.items():
        if manifest.get(key) != value:
            raise IndexMismatch(
                f"the index in {where} was built with {key}={manifest.get(key)!r}, "
                f"but this run uses {key}={value!r}; run `newsdesk index --rebuild` to rebuild it "
                "(or pass the settings it was built with)"
            )


def update_index(
    settings: Settings,
    encoder: Encoder,
    *,
    rebuild: bool = False,
    progress: bool = False,
    lock_timeout: float = -1,
    settle: float = 0.0,
    on_batch: Callable[[int], None] | None = None,
) -> UpdateReport:
    """Bring the index in `settings.index_dir` up to date with `settings.corpus_dir`.

    Files modified less than `settle` seconds ago wait for the next update (see `scan_corpus`).
    `on_batch` is called with the chunks embedded so far after each committed batch.
    """
    started = time.perf_counter()
    index_dir = settings.index_dir
    lock = writer_lock(index_dir, lock_timeout)
    try:
        require_corpus(settings.corpus_dir)  # before a new store is created for nothing
        remove_other_stores(index_dir)  # what a finished rebuild left behind
        live = current_store(index_dir)
        store, fresh, resumed = _writable_store(settings, encoder, index_dir, rebuild=rebuild or live is None)
        remove_unreferenced_segments(store)
        keywords = KeywordIndex(store.folder / "keywords", create=not (store.folder / "keywords").exists())
        purge(store, keywords)
        # Files that could not be read are tried again on every run: a permission fixed with chmod
        # or the other file of a duplicate id removed changes nothing the scan could see.
        problem_files = {p.path for p in Store.problems(store.conn)}
        scan = scan_corpus(settings.corpus_dir, Store.files(store.conn), settle, retry=problem_files,
                           follow_symlinks=settings.follow_symlinks)
        report = _apply(store, keywords, scan, encoder, settings, progress, on_batch)
        report.skipped = [*scan.problems, *report.skipped]
        report.rebuilt, report.resumed = fresh, resumed
        compact(store, everything=fresh)
        keywords.close()
        store.close()
        if fresh:
            publish(index_dir, store.folder)
            remove_other_stores(index_dir)
    finally:
        lock.release()
    report.seconds = time.perf_counter() - started
    return report


def _writable_store(settings: Settings, encoder: Encoder, index_dir: Path, *, rebuild: bool) -> tuple[Store, bool, bool]:
    """(store to write, is it a build from scratch, is it an interrupted build continued)."""
    building = building_store(index_dir)
    if building is not None:
        store = Store(building)
        try:
            check_compatible(store.manifest(), settings, index_dir, encoder.kind)
            log.info("continuing the build that an earlier run left unfinished in %s", building)
            return store, True, True
        except Exception:  # noqa: BLE001 - built with other settings, or unreadable: start over
            store.close()
            log.info("discarding an unfinished build made with other settings (%s)", building)
            discard_build(index_dir)
    live = current_store(index_dir)
    if rebuild or live is None:
        store = Store.create(begin_build(index_dir))
        with store.transaction() as conn:
            Store.set_meta(conn, **manifest_for(settings, encoder), generation=0, next_chunk_id=1,
                           created=_now(), updated=_now(), documents=0, chunks=0, vectors=0,
                           fingerprint=f"{0:032x}")
        _keep_encoder(store, encoder)
        return store, True, False
    store = Store(live)
    check_compatible(store.manifest(), settings, index_dir, encoder.kind)
    _keep_encoder(store, encoder)
    return store, False, False


def _keep_encoder(store: Store, encoder: Encoder) -> None:
    if isinstance(encoder, OnnxEncoder):
        copy_encoder(encoder.onnx_file, store.folder / "encoder")


@dataclass
class _Pending:
    """Documents chunked and waiting to be embedded and committed, with the files they complete."""

    docs: list[tuple[Document, list[Chunk]]] = field(default_factory=list)
    chunks: int = 0
    removals: list[str] = field(default_factory=list)
    files: dict[str, tuple[int, int]] = field(default_factory=dict)
    gone: list[str] = field(default_factory=list)
    problems: list[Skipped] = field(default_factory=list)
    warnings: list[Skipped] = field(default_factory=list)

    def empty(self) -> bool:
        return not (self.docs or self.removals or self.files or self.gone)


def _apply(store: Store, keywords: KeywordIndex, scan: Scan, encoder: Encoder, settings: Settings,
           progress: bool, on_batch: Callable[[int], None] | None) -> UpdateReport:
    report = UpdateReport(ignored=scan.ignored, deferred=scan.deferred)
    chunker: Chunker | None = None  # made on first use: loading the sentence splitter takes seconds
    affected = {*scan.changed, *scan.gone}
    before = Store.documents_by_path(store.conn, sorted(affected))  # path -> {doc_id: hash}
    known_files = Store.files(store.conn)
    known_problems = Store.problems(store.conn)
    wanted: dict[str, str] = {}  # doc_id -> the file it comes from in this run
    pending = _Pending(gone=list(scan.gone))
    for path in scan.gone:
        pending.removals += list(before.get(path, {}))
        report.removed += list(before.get(path, {}))
    unchanged_before = store.manifest()["documents"] - sum(len(d) for d in before.values())

    def commit() -> None:
        texts = [c.text for _, chunks in pending.docs for c in chunks]
        spans = [[(s - c.start, e - c.start) for s, e in c.sentences] for _, chunks in pending.docs for c in chunks]
        t0 = time.perf_counter()
        vectors, sentence_vectors = encoder.encode_passages(texts, spans, progress=progress)
        report.embed_seconds += time.perf_counter() - t0
        _commit_batch(store, keywords, pending, vectors, sentence_vectors)
        report.chunks_embedded += len(texts)
        report.warnings += pending.warnings
        if on_batch and pending.docs:
            on_batch(report.chunks_embedded)

    for rel, signature in scan.changed.items():
        loaded = _load(settings.corpus_dir, rel)
        problems = list(loaded.skipped)
        old = before.get(rel, {})
        for doc in loaded.documents:
            owner = wanted.get(doc.doc_id) or Store.document_owner(store.conn, doc.doc_id, affected)
            if owner is not None:
                problems.append(Skipped(doc.source_path, f"duplicate id {doc.doc_id!r}, already used by {owner}"))
                continue
            known = Store.document_hash(store.conn, doc.doc_id)
            if known == doc.content_hash():
                wanted[doc.doc_id] = rel
                report.unchanged += 1
                continue
            try:
                chunker = chunker or Chunker(encoder.tokens, settings.chunking, encoder.max_tokens - 2)
                chunks = chunker.chunk(doc)
            except Exception as err:  # noqa: BLE001 - one article must never stop the index
                log.warning("chunking %s failed", doc.doc_id, exc_info=True)
                problems.append(Skipped(rel, f"could not be cut into passages ({type(err).__name__}: {err})"))
                continue
            wanted[doc.doc_id] = rel
            (report.added if known is None else report.updated).append(doc.doc_id)
            pending.docs.append((doc, chunks))
            pending.chunks += len(chunks)
            if pending.chunks >= BATCH_CHUNKS:
                # A batch may end inside a file (a feed export holds thousands of articles): the
                # file itself is recorded with its last batch, so a crash re-reads it, finds
                # the committed articles unchanged and carries on.
                commit()
                pending = _Pending()
        vanished = [doc_id for doc_id in old if doc_id not in wanted]
        pending.removals += vanished
        report.removed += vanished
        pending.files[rel] = signature
        pending.problems += problems
        pending.warnings += loaded.warnings
    if pending.docs or pending.removals or pending.gone or _files_changed(pending, known_files, known_problems):
        commit()
    manifest = store.manifest()
    report.documents, report.chunks = manifest["documents"], manifest["chunks"]
    report.unchanged += max(unchanged_before, 0)
    report.skipped = Store.problems(store.conn)
    return report


def _files_changed(pending: _Pending, known: dict[str, tuple[int, int]], problems: list[Skipped]) -> bool:
    """Whether recording these files would change anything (a retried file still broken does not)."""
    if any(known.get(path) != signature for path, signature in pending.files.items()):
        return True
    before = sorted((p.path, p.line or 0, p.reason) for p in problems if p.path in pending.files)
    return before != sorted((p.path, p.line or 0, p.reason) for p in pending.problems)


def _load(root: Path, rel: str) -> LoadResult:
    return load_file(root / rel, root)


def _commit_batch(store: Store, keywords: KeywordIndex, pending: _Pending, vectors: np.ndarray,
                  sentence_vectors: list[np.ndarray]) -> None:
    """One batch: the vector segment and the keyword entries first, then the SQLite transaction
    that makes them part of the index. A crash before that transaction leaves files and keyword
    entries no generation refers to; the next update removes them."""
    manifest = store.manifest()
    generation = manifest["generation"] + 1
    first_id = manifest["next_chunk_id"]
    ids = np.arange(first_id, first_id + len(vectors), dtype=np.int64)
    segment = f"seg-{generation:06d}"
    if len(vectors):
        with store.transaction() as conn:  # source names get their numbers (a harmless dictionary)
            numbers = {doc.source: Store.source_number(conn, doc.source, create=True) for doc, _ in pending.docs}
        days = np.array([day_number(doc.published) for doc, chunks in pending.docs for _ in chunks], dtype=np.int32)
        sources = np.array([numbers[doc.source] for doc, chunks in pending.docs for _ in chunks], dtype=np.int32)
        # Written and fsynced before the transaction that references it: a crash in between
        # leaves an unreferenced file, never a reference to a missing one.
        write_segment(new_segment(segment, ids, vectors, days, sources), store.folder / "segments")
        rows = []
        pos = 0
        for doc, doc_chunks in pending.docs:
            title = " ".join(terms(doc.title))
            day = day_number(doc.published)
            for c in doc_chunks:
                rows.append((int(ids[pos]), " ".join(terms(c.text)), title, day, doc.source, doc.doc_id))
                pos += 1
        keywords.add(rows)
        keywords.commit()
    fingerprint = int(manifest["fingerprint"], 16)
    documents, chunks = manifest["documents"], manifest["chunks"]
    with store.transaction() as conn:
        replaced = [*pending.removals, *(doc.doc_id for doc, _ in pending.docs)]
        for doc_id, old_hash in Store.documents(conn, replaced).items():
            fingerprint ^= document_print(doc_id, old_hash)
            chunks -= Store.remove_document(conn, doc_id)
            documents -= 1
        pos = 0
        for doc, doc_chunks in pending.docs:
            n = len(doc_chunks)
            blobs = [quantize_sentences(v) for v in sentence_vectors[pos:pos + n]]
            Store.add_document(conn, doc, doc_chunks, ids[pos:pos + n].tolist(), segment, blobs)
            fingerprint ^= document_print(doc.doc_id, doc.content_hash())
            pos += n
            chunks += n
            documents += 1
        if len(vectors):
            conn.execute("INSERT INTO segments(name, vectors) VALUES (?, ?)", (segment, len(vectors)))
        Store.record_files(conn, pending.files, pending.gone, pending.problems)
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


def document_print(doc_id: str, content_hash: str) -> int:
    """A document's share of the corpus fingerprint: XOR-ed in and out as documents come and go."""
    return int.from_bytes(hashlib.sha256(f"{doc_id}\0{content_hash}".encode()).digest()[:16], "big")


def compact(store: Store, *, everything: bool = False) -> bool:
    """Merge small segments into one and drop the vectors of deleted chunks.

    The large base segment is left alone unless `everything` (a fresh build), so the cost of
    a merge stays proportional to recent updates, not to the index. A merge as large as
    ANN_THRESHOLD becomes an approximate segment.
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
        parts.append((segment.ids[keep], segment.vectors()[keep].copy(), segment.days[keep], segment.sources[keep]))
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

