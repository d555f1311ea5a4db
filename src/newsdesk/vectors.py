"""Dense vectors in FAISS: immutable segments, each an index over positions 0..n-1 plus arrays
that say, per position, which chunk it is, the day its article was published and its source.

Small segments are exact (`IndexFlatIP`: inner product = cosine of normalized vectors). A segment
of `ANN_THRESHOLD` vectors or more (a full build or a merge of a large archive) is approximate
(HNSW; see docs/benchmarks.md for recall@50 against flat and the parameters). Deleted chunks stay
in their segment until a merge; like date and source filters they become a boolean mask over
positions, so a filter costs a vectorised comparison over arrays, never a list of allowed ids.
A mask that leaves few positions is searched exactly over just those (faster than asking an
approximate index to skip almost everything); otherwise FAISS searches with a bitmap selector.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from newsdesk.keyword_index import UNDATED

# Segments at least this large are approximate. bench/scale.py at 123k vectors: flat 19 ms p50 on
# one core, which made a question there (52 ms) slower than at 1M (40 ms), against HNSW's 0.8 ms at
# recall@50 0.996. Below 100k exact search costs at most about 15 ms and its build nothing.
ANN_THRESHOLD = 100_000
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
# bench/hnsw.py on 1M real-text vectors: recall@50 0.934 at 128, 0.973 at 256 (0.45 -> 0.65 ms),
# 0.979 at 512 (1.1 ms). 256: past the 0.95 the archive needs, at a fraction of a millisecond.
HNSW_EF_SEARCH = 256
# A mask leaving at most this many positions is searched exactly over them.
EXACT_BELOW = 20_000


@dataclass
class Segment:
    name: str
    index: faiss.Index  # over positions
    ids: np.ndarray  # int64: the chunk id at each position
    days: np.ndarray  # int32: its article's day (newsdesk.keyword_index.day_number)
    sources: np.ndarray  # int32: its article's source number (0: none)

    @property
    def size(self) -> int:
        return int(self.index.ntotal)

    @property
    def approximate(self) -> bool:
        return not isinstance(self.index, faiss.IndexFlat)

    def vector_of(self, chunk_id: int) -> np.ndarray:
        ids = self.ids
        at = int(np.searchsorted(ids, chunk_id)) if self._sorted else -1
        if not (0 <= at < len(ids) and ids[at] == chunk_id):
            at = int(np.flatnonzero(ids == chunk_id)[0])
        return self.vectors()[at]

    @property
    def _sorted(self) -> bool:
        cached = self.__dict__.get("_is_sorted")
        if cached is None:
            cached = bool(len(self.ids) < 2 or np.all(self.ids[1:] > self.ids[:-1]))
            self.__dict__["_is_sorted"] = cached
        return cached

    def vectors(self) -> np.ndarray:
        """All vectors, as a view (no copy) of the flat storage."""
        flat = self.index if isinstance(self.index, faiss.IndexFlat) else faiss.downcast_index(self.index.storage)
        n, d = flat.ntotal, flat.d
        return faiss.rev_swig_ptr(flat.get_xb(), n * d).reshape(n, d) if n else np.zeros((0, d), np.float32)


def new_segment(name: str, ids: np.ndarray, vectors: np.ndarray, days: np.ndarray, sources: np.ndarray, *,
                ann_threshold: int | None = None) -> Segment:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    d = vectors.shape[1]
    if len(vectors) >= (ann_threshold if ann_threshold is not None else ANN_THRESHOLD):
        index = faiss.IndexHNSWFlat(d, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = HNSW_EF_SEARCH
    else:
        index = faiss.IndexFlatIP(d)
    if len(vectors):
        index.add(vectors)
    return Segment(name, index, np.asarray(ids, dtype=np.int64), np.asarray(days, dtype=np.int32),
                   np.asarray(sources, dtype=np.int32))


def write_segment(segment: Segment, folder: Path) -> None:
    """Write durably: a reader never sees a half-written file under its final name."""
    arrays = folder / f"{segment.name}.npz"
    tmp = folder / f".{segment.name}.npz.tmp"
    with open(tmp, "wb") as f:
        np.savez(f, ids=segment.ids, days=segment.days, sources=segment.sources)
    fsync_path(tmp)
    os.replace(tmp, arrays)
    path = folder / f"{segment.name}.faiss"
    tmp = folder / f".{segment.name}.faiss.tmp"
    faiss.write_index(segment.index, str(tmp))
    fsync_path(tmp)
    os.replace(tmp, path)
    fsync_path(folder)


def read_segment(name: str, folder: Path) -> Segment:
    with np.load(folder / f"{name}.npz") as arrays:
        ids, days, sources = arrays["ids"], arrays["days"], arrays["sources"]
    index = faiss.read_index(str(folder / f"{name}.faiss"))
    if isinstance(index, faiss.IndexHNSW):
        index.hnsw.efSearch = HNSW_EF_SEARCH
    return Segment(name, index, ids, days, sources)


def segment_files(name: str) -> tuple[str, str]:
    return f"{name}.faiss", f"{name}.npz"


@dataclass(frozen=True)
class Mask:
    """Which positions of segments a search may return: a day range, a source, chosen chunks."""

    since_day: int | None = None
    until_day: int | None = None
    source: int | None = None  # a source number; -1: a source the index does not have
    chunk_ids: np.ndarray | None = None

    def __bool__(self) -> bool:
        return (self.since_day is not None or self.until_day is not None or self.source is not None
                or self.chunk_ids is not None)

    def positions(self, segment: Segment) -> np.ndarray:
        keep = np.ones(segment.size, dtype=bool)
        if self.since_day is not None or self.until_day is not None:
            keep &= segment.days != UNDATED  # an article without a date is in no date range
        if self.since_day is not None:
            keep &= segment.days >= self.since_day
        if self.until_day is not None:
            keep &= segment.days <= self.until_day
        if self.source is not None:
            keep &= segment.sources == self.source
        if self.chunk_ids is not None:
            keep &= np.isin(segment.ids, self.chunk_ids)
        return keep


def search(segments: list[Segment], query: np.ndarray, k: int, *, alive: dict[str, np.ndarray] | None = None,
           mask: Mask = Mask()) -> tuple[np.ndarray, np.ndarray]:
    """Top-k (chunk ids, inner products) over all segments, best first.

    `alive` maps a segment name to the positions whose chunks still exist (absent: all do).
    """
    query = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
    all_ids, all_scores = [], []
    for seg in segments:
        if seg.size == 0:
            continue
        keep = alive.get(seg.name) if alive else None
        if mask:
            keep = mask.positions(seg) if keep is None else keep & mask.positions(seg)
        ids, scores = _search_segment(seg, query, k, keep)
        all_ids.append(ids)
        all_scores.append(scores)
    if not all_ids:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    ids = np.concatenate(all_ids)
    scores = np.concatenate(all_scores)
    order = np.argsort(-scores, kind="stable")[:k]
    return ids[order], scores[order]


def _search_segment(seg: Segment, query: np.ndarray, k: int, keep: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    if keep is None:
        params = faiss.SearchParametersHNSW(efSearch=max(HNSW_EF_SEARCH, k)) if seg.approximate else None
        scores, positions = seg.index.search(query, min(k, seg.size), params=params)
    else:
        allowed = int(keep.sum())
        if allowed == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        if allowed <= EXACT_BELOW:
            chosen = np.flatnonzero(keep)
            exact = seg.vectors()[chosen] @ query[0]
            top = np.argsort(-exact, kind="stable")[:k]
            return seg.ids[chosen[top]], exact[top].astype(np.float32)
        bits = np.packbits(keep, bitorder="little")  # kept referenced until the search returns
        selector = faiss.IDSelectorBitmap(seg.size, faiss.swig_ptr(bits))
        params = (faiss.SearchParametersHNSW(sel=selector, efSearch=max(HNSW_EF_SEARCH, k)) if seg.approximate
                  else faiss.SearchParameters(sel=selector))
        scores, positions = seg.index.search(query, min(k, allowed), params=params)
        del bits
    found = positions[0] >= 0
    return seg.ids[positions[0][found]], scores[0][found]


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
