"""The keyword (BM25) half of the index: tantivy, the Rust search library behind Quickwit.

Why tantivy (measured in docs/benchmarks.md, "Keyword search at scale"): SQLite FTS5 scores every
row that holds any query term, so an OR of common news words takes seconds at a million chunks;
tantivy finds the top k with block-max WAND and stays within a few milliseconds, updates in
place (segments, deletes, atomic commits) and filters on dates and sources natively. bm25s is as
fast but static: updating it would mean hand-writing segments and corpus-wide statistics.

Documents are chunks, fed the same Snowball stems as before (`newsdesk.keywords`), so the
index, the queries and the answerer agree on what a term is; BM25 is tantivy's (k1 1.2,
b 0.75), the headline field weighing half a body match.

Consistency with the SQLite half (`newsdesk.store`), which decides what a question may see:

- a batch is committed to tantivy *before* its SQLite transaction; a crash in between leaves
  chunks tantivy has and SQLite does not, which readers drop (they keep only hits that are live
  chunks of their generation) and the next writer deletes (`purge`);
- chunks removed by an update are deleted from tantivy at the start of the next update, not in
  the same commit: until then readers of the older generation still find them, and readers of the
  newer one drop them (dead ids are listed in SQLite).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from newsdesk.load import published_day

log = logging.getLogger("newsdesk.keywords")

TITLE_BOOST = 0.5
HEAP_BYTES = 128_000_000
UNDATED = -(2**31)  # the day of an article without a date: no since/until range includes it
_EPOCH = date(1970, 1, 1)


def day_number(published: str | None) -> int:
    """Days since 1970-01-01 of an ISO date (or date and time); UNDATED for None."""
    day = published_day(published)
    return UNDATED if day is None else (day - _EPOCH).days


@dataclass(frozen=True)
class KeywordFilter:
    """Filters tantivy applies itself: a day range (inclusive), a source, or some documents."""

    since_day: int | None = None
    until_day: int | None = None
    source: str | None = None  # lower-cased
    doc_ids: tuple[str, ...] = ()
    below_id: int | None = None  # only chunks of a generation: ids below its next_chunk_id


def _schema() -> Any:
    import tantivy

    sb = tantivy.SchemaBuilder()
    sb.add_unsigned_field("id", indexed=True, fast=True)
    sb.add_text_field("body", tokenizer_name="whitespace", index_option="freq")
    sb.add_text_field("title", tokenizer_name="whitespace", index_option="freq")
    sb.add_integer_field("day", indexed=True, fast=True)
    sb.add_text_field("source", tokenizer_name="raw", index_option="basic")
    sb.add_text_field("doc", tokenizer_name="raw", index_option="basic")
    return sb.build()


class KeywordIndex:
    """One tantivy index in a folder: batches are added and committed by the writer; readers search."""

    def __init__(self, folder: Path, *, create: bool = False):
        import tantivy

        self.folder = folder
        self._shadow: Path | None = None
        if create:
            folder.mkdir(parents=True, exist_ok=True)
            self.index = tantivy.Index(_schema(), path=str(folder))
        else:
            self.index = self._open(folder)
        self.schema = self.index.schema
        self._writer: Any = None

    @staticmethod
    def _open(folder: Path) -> Any:
        import tantivy

        return tantivy.Index.open(str(folder))

    @classmethod
    def open_for_reading(cls, folder: Path) -> KeywordIndex:
        """Open for questions; on read-only storage through a shadow folder (see `_read_only_view`)."""
        try:
            return cls(folder)
        except ValueError as err:
            if "Lockfile" not in str(err) and "Read-only" not in str(err):
                raise
        keywords = cls.__new__(cls)
        keywords.folder = folder
        keywords._shadow = _read_only_view(folder)
        keywords.index = cls._open(keywords._shadow)
        keywords.schema = keywords.index.schema
        keywords._writer = None
        return keywords

    # -- writing ---------------------------------------------------------------------------------
    @property
    def writer(self) -> Any:
        if self._writer is None:
            self._writer = self.index.writer(heap_size=HEAP_BYTES, num_threads=1)
        return self._writer

    def add(self, rows: Iterable[tuple[int, str, str, int, str | None, str]]) -> None:
        """Add chunks: (chunk id, body stems, title stems, day, source, doc id), stems space-separated."""
        import tantivy

        # self.writer each time, never a local: a failure's traceback must not keep the writer (and
        # its lock on the folder) alive after `abandon`.
        for chunk_id, body, title, day, source, doc_id in rows:
            doc = tantivy.Document()
            doc.add_unsigned("id", int(chunk_id))
            doc.add_text("body", body)
            doc.add_text("title", title)
            doc.add_integer("day", int(day))
            if source:
                doc.add_text("source", source.lower())
            doc.add_text("doc", doc_id)
            self.writer.add_document(doc)

    def delete(self, chunk_ids: Iterable[int]) -> int:
        """Delete chunks by id (by query: tantivy-py's delete by term does not match u64 fields)."""
        import tantivy

        ids = [int(i) for i in chunk_ids]
        for at in range(0, len(ids), 1024):
            self.writer.delete_documents_by_query(tantivy.Query.term_set_query(self.schema, "id", ids[at:at + 1024]))
        return len(ids)

    def delete_from(self, first_id: int) -> None:
        """Delete every chunk with an id of at least `first_id`: what a crashed batch left."""
        import tantivy

        query = tantivy.Query.range_query(self.schema, "id", tantivy.FieldType.Unsigned, int(first_id), 2**63 - 1)
        self.writer.delete_documents_by_query(query)

    def commit(self) -> None:
        """Durable when it returns (tantivy fsyncs the segment files and swaps meta.json atomically)."""
        if self._writer is not None:
            self._writer.commit()

    def close(self) -> None:
        """Finish background merges and remove files no commit refers to any more."""
        if self._writer is not None:
            self._writer.commit()
            self._writer.wait_merging_threads()
            self._writer = None
            try:
                gc = self.index.writer(heap_size=15_000_000, num_threads=1)
                gc.garbage_collect_files()
                gc.wait_merging_threads()
            except ValueError:
                pass  # another writer appeared; it collects next time

    def abandon(self) -> None:
        """After a failed update: drop what was not committed and give up the writer's lock."""
        if self._writer is not None:
            try:
                self._writer.rollback()
            except ValueError:
                pass
            self._writer = None
            # A failed commit's traceback holds a reference cycle to the writer; collect it now,
            # so the folder's lock is free for the next update in this process.
            import gc

            gc.collect()

    # -- reading ---------------------------------------------------------------------------------
    def reload(self) -> None:
        self.index.reload()

    def num_docs(self) -> int:
        return int(self.index.searcher().num_docs)

    def doc_freq(self, stem: str) -> int:
        return int(self.index.searcher().doc_freq("body", stem))

    def search(self, stems: Sequence[str], limit: int, where: KeywordFilter = KeywordFilter(),
               searcher: Any = None) -> list[tuple[int, float]]:
        """(chunk id, BM25 score) of the best `limit` chunks for an OR of `stems`, best first."""
        import tantivy

        unique = list(dict.fromkeys(s for s in stems if s))
        if not unique or limit <= 0:
            return []
        Q, Occur = tantivy.Query, tantivy.Occur
        should = []
        for stem in unique:
            should.append((Occur.Should, Q.term_query(self.schema, "body", stem)))
            should.append((Occur.Should, Q.boost_query(Q.term_query(self.schema, "title", stem), TITLE_BOOST)))
        query = Q.boolean_query(should)
        must = self._filters(where)
        if must:
            query = Q.boolean_query([(Occur.Must, query), *[(Occur.Must, Q.const_score_query(m, 0.0)) for m in must]])
        searcher = searcher or self.index.searcher()
        hits = searcher.search(query, limit, count=False).hits
        if not hits:
            return []
        ids = searcher.fast_field_values("id", [address for _, address in hits])
        return [(int(i), float(score)) for (score, _), i in zip(hits, ids)]

    def _filters(self, where: KeywordFilter) -> list[Any]:
        import tantivy

        Q = tantivy.Query
        must = []
        if where.since_day is not None or where.until_day is not None:
            low = where.since_day if where.since_day is not None else UNDATED + 1
            high = where.until_day if where.until_day is not None else 2**31 - 1
            must.append(Q.range_query(self.schema, "day", tantivy.FieldType.Integer, low, high))
        if where.source:
            must.append(Q.term_query(self.schema, "source", where.source.lower()))
        if where.doc_ids:
            must.append(Q.term_set_query(self.schema, "doc", list(where.doc_ids)))
        if where.below_id is not None:
            must.append(Q.range_query(self.schema, "id", tantivy.FieldType.Unsigned, 0, int(where.below_id) - 1))
        return must

    def searcher(self) -> Any:
        return self.index.searcher()

    def holds_ids_from(self, searcher: Any, first_id: int) -> bool:
        """Whether `searcher`'s snapshot holds any chunk with an id >= `first_id`."""
        import tantivy

        query = tantivy.Query.range_query(self.schema, "id", tantivy.FieldType.Unsigned,
                                          int(first_id), 2**63 - 1)
        return searcher.search(query, 1, count=True).count > 0

    def all_ids(self) -> list[int]:
        """Every chunk id in the index (for `newsdesk check`; reads the whole id column)."""
        import tantivy

        searcher = self.index.searcher()
        hits = searcher.search(tantivy.Query.all_query(), max(searcher.num_docs, 1), count=False).hits
        return sorted(int(i) for i in searcher.fast_field_values("id", [a for _, a in hits]))


def _read_only_view(folder: Path) -> Path:
    """tantivy takes a lock file in the index folder even to read (tantivy issue 557), which
    read-only storage refuses. A published index does not change while it is read, so a
    temporary folder of links to its files, where the lock files can be made, is an exact view."""
    shadow = Path(tempfile.mkdtemp(prefix="newsdesk-keywords-"))
    with os.scandir(folder) as listing:
        for entry in listing:
            if entry.name.startswith(".tantivy") and entry.name.endswith(".lock"):
                continue
            os.symlink(os.path.abspath(entry.path), shadow / entry.name)
    log.info("the keyword index in %s is read-only: reading it through %s", folder, shadow)
    import atexit

    atexit.register(shutil.rmtree, shadow, True)
    return shadow
