"""One index interface, two implementations: the embedded index (a folder: SQLite + FAISS +
tantivy, `newsdesk.embedded`) and Milvus (a server, a cluster or Milvus Lite, `newsdesk.milvus`).

Everything above it - retrieval, answers, chat, the CLI and the bot - reads an `IndexView` (one
committed generation, for the length of one question) and writes through an `IndexWriter` (one
update, holding the writer lock); `open_backend` picks the implementation from the location:

    index/ or any path                         the embedded index
    milvus-lite:///path/to/file.db             Milvus Lite, embedded in this process
    milvus://host:19530/collection             a Milvus server or cluster (https:// with milvuss://)
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from newsdesk.chunk import Chunk
from newsdesk.load import Document, Skipped
from newsdesk.results import Report
from newsdesk.store import ChunkRow, DocText, Filters

Signature = tuple[int, int]  # a corpus file's (size, mtime_ns)


class IndexView(Protocol):
    """One committed generation of an index: what one question reads, all of it consistent."""

    manifest: dict[str, Any]

    def dense(self, vector: np.ndarray, depth: int, filters: Filters) -> list[tuple[int, float]]:
        """(chunk id, cosine) of the `depth` nearest chunks, best first."""

    def keyword(self, query: str, depth: int, filters: Filters) -> list[tuple[int, float]]:
        """(chunk id, BM25 score) of the `depth` best keyword matches of `query`, best first."""

    def chunks(self, ids: Sequence[int]) -> dict[int, ChunkRow]: ...

    def vector(self, row: ChunkRow) -> np.ndarray:
        """The stored vector of one chunk (for the cosine of a chunk found by keywords only)."""

    def documents(self, doc_ids: Sequence[str]) -> dict[str, DocText]: ...

    def document_frequencies(self, stems: Sequence[str]) -> dict[str, int]: ...

    def sentence_vectors(self, ids: Sequence[int]) -> dict[int, bytes]: ...

    def count_documents(self, filters: Filters) -> tuple[int, int, int]:
        """(articles matching the filters, articles in all, articles without a date)."""

    def source_counts(self) -> dict[str, int]: ...

    def segment_count(self) -> int: ...

    def fingerprints(self) -> list[tuple[str, bytes, str | None]]:
        """(doc_id, near-duplicate fingerprint, published) of every article (newsdesk.dedup)."""

    def headers(self, doc_ids: Sequence[str]) -> dict[str, Report]:
        """Title, source, date and URL of each article, without its text."""

    def copy_groups(self, doc_ids: Sequence[str]) -> dict[str, str]:
        """doc_id -> its copy group's id, for those of these articles that have copies."""

    def group_members(self, doc_ids: Sequence[str]) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
        """doc_id -> (its story group, its copy group), itself included, for those in a group."""


@dataclass
class Batch:
    """One commit of an update: articles to add (replacing any of the same id), articles to remove,
    and the corpus files whose last articles this batch completes (with what could not be read)."""

    docs: list[tuple[Document, list[Chunk]]] = field(default_factory=list)
    vectors: np.ndarray | None = None  # one per chunk, in order
    sentence_vectors: list[bytes] = field(default_factory=list)  # int8 blobs, one per chunk
    removals: list[str] = field(default_factory=list)
    files: dict[str, Signature] = field(default_factory=dict)
    gone: list[str] = field(default_factory=list)
    problems: list[Skipped] = field(default_factory=list)
    prints: list[bytes] = field(default_factory=list)  # near-duplicate fingerprints, one per document


class IndexWriter(Protocol):
    """One update, under the index's writer lock. `fresh`: built from scratch (published by
    `finish`); `resumed`: continuing a build an earlier run left unfinished."""

    fresh: bool
    resumed: bool

    def manifest(self) -> dict[str, Any]: ...

    def files(self) -> dict[str, Signature]: ...

    def problems(self) -> list[Skipped]: ...

    def documents_by_path(self, paths: Sequence[str]) -> dict[str, dict[str, str]]:
        """source path -> {doc_id: content hash} for the documents read from `paths`."""

    def document_hash(self, doc_id: str) -> str | None: ...

    def document_owner(self, doc_id: str, rereading: Sequence[str]) -> str | None:
        """The file that already holds `doc_id`, unless it is one of the files being re-read."""

    def commit(self, batch: Batch) -> None:
        """All of `batch` or none of it; readers see it whole from their next question."""

    def keep_encoder(self, onnx_file: Path) -> None:
        """Keep a copy of the exact encoder the vectors were made with, when the index can."""

    def finish(self) -> None:
        """Merge, then publish a fresh build; readers move to it at their next question."""


class IndexBackend(Protocol):
    location: str

    def exists(self) -> bool: ...

    def manifest(self) -> dict[str, Any]: ...

    def generation(self) -> AbstractContextManager[IndexView]: ...

    def writer(self, *, new_manifest: dict[str, Any], compatible: Any, rebuild: bool,
               lock_timeout: float) -> AbstractContextManager[IndexWriter]:
        """The update's writer. `new_manifest`: what a fresh build records; `compatible(manifest)`
        raises IndexMismatch for an index (or unfinished build) made with other settings."""

    def check(self) -> list[str]: ...

    def close(self) -> None: ...


MILVUS_SCHEMES = ("milvus://", "milvuss://", "milvus-lite://")


def is_remote(location: str | Path) -> bool:
    return str(location).startswith(MILVUS_SCHEMES)


def open_backend(location: str | Path, *, token: str = "", hint: str = "") -> IndexBackend:
    """The index at `location`: a Milvus URI, or else a folder for the embedded index."""
    if is_remote(location):
        from newsdesk.milvus import MilvusBackend

        return MilvusBackend(str(location), token=token)
    from newsdesk.embedded import EmbeddedBackend

    return EmbeddedBackend(Path(location), hint=hint) if hint else EmbeddedBackend(Path(location))

