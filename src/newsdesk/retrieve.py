"""Hybrid retrieval: dense (FAISS) and keyword (BM25) rankings fused by weighted reciprocal rank.

Dense search finds paraphrases; BM25 finds the rare names and numbers news questions hinge on.
Reciprocal rank fusion needs no score calibration between the two; the weights and depth below
were chosen on the benchmarks in bench/ (see docs/benchmarks.md).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, replace
from pathlib import Path
from enum import Enum
from typing import Any

import numpy as np

from newsdesk import vectors
from newsdesk.keyword_index import KeywordFilter, KeywordIndex, day_number
from newsdesk.keywords import question_terms
from newsdesk.store import ChunkRow, Filters, Store
from newsdesk.vectors import Mask, Segment


@dataclass(frozen=True)
class Passage:
    chunk_id: int
    doc_id: str
    title: str
    url: str | None
    published: str | None
    source: str | None
    text: str
    start: int
    end: int
    score: float
    # Cosine similarity to the question (always known) and BM25 score (None: no keyword match).
    dense: float
    keyword: float | None
    sentences: tuple[tuple[int, int], ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "doc_id": self.doc_id, "title": self.title, "url": self.url, "published": self.published,
            "source": self.source, "text": self.text, "start": self.start, "end": self.end,
            "score": round(self.score, 6),
        }


class SearchMode(str, Enum):
    """Which rankings a search uses: both fused (the default), or one alone (for comparison)."""

    HYBRID = "hybrid"
    DENSE = "dense"
    KEYWORD = "keyword"


@dataclass(frozen=True)
class Fusion:
    dense: float = 1.0
    keyword: float = 1.0
    rrf_k: int = 5  # bench/tune.py: 5 beat 10, 20 and 60 on both sets
    depth: int = 50  # candidates taken from each ranking before fusing


@dataclass
class Generation:
    """What one reader sees of one committed index generation."""

    conn: sqlite3.Connection
    manifest: dict[str, Any]
    segments: dict[str, Segment]
    alive: dict[str, np.ndarray]  # segment -> positions whose chunks exist (absent: all do)
    keywords: KeywordIndex
    searcher: Any  # the keyword index's searcher for this generation
    dead_keywords: int  # deleted chunks the keyword index still holds (purged by the next update)
    folder: Path
    keywords_ahead: bool = True  # the searcher may hold chunks past this generation: cut them off

    def vector_mask(self, filters: Filters) -> Mask:
        """The filters as a mask over the segments' day and source arrays."""
        if not filters:
            return Mask()
        chunk_ids = None
        if filters.doc_ids:
            chunk_ids = np.array([r[0] for r in self.conn.execute(
                "SELECT id FROM chunks WHERE doc_id IN (SELECT value FROM json_each(?))",
                (json.dumps(list(filters.doc_ids)),))], dtype=np.int64)
        return Mask(
            since_day=day_number(filters.since) if filters.since else None,
            until_day=day_number(filters.until) if filters.until else None,
            source=Store.source_number(self.conn, filters.source) if filters.source else None,
            chunk_ids=chunk_ids,
        )

    def keyword_filter(self, filters: Filters) -> KeywordFilter:
        return KeywordFilter(
            since_day=day_number(filters.since) if filters.since else None,
            until_day=day_number(filters.until) if filters.until else None,
            source=filters.source.lower() if filters.source else None,
            doc_ids=filters.doc_ids,
        )

    def document_frequencies(self, stems: list[str]) -> dict[str, int]:
        return {stem: int(self.searcher.doc_freq("body", stem)) for stem in stems}


def dense_ranking(gen: Generation, query_vec: np.ndarray, depth: int,
                  filters: Filters = Filters()) -> list[tuple[int, float]]:
    ids, scores = vectors.search(list(gen.segments.values()), query_vec, depth, alive=gen.alive,
                                 mask=gen.vector_mask(filters))
    return list(zip(ids.tolist(), scores.tolist()))


def keyword_ranking(gen: Generation, query: str, depth: int,
                    filters: Filters = Filters()) -> list[tuple[int, float]]:
    """BM25 top `depth` over the question's stems. Chunks deleted but not yet purged are fetched
    too and dropped here; chunks of a batch newer than this generation are never fetched."""
    where = gen.keyword_filter(filters)
    if gen.keywords_ahead:
        where = replace(where, below_id=gen.manifest["next_chunk_id"])
    hits = gen.keywords.search(question_terms(query), depth + gen.dead_keywords, where, gen.searcher)
    if gen.dead_keywords and hits:
        live = Store.live_chunks(gen.conn, [i for i, _ in hits])
        hits = [(i, s) for i, s in hits if i in live]
    return hits[:depth]


def fuse(dense: list[tuple[int, float]], keyword: list[tuple[int, float]], fusion: Fusion) -> list[tuple[int, float]]:
    scores: dict[int, float] = {}
    for weight, ranking in ((fusion.dense, dense), (fusion.keyword, keyword)):
        for rank, (chunk_id, _) in enumerate(ranking):
            scores[chunk_id] = scores.get(chunk_id, 0.0) + weight / (fusion.rrf_k + rank + 1)
    return sorted(scores.items(), key=lambda item: -item[1])


def search(view: Any, query: str, query_vec: np.ndarray, k: int,
           filters: Filters = Filters(), fusion: Fusion = Fusion(), mode: SearchMode = SearchMode.HYBRID) -> list[Passage]:
    """Top-k passages of an index view (`newsdesk.backend.IndexView`) by the rankings `mode` names."""
    depth = max(fusion.depth, k)
    dense = view.dense(query_vec, depth, filters) if mode is not SearchMode.KEYWORD else []
    keyword = view.keyword(query, depth, filters) if mode is not SearchMode.DENSE else []
    ranked = fuse(dense, keyword, fusion)[:k]
    rows = view.chunks([chunk_id for chunk_id, _ in ranked])
    dense_scores = dict(dense)
    keyword_scores = dict(keyword)
    passages = []
    for chunk_id, score in ranked:
        row = rows[chunk_id]
        cosine = dense_scores.get(chunk_id)
        if cosine is None:  # found by keywords only: its cosine still informs the answerer
            cosine = float(view.vector(row) @ query_vec.reshape(-1))
        passages.append(_passage(row, score, cosine, keyword_scores.get(chunk_id)))
    return passages


def _passage(row: ChunkRow, score: float, dense: float, keyword: float | None) -> Passage:
    return Passage(
        chunk_id=row.id, doc_id=row.doc_id, title=row.title, url=row.url, published=row.published,
        source=row.source, text=row.text, start=row.start, end=row.end, score=score,
        dense=dense, keyword=keyword, sentences=row.sentences,
    )
