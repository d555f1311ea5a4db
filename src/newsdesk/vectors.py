"""Dense vectors in FAISS: immutable segments of `IndexIDMap2(IndexFlatIP)` keyed by chunk id.

The stock llama-index FAISS stores cannot delete or reuse ids safely, so newsdesk owns this
layer. An update writes a new small segment instead of rewriting the whole index; deleted
chunks stay in their segment until a merge and are filtered out by id at search time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np


@dataclass
class Segment:
    name: str
    index: faiss.Index

    @property
    def ids(self) -> np.ndarray:
        return faiss.vector_to_array(self.index.id_map)

    def vectors(self) -> np.ndarray:
        return self.index.index.reconstruct_n(0, self.index.ntotal)


def new_segment(name: str, ids: np.ndarray, vectors: np.ndarray) -> Segment:
    index = faiss.IndexIDMap2(faiss.IndexFlatIP(vectors.shape[1]))
    index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))
    return Segment(name, index)


def write_segment(segment: Segment, folder: Path) -> Path:
    """Write durably: a reader never sees a half-written file under the final name."""
    path = folder / f"{segment.name}.faiss"
    tmp = folder / f".{segment.name}.faiss.tmp"
    faiss.write_index(segment.index, str(tmp))
    fsync_path(tmp)
    os.replace(tmp, path)
    fsync_path(folder)
    return path


def read_segment(name: str, folder: Path) -> Segment:
    return Segment(name, faiss.read_index(str(folder / f"{name}.faiss")))


def search(
    segments: list[Segment], query: np.ndarray, k: int, allowed: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k (ids, inner products) over all segments, best first; `allowed` restricts the ids."""
    params = None
    if allowed is not None:
        if len(allowed) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64)))
    all_ids, all_scores = [], []
    for seg in segments:
        if seg.index.ntotal == 0:
            continue
        scores, ids = seg.index.search(query, min(k, seg.index.ntotal), params=params)
        keep = ids[0] >= 0
        all_ids.append(ids[0][keep])
        all_scores.append(scores[0][keep])
    if not all_ids:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    ids = np.concatenate(all_ids)
    scores = np.concatenate(all_scores)
    order = np.argsort(-scores, kind="stable")[:k]
    return ids[order], scores[order]


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
