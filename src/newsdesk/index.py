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

import errno
import hashlib
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path


from newsdesk.backend import Batch, IndexBackend, IndexWriter, open_backend
from newsdesk.chunk import Chunk, Chunker
from newsdesk.config import Settings
from newsdesk.embed import Encoder, OnnxEncoder, quantize_sentences
from newsdesk.errors import IndexMismatch, IndexWriteFailed
from newsdesk.load import Document, LoadResult, Skipped, load_file, require_corpus
from newsdesk.scan import Scan, scan_corpus
from newsdesk.store import FORMAT_VERSION

log = logging.getLogger("newsdesk.index")

# Documents are committed in batches of about this many chunks: big enough that encoding runs
# at full speed, small enough that an interrupted update keeps most of its work.
BATCH_CHUNKS = 2048


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
    backend: IndexBackend | None = None,
) -> UpdateReport:
    """Bring the index at `settings.index` up to date with `settings.corpus_dir`.

    Files modified less than `settle` seconds ago wait for the next update (see `scan_corpus`).
    `on_batch` is called with the chunks embedded so far after each committed batch.
    """
    started = time.perf_counter()
    require_corpus(settings.corpus_dir)  # before a new store is created for nothing
    backend = backend or open_backend(settings.index)

    def compatible(manifest: dict) -> None:
        check_compatible(manifest, settings, backend.location, encoder.kind)

    with _no_room_is_one_line(backend.location), backend.writer(
            new_manifest=manifest_for(settings, encoder), compatible=compatible, rebuild=rebuild,
            lock_timeout=lock_timeout) as writer:
        if isinstance(encoder, OnnxEncoder):
            writer.keep_encoder(encoder.onnx_file)
        # Files that could not be read are tried again on every run: a permission fixed with chmod
        # or the other file of a duplicate id removed changes nothing the scan could see.
        problem_files = {p.path for p in writer.problems()}
        scan = scan_corpus(settings.corpus_dir, writer.files(), settle, retry=problem_files,
                           follow_symlinks=settings.follow_symlinks)
        report = _apply(writer, scan, encoder, settings, progress, on_batch)
        report.skipped = [*scan.problems, *report.skipped]
        report.rebuilt, report.resumed = writer.fresh, writer.resumed
        writer.finish()
    report.seconds = time.perf_counter() - started
    return report


_NO_ROOM = ("no space left", "disk is full", "read-only file system", "readonly database", "disk quota")


@contextmanager
def _no_room_is_one_line(location: str) -> Iterator[None]:
    """A full or read-only disk stops an update with one line; nothing committed is lost, since
    every batch is all-or-nothing (SQLite rolls back, the new segment and keyword files are
    unreferenced and removed by the next update)."""
    message = None
    try:
        yield
    except (OSError, sqlite3.OperationalError, RuntimeError, ValueError) as err:
        text = str(err).lower()
        full = isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS)
        if not (full or any(sign in text for sign in _NO_ROOM)):
            raise
        what = "is read-only" if "read-only" in text or "readonly" in text or (
            isinstance(err, OSError) and err.errno == errno.EROFS) else "is full"
        message = (f"could not write the index in {location}: the disk {what} ({' '.join(str(err).split())[:120]}). "
                   "Nothing was lost: the index still holds its last complete update. Free some space (or make it "
                   "writable) and run `newsdesk index` again")
    if message is not None:  # raised outside the except block: the failed writer's frames are let go
        raise IndexWriteFailed(message)


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


def _apply(writer: IndexWriter, scan: Scan, encoder: Encoder, settings: Settings,
           progress: bool, on_batch: Callable[[int], None] | None) -> UpdateReport:
    report = UpdateReport(ignored=scan.ignored, deferred=scan.deferred)
    chunker: Chunker | None = None  # made on first use: loading the sentence splitter takes seconds
    affected = {*scan.changed, *scan.gone}
    before = writer.documents_by_path(sorted(affected))  # path -> {doc_id: hash}
    known_files = writer.files()
    known_problems = writer.problems()
    wanted: dict[str, str] = {}  # doc_id -> the file it comes from in this run
    pending = _Pending(gone=list(scan.gone))
    for path in scan.gone:
        pending.removals += list(before.get(path, {}))
        report.removed += list(before.get(path, {}))
    unchanged_before = writer.manifest()["documents"] - sum(len(d) for d in before.values())

    def commit() -> None:
        texts = [c.text for _, chunks in pending.docs for c in chunks]
        spans = [[(s - c.start, e - c.start) for s, e in c.sentences] for _, chunks in pending.docs for c in chunks]
        t0 = time.perf_counter()
        vectors, sentence_vectors = encoder.encode_passages(texts, spans, progress=progress)
        report.embed_seconds += time.perf_counter() - t0
        from newsdesk.dedup import fingerprint  # here: datasketch takes a second to import

        prints = [fingerprint(doc.text, doc.title) for doc, _ in pending.docs]
        writer.commit(Batch(pending.docs, vectors, [quantize_sentences(v) for v in sentence_vectors],
                            pending.removals, pending.files, pending.gone, pending.problems, prints))
        report.chunks_embedded += len(texts)
        report.warnings += pending.warnings
        if on_batch and pending.docs:
            on_batch(report.chunks_embedded)

    for rel, signature in scan.changed.items():
        loaded = _load(settings.corpus_dir, rel)
        problems = list(loaded.skipped)
        old = before.get(rel, {})
        for doc in loaded.documents:
            owner = wanted.get(doc.doc_id) or writer.document_owner(doc.doc_id, sorted(affected))
            if owner is not None:
                problems.append(Skipped(doc.source_path, f"duplicate id {doc.doc_id!r}, already used by {owner}"))
                continue
            known = writer.document_hash(doc.doc_id)
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
    manifest = writer.manifest()
    report.documents, report.chunks = manifest["documents"], manifest["chunks"]
    report.unchanged += max(unchanged_before, 0)
    report.skipped = writer.problems()
    return report


def _files_changed(pending: _Pending, known: dict[str, tuple[int, int]], problems: list[Skipped]) -> bool:
    """Whether recording these files would change anything (a retried file still broken does not)."""
    if any(known.get(path) != signature for path, signature in pending.files.items()):
        return True
    before = sorted((p.path, p.line or 0, p.reason) for p in problems if p.path in pending.files)
    return before != sorted((p.path, p.line or 0, p.reason) for p in pending.problems)


def _load(root: Path, rel: str) -> LoadResult:
    return load_file(root / rel, root)


def document_print(doc_id: str, content_hash: str) -> int:
    """A document's share of the corpus fingerprint: XOR-ed in and out as documents come and go."""
    return int.from_bytes(hashlib.sha256(f"{doc_id}\0{content_hash}".encode()).digest()[:16], "big")
