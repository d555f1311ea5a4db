"""The transactional half of the index: documents, chunks, segments, the manifest, what is dead.

One SQLite database (WAL mode). Every batch of an update is one transaction, so the manifest,
the chunk rows and the list of segments always agree, a crash rolls back to the last commit,
and a reader's snapshot stays fixed while a writer works. This database decides what a
question may see: the vector segments and the keyword index (tantivy, `newsdesk.keyword_index`)
may hold more (a batch written just before a crash, chunks deleted but not yet purged), and
readers keep only the live chunks of their generation.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from newsdesk.chunk import Chunk
from newsdesk.load import Document, Skipped, source_offset

# 2: documents carry authors and the map from their text to the source file's offsets.
# 3: the keyword index is tantivy (keywords/), segments carry day and source arrays.
FORMAT_VERSION = 3
DB_NAME = "newsdesk.sqlite"

# The near-duplicate tables, apart: an index made before them gets them at its next update.
_GROUP_TABLES = """
-- Each document's near-duplicate fingerprint (newsdesk.dedup): which articles are copies or
-- versions of one story. A table of its own, so a format-3 index made before it gets it (and
-- its documents' fingerprints) at its next update, without a rebuild.
CREATE TABLE IF NOT EXISTS prints (doc_id TEXT PRIMARY KEY, data BLOB NOT NULL);
-- The groups the fingerprints make (newsdesk.dedup), kept by the writer so that readers need
-- neither the finder nor its memory: one row per article that has a copy or another version.
CREATE TABLE IF NOT EXISTS groups (doc_id TEXT PRIMARY KEY, copy_group TEXT NOT NULL, story_group TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS groups_copy ON groups(copy_group);
CREATE INDEX IF NOT EXISTS groups_story ON groups(story_group);
-- Each fingerprint's LSH band keys (newsdesk.dedup.band_keys): the writer finds the articles an
-- added one may duplicate by lookup, so an update's regrouping does not grow with the index.
CREATE TABLE IF NOT EXISTS bands (band INTEGER NOT NULL, value INTEGER NOT NULL, doc_id TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS bands_key ON bands(band, value);
CREATE INDEX IF NOT EXISTS bands_doc ON bands(doc_id);
"""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS problems (path TEXT NOT NULL, line INTEGER, reason TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS problems_path ON problems(path);
CREATE TABLE IF NOT EXISTS docs (
    doc_id TEXT PRIMARY KEY, source_path TEXT NOT NULL, content_hash TEXT NOT NULL,
    title TEXT NOT NULL, url TEXT, published TEXT, source TEXT, authors TEXT NOT NULL, text TEXT NOT NULL,
    offsets_in TEXT NOT NULL, line_map TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS docs_path ON docs(source_path);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY, doc_id TEXT NOT NULL, seq INTEGER NOT NULL,
    start INTEGER NOT NULL, "end" INTEGER NOT NULL, text TEXT NOT NULL,
    sentences TEXT NOT NULL, segment TEXT NOT NULL,
    sentence_vectors BLOB NOT NULL  -- int8 (x127), one row of `dimension` per sentence
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id);
CREATE INDEX IF NOT EXISTS chunks_segment ON chunks(segment);
CREATE TABLE IF NOT EXISTS segments (name TEXT PRIMARY KEY, vectors INTEGER NOT NULL);
-- Chunks deleted from the tables but still in a vector segment (until a merge) or in the keyword
-- index (until the next update purges them): readers mask them out.
CREATE TABLE IF NOT EXISTS dead (
    id INTEGER PRIMARY KEY, segment TEXT NOT NULL, keywords INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_segment ON dead(segment);
-- Source names (lower-cased) by number: the vector segments store the number per chunk.
CREATE TABLE IF NOT EXISTS sources (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
""" + _GROUP_TABLES


@dataclass(frozen=True)
class Filters:
    """News filters: ISO dates (inclusive), a source name (case-insensitive), and documents."""

    since: str | None = None
    until: str | None = None
    source: str | None = None
    doc_ids: tuple[str, ...] = ()  # only these documents (a chat follow-up's preferred articles)

    def __bool__(self) -> bool:
        return any((self.since, self.until, self.source, self.doc_ids))

    def sql(self) -> tuple[str, list[Any]]:
        clauses, params = [], []
        if self.since:
            clauses.append("d.published >= ?")
            params.append(self.since)
        if self.until:
            clauses.append("substr(d.published, 1, 10) <= ?")
            params.append(self.until)
        if self.source:
            clauses.append("lower(d.source) = lower(?)")
            params.append(self.source)
        if self.doc_ids:
            clauses.append("d.doc_id IN (SELECT value FROM json_each(?))")
            params.append(json.dumps(list(self.doc_ids)))
        return " AND ".join(clauses) or "1", params


@dataclass(frozen=True)
class DocText:
    """What the answerer needs of a document besides its passages: the text and how to cite it."""

    text: str
    source_path: str
    offsets_in: str
    line_map: tuple[tuple[int, int], ...]
    authors: tuple[str, ...]

    def source_offset(self, offset: int) -> int:
        return source_offset(self.line_map, offset)


@dataclass(frozen=True)
class ChunkRow:
    id: int
    doc_id: str
    seq: int
    start: int
    end: int
    text: str
    sentences: tuple[tuple[int, int], ...]
    title: str
    url: str | None
    published: str | None
    source: str | None
    segment: str


class Store:
    """One connection per thread onto the database in `folder`.

    A reader (`readonly=True`) never writes: on storage it cannot write to at all (a published
    index on a read-only share), SQLite cannot keep its WAL index files, and the database is then
    opened as immutable - nothing changes it there.
    """

    def __init__(self, folder: Path, *, readonly: bool = False):
        self.folder = folder
        self.path = folder / DB_NAME
        self.readonly = readonly
        self._local = threading.local()
        self._immutable = False

    @classmethod
    def create(cls, folder: Path) -> Store:
        folder.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(folder / DB_NAME)
        conn.execute("PRAGMA journal_mode=WAL")  # kept in the file: readers never set it
        conn.close()
        store = cls(folder)
        store.conn.executescript(_SCHEMA)
        return store

    @property
    def conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
        return conn

    def _connect(self) -> sqlite3.Connection:
        # mode=rw/ro: a store deleted under a reader is an error, never a new empty database.
        uri = self.path.resolve().as_uri()
        if self.readonly and (self._immutable or not os.access(self.folder, os.W_OK)):
            self._immutable = True
            return sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True, isolation_level=None,
                                   check_same_thread=False)
        conn = sqlite3.connect(f"{uri}?mode={'ro' if self.readonly else 'rw'}", uri=True, isolation_level=None,
                               timeout=60, check_same_thread=False)
        if not self.readonly:
            conn.execute("PRAGMA synchronous=FULL")
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # -- manifest ---------------------------------------------------------------------------
    def manifest(self, conn: sqlite3.Connection | None = None) -> dict[str, Any]:
        rows = (conn or self.conn).execute("SELECT key, value FROM meta").fetchall()
        return {key: json.loads(value) for key, value in rows}

    @staticmethod
    def set_meta(conn: sqlite3.Connection, **values: Any) -> None:
        conn.executemany(
            "INSERT INTO meta(key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [(k, json.dumps(v)) for k, v in values.items()],
        )

    # -- corpus files -------------------------------------------------------------------------
    @staticmethod
    def files(conn: sqlite3.Connection) -> dict[str, tuple[int, int]]:
        return {path: (size, mtime) for path, size, mtime in conn.execute("SELECT path, size, mtime_ns FROM files")}

    @staticmethod
    def record_files(conn: sqlite3.Connection, changed: dict[str, tuple[int, int]], gone: list[str],
                     problems: list[Skipped]) -> None:
        """Remember what was read (and what could not be) so unchanged files are not read again."""
        conn.executemany(
            "INSERT INTO files(path, size, mtime_ns) VALUES (?, ?, ?) ON CONFLICT(path) "
            "DO UPDATE SET size = excluded.size, mtime_ns = excluded.mtime_ns",
            [(path, size, mtime) for path, (size, mtime) in changed.items()])
        conn.executemany("DELETE FROM files WHERE path = ?", [(p,) for p in gone])
        conn.executemany("DELETE FROM problems WHERE path = ?", [(p,) for p in [*changed, *gone]])
        conn.executemany("INSERT INTO problems(path, line, reason) VALUES (?, ?, ?)",
                         [(p.path, p.line, p.reason) for p in problems])

    @staticmethod
    def problems(conn: sqlite3.Connection) -> list[Skipped]:
        return [Skipped(path, reason, line) for path, line, reason in
                conn.execute("SELECT path, line, reason FROM problems ORDER BY path, line")]

    @staticmethod
    def documents(conn: sqlite3.Connection, doc_ids: Sequence[str]) -> dict[str, str]:
        """doc_id -> content hash, for those of `doc_ids` that are indexed."""
        return dict(conn.execute(
            "SELECT doc_id, content_hash FROM docs WHERE doc_id IN (SELECT value FROM json_each(?))",
            (json.dumps(list(doc_ids)),)))

    @staticmethod
    def documents_in(conn: sqlite3.Connection, paths: Sequence[str]) -> dict[str, str]:
        """doc_id -> content hash, for the documents read from `paths`."""
        return dict(conn.execute(
            "SELECT doc_id, content_hash FROM docs WHERE source_path IN (SELECT value FROM json_each(?))",
            (json.dumps(list(paths)),)))

    @staticmethod
    def documents_by_path(conn: sqlite3.Connection, paths: Sequence[str]) -> dict[str, dict[str, str]]:
        """source path -> {doc_id: content hash}, for the documents read from `paths`."""
        out: dict[str, dict[str, str]] = {}
        for doc_id, path, content_hash in conn.execute(
                "SELECT doc_id, source_path, content_hash FROM docs WHERE source_path IN "
                "(SELECT value FROM json_each(?))", (json.dumps(list(paths)),)):
            out.setdefault(path, {})[doc_id] = content_hash
        return out

    @staticmethod
    def document_hash(conn: sqlite3.Connection, doc_id: str) -> str | None:
        row = conn.execute("SELECT content_hash FROM docs WHERE doc_id = ?", (doc_id,)).fetchone()
        return row[0] if row else None

    @staticmethod
    def document_owner(conn: sqlite3.Connection, doc_id: str, rereading: Sequence[str]) -> str | None:
        """The file that already holds `doc_id`, unless it is one of the files being re-read."""
        row = conn.execute("SELECT source_path FROM docs WHERE doc_id = ?", (doc_id,)).fetchone()
        return row[0] if row and row[0] not in rereading else None

    # -- writes (inside `transaction`) ------------------------------------------------------
    @staticmethod
    def add_document(conn: sqlite3.Connection, doc: Document, chunks: Sequence[Chunk],
                     ids: Sequence[int], segment: str, sentence_vectors: Sequence[bytes],
                     fingerprint: bytes | None = None) -> None:
        conn.execute(
            "INSERT INTO docs(doc_id, source_path, content_hash, title, url, published, source, authors, text, "
            "offsets_in, line_map) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (doc.doc_id, doc.source_path, doc.content_hash(), doc.title, doc.url, doc.published,
             doc.source, json.dumps(list(doc.authors)), doc.text, doc.offsets_in, json.dumps(doc.line_map)),
        )
        conn.executemany(
            'INSERT INTO chunks(id, doc_id, seq, start, "end", text, sentences, segment, sentence_vectors) '
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(i, c.doc_id, c.seq, c.start, c.end, c.text, json.dumps(c.sentences), segment, blob)
             for i, c, blob in zip(ids, chunks, sentence_vectors)],
        )
        if fingerprint is not None:
            conn.execute("INSERT OR REPLACE INTO prints(doc_id, data) VALUES (?, ?)", (doc.doc_id, fingerprint))
            Store._add_bands(conn, [(doc.doc_id, fingerprint)])

    @staticmethod
    def remove_document(conn: sqlite3.Connection, doc_id: str) -> int:
        """Delete a document and its chunks; the chunks are listed as dead until purged."""
        rows = conn.execute("SELECT id, segment FROM chunks WHERE doc_id = ?", (doc_id,)).fetchall()
        conn.executemany("INSERT OR REPLACE INTO dead(id, segment, keywords) VALUES (?, ?, 1)", rows)
        conn.execute("DELETE FROM chunks WHERE doc_id = ?", (doc_id,))
        conn.execute("DELETE FROM docs WHERE doc_id = ?", (doc_id,))
        conn.execute("DELETE FROM prints WHERE doc_id = ?", (doc_id,))
        conn.execute("DELETE FROM bands WHERE doc_id = ?", (doc_id,))
        return len(rows)

    @staticmethod
    def _add_bands(conn: sqlite3.Connection, prints: Iterable[tuple[str, bytes]]) -> None:
        from newsdesk.dedup import band_keys  # writers only: datasketch loads scipy

        conn.executemany("INSERT INTO bands(band, value, doc_id) VALUES (?, ?, ?)",
                         [(band, value, doc_id) for doc_id, data in prints for band, value in band_keys(data)])

    @staticmethod
    def add_missing_prints(conn: sqlite3.Connection) -> int:
        """Give every document without a fingerprint one (an index made before they were kept)."""
        for statement in _GROUP_TABLES.split(";"):
            if statement.strip():
                conn.execute(statement)
        # The ids first (a scan of the doc_id index), the texts only of those missing: reading every
        # text to find none missing took 40 s per writer open at a million chunks.
        missing = [d for (d,) in conn.execute("SELECT doc_id FROM docs WHERE doc_id NOT IN (SELECT doc_id FROM prints)")]
        added = []
        for doc_id in missing:
            from newsdesk.dedup import fingerprint  # only when there is one to make: datasketch loads scipy

            text, title = conn.execute("SELECT text, title FROM docs WHERE doc_id = ?", (doc_id,)).fetchone()
            added.append((doc_id, fingerprint(text, title)))
        conn.executemany("INSERT INTO prints(doc_id, data) VALUES (?, ?)", added)
        Store._add_bands(conn, added)
        return len(added)

    @staticmethod
    def add_missing_bands(conn: sqlite3.Connection) -> int:
        """Give every fingerprint its band keys (an index made before they were kept)."""
        rows = conn.execute("SELECT doc_id, data FROM prints WHERE doc_id NOT IN (SELECT doc_id FROM bands)").fetchall()
        Store._add_bands(conn, rows)
        return len(rows)

    @staticmethod
    def band_candidates(conn: sqlite3.Connection, keys: Sequence[tuple[int, int]]) -> set[str]:
        """The articles that share any of these (band, value) keys."""
        found: set[str] = set()
        for band, value in keys:
            found.update(d for (d,) in conn.execute("SELECT doc_id FROM bands WHERE band = ? AND value = ?",
                                                    (band, value)))
        return found

    @staticmethod
    def source_number(conn: sqlite3.Connection, source: str | None, *, create: bool = False) -> int:
        """The number segments store for a source: 0 for none, -1 for one the index does not have."""
        if not source:
            return 0
        name = source.lower()
        row = conn.execute("SELECT id FROM sources WHERE name = ?", (name,)).fetchone()
        if row:
            return int(row[0])
        if not create:
            return -1
        return int(conn.execute("INSERT INTO sources(name) VALUES (?)", (name,)).lastrowid)

    @staticmethod
    def dead_in_segments(conn: sqlite3.Connection) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for chunk_id, segment in conn.execute("SELECT id, segment FROM dead WHERE segment != ''"):
            out.setdefault(segment, []).append(chunk_id)
        return out

    @staticmethod
    def dead_in_keywords(conn: sqlite3.Connection) -> list[int]:
        return [r[0] for r in conn.execute("SELECT id FROM dead WHERE keywords = 1")]

    # -- reads ------------------------------------------------------------------------------
    @staticmethod
    def live_chunks(conn: sqlite3.Connection, ids: Sequence[int]) -> set[int]:
        return {r[0] for r in conn.execute("SELECT id FROM chunks WHERE id IN (SELECT value FROM json_each(?))",
                                           (json.dumps(list(ids)),))}

    @staticmethod
    def chunk_rows(conn: sqlite3.Connection, ids: Sequence[int]) -> dict[int, ChunkRow]:
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = conn.execute(
            'SELECT c.id, c.doc_id, c.seq, c.start, c."end", c.text, c.sentences, '
            "d.title, d.url, d.published, d.source, c.segment "
            "FROM chunks c JOIN docs d ON d.doc_id = c.doc_id "
            f"WHERE c.id IN ({marks})", list(ids),
        )
        return {
            r[0]: ChunkRow(r[0], r[1], r[2], r[3], r[4], r[5], tuple(map(tuple, json.loads(r[6]))),
                           r[7], r[8], r[9], r[10], r[11])
            for r in rows
        }

    @staticmethod
    def document_texts(conn: sqlite3.Connection, doc_ids: Sequence[str]) -> dict[str, DocText]:
        marks = ",".join("?" * len(doc_ids))
        rows = conn.execute(f"SELECT doc_id, text, source_path, offsets_in, line_map, authors FROM docs "
                            f"WHERE doc_id IN ({marks})", list(doc_ids))
        return {r[0]: DocText(r[1], r[2], r[3], tuple(map(tuple, json.loads(r[4]))), tuple(json.loads(r[5])))
                for r in rows}

    @staticmethod
    def fingerprints(conn: sqlite3.Connection, doc_ids: Iterable[str] | None = None) -> list[tuple[str, bytes,
                                                                                                    str | None]]:
        """(doc_id, near-duplicate fingerprint, published) of every document that has one, or of
        those of `doc_ids` that have one."""
        query = "SELECT p.doc_id, p.data, d.published FROM prints p JOIN docs d ON d.doc_id = p.doc_id"
        try:
            if doc_ids is None:
                return conn.execute(query).fetchall()
            return conn.execute(query + " WHERE p.doc_id IN (SELECT value FROM json_each(?))",
                                (json.dumps(sorted(set(doc_ids))),)).fetchall()
        except sqlite3.OperationalError as err:  # an index made before fingerprints were kept
            if "no such table" in str(err):
                return []
            raise

    @staticmethod
    def set_groups(conn: sqlite3.Connection, rows: Sequence[tuple[str, str, str]], gone: Sequence[str]) -> None:
        """Rewrite the group rows of these articles: (doc_id, copy group, story group), and none
        for those in `gone` (removed, or alone now)."""
        conn.executemany("DELETE FROM groups WHERE doc_id = ?", [(d,) for d in gone])
        conn.executemany("INSERT OR REPLACE INTO groups(doc_id, copy_group, story_group) VALUES (?, ?, ?)", rows)

    @staticmethod
    def copy_groups(conn: sqlite3.Connection, doc_ids: Sequence[str]) -> dict[str, str]:
        """doc_id -> its copy group's id, for the articles that are in a group."""
        try:
            return dict(conn.execute("SELECT doc_id, copy_group FROM groups WHERE doc_id IN "
                                     "(SELECT value FROM json_each(?))", (json.dumps(list(doc_ids)),)))
        except sqlite3.OperationalError as err:
            if "no such table" in str(err):
                return {}
            raise

    @staticmethod
    def group_members(conn: sqlite3.Connection, doc_ids: Sequence[str]) -> dict[str, tuple[tuple[str, ...],
                                                                                       tuple[str, ...]]]:
        """doc_id -> (its story group, its copy group), each sorted and holding the article
        itself, for the articles that are in a group."""
        try:
            rows = conn.execute(
                "SELECT g.doc_id, m.doc_id, m.copy_group = g.copy_group FROM groups g JOIN groups m "
                "ON m.story_group = g.story_group WHERE g.doc_id IN (SELECT value FROM json_each(?)) "
                "ORDER BY m.doc_id", (json.dumps(list(doc_ids)),)).fetchall()
        except sqlite3.OperationalError as err:
            if "no such table" in str(err):
                return {}
            raise
        out: dict[str, tuple[list[str], list[str]]] = {}
        for doc_id, member, same_copy in rows:
            story, copies = out.setdefault(doc_id, ([], []))
            story.append(member)
            if same_copy:
                copies.append(member)
        return {d: (tuple(s), tuple(c)) for d, (s, c) in out.items()}

    @staticmethod
    def headers(conn: sqlite3.Connection, doc_ids: Sequence[str]) -> dict[str, tuple[str, str | None, str | None,
                                                                                  str | None]]:
        """doc_id -> (title, source, published, url), without the text."""
        rows = conn.execute("SELECT doc_id, title, source, published, url FROM docs WHERE doc_id IN "
                            "(SELECT value FROM json_each(?))", (json.dumps(list(doc_ids)),))
        return {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}

    @staticmethod
    def sentence_vectors(conn: sqlite3.Connection, ids: Sequence[int]) -> dict[int, bytes]:
        """chunk id -> its sentences' int8 vectors (see newsdesk.embed.dequantize_sentences)."""
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        return dict(conn.execute(f"SELECT id, sentence_vectors FROM chunks WHERE id IN ({marks})", list(ids)))

