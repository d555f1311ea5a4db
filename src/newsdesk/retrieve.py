"""Hybrid retrieval: dense (FAISS) and keyword (BM25) rankings fused by weighted reciprocal rank.

Dense search finds paraphrases; BM25 finds the rare names and numbers news questions hinge on.
Reciprocal rank fusion needs no score calibration between the two; the weights and depth below
were chosen on the benchmarks in bench/ (see docs/benchmarks.md).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np

from newsdesk import vectors
from newsdesk.store import ChunkRow, Filters, Store
from newsdesk.vectors import Segment


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
    dead: int  # vectors still in segments whose chunks were deleted
    folder: Path


def dense_ranking(gen: Generation, query_vec: np.ndarray, depth: int,
                  filters: Filters = Filters()) -> list[tuple[int, float]]:
    allowed = np.array(Store.filtered_ids(gen.conn, filters), dtype=np.int64) if filters else None
    ids, scores = vectors.search(list(gen.segments.values()), query_vec, depth + gen.dead, allowed)
    if gen.dead:
        marks = ",".join("?" * len(ids))
        live = {r[0] for r in gen.conn.execute(f"SELECT id FROM chunks WHERE id IN ({marks})", ids.tolist())}
        keep = [i for i, chunk_id in enumerate(ids.tolist()) if chunk_id in live][:depth]
        ids, scores = ids[keep], scores[keep]
    return list(zip(ids.tolist(), scores.tolist()))


def keyword_ranking(gen: Generation, query: str, depth: int,
                    filters: Filters = Filters()) -> list[tuple[int, float]]:
    return Store.keyword_search(gen.conn, query, depth, filters)


def fuse(dense: list[tuple[int, float]], keyword: list[tuple[int, float]], fusion: Fusion) -> list[tuple[int, float]]:
    scores: dict[int, float] = {}
    for weight, ranking in ((fusion.dense, dense), (fusion.keyword, keyword)):
        for rank, (chunk_id, _) in enumerate(ranking):
            scores[chunk_id] = scores.get(chunk_id, 0.0) + weight / (fusion.rrf_k + rank + 1)
    return sorted(scores.items(), key=lambda item: -item[1])


def search(gen: Generation, query: str, query_vec: np.ndarray, k: int,
           filters: Filters = Filters(), fusion: Fusion = Fusion(), mode: SearchMode = SearchMode.HYBRID) -> list[Passage]:
    """Top-k passages by the rankings `mode` names."""
    depth = max(fusion.depth, k)
    dense = dense_ranking(gen, query_vec, depth, filters) if mode is not SearchMode.KEYWORD else []
    keyword = keyword_ranking(gen, query, depth, filters) if mode is not SearchMode.DENSE else []
    ranked = fuse(dense, keyword, fusion)[:k]
    rows = Store.chunk_rows(gen.conn, [chunk_id for chunk_id, _ in ranked])
    dense_scores = dict(dense)
    keyword_scores = dict(keyword)
    passages = []
    for chunk_id, score in ranked:
        row = rows[chunk_id]
        cosine = dense_scores.get(chunk_id)
        if cosine is None:
            cosine = float(gen.segments[row.segment].index.reconstruct(chunk_id) @ query_vec[0])
        passages.append(_passage(row, score, cosine, keyword_scores.get(chunk_id)))
    return passages


def _passage(row: ChunkRow, score: float, dense: float, keyword: float | None) -> Passage:
    return Passage(
        chunk_id=row.id, doc_id=row.doc_id, title=row.title, url=row.url, published=row.published,
        source=row.source, text=row.text, start=row.start, end=row.end, score=score,
        dense=dense, keyword=keyword, sentences=row.sentences,
    )
