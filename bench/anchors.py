"""The keyword anchors the benchmarks set beside tantivy, over the same chunks and the same stems.

- `Bm25s`: bm25s over each chunk's title and body stems together.
- `Fts5`: SQLite FTS5 queried as newsdesk's previous keyword index was (an OR of the question's
  stems, bm25 with title weight 0.5 and body 1.0), or with a "smart" plan that leaves out stems
  in more than 5% of chunks.

Used by bench/scale.py, bench/keyword_speed.py and bench/keyword_quality.py, so all three time
and rank the same engines.
"""

from __future__ import annotations

import sqlite3
import time

from newsdesk.keywords import question_terms, terms

Row = tuple[int, str, str]  # chunk id, title stems, body stems


def stem_rows(conn: sqlite3.Connection) -> list[Row]:
    """Every chunk of an index as (id, title stems, body stems), with newsdesk's own `terms`."""
    return [(i, " ".join(terms(title)), " ".join(terms(text))) for i, title, text in conn.execute(
        "SELECT c.id, d.title, c.text FROM chunks c JOIN docs d ON d.doc_id = c.doc_id")]


class Bm25s:
    def __init__(self, rows: list[Row]):
        import bm25s

        started = time.perf_counter()
        self._ids = [i for i, _, _ in rows]
        self._retriever = bm25s.BM25()
        self._retriever.index([f"{t} {b}".split() for _, t, b in rows], show_progress=False)
        self._vocab = self._retriever.vocab_dict
        self.build_s = time.perf_counter() - started

    def search(self, question: str, k: int) -> list[int]:
        """Chunk ids of the top `k` for the question's stems, one thread."""
        wanted = [[self._vocab[s] for s in question_terms(question) if s in self._vocab]]
        if not wanted[0]:
            return []
        docs, _ = self._retriever.retrieve(wanted, k=min(k, len(self._ids)), show_progress=False, n_threads=1)
        return [self._ids[j] for j in docs[0]]


class Fts5:
    def __init__(self, rows: list[Row]):
        self._db = sqlite3.connect(":memory:")
        self._db.execute("CREATE VIRTUAL TABLE f USING fts5(title, body, tokenize='unicode61')")
        started = time.perf_counter()
        self._db.executemany("INSERT INTO f(rowid, title, body) VALUES (?, ?, ?)", rows)
        self.build_s = time.perf_counter() - started
        self._db.execute("CREATE VIRTUAL TABLE v USING fts5vocab(f, 'row')")
        self._total = len(rows)

    def search(self, question: str, k: int, *, smart: bool = False) -> list[int]:
        stems = list(dict.fromkeys(question_terms(question)))
        if smart and stems:  # leave out stems in more than 5% of chunks (they barely rank)
            df = dict(self._db.execute(f"SELECT term, doc FROM v WHERE term IN ({','.join('?' * len(stems))})",
                                       stems))
            stems = [s for s in stems if df.get(s, 0) <= 0.05 * self._total] or stems[:1]
        if not stems:
            return []
        match = " OR ".join(f'"{s}"' for s in stems)
        return [r[0] for r in self._db.execute(
            "SELECT rowid FROM f WHERE f MATCH ? ORDER BY bm25(f, 0.5, 1.0) LIMIT ?", (match, k))]

    def close(self) -> None:
        self._db.close()
