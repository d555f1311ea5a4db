"""A news archive, not a sample: an index of N chunks of real news text, and what it costs to use.

    python bench/scale.py --chunks 100000            # prints the figures
    python bench/scale.py --chunks 1000000 --json    # one JSON object (keys below)
    python bench/scale.py --chunks 100000 --anchors  # also SQLite FTS5 (the previous keyword
                                                     # index, and with a smarter plan) and bm25s
    python bench/scale.py --chunks 1000000 --updates 3   # only add/delete one article, 3 times

The index is filled from the RealTime QA and BBC articles and the SQuAD paragraphs (about 25k
distinct chunks), replicated under new ids, dates and sources until it holds N chunks, through
the real update pipeline (reading, chunking, keywords, segments, merges). The vectors are the
real model's, computed once by the bench indexes (`bench/evalsets.py`) and replayed; replicas'
vectors get a little Gaussian noise (sigma 0.02, renormalised), so that no two are identical
and approximate search is not measured on exact ties. Queries are the 296 RealTime QA
questions, embedded for real (ONNX int8, one thread).

Keys of --json: ask_p50_ms, ask_p95_ms, search_p50_ms, keyword_p50_ms, keyword_p95_ms,
bm25s_p50_ms (with --anchors), fts5_p50_ms, fts5_smart_p50_ms (with --anchors),
dense_recall_at_50, dense_p50_ms, flat_p50_ms, filtered_p50_ms (a one-week window),
source_p50_ms (one source), add_s, delete_s, peak_rss_mb, fill_s, disk_mb, chunks.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import shutil
import sys
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from anchors import Bm25s, Fts5, stem_rows  # noqa: E402
from evalsets import WORK, bbc, index_dir, newsqa, open_or_build, squad  # noqa: E402

from newsdesk import Desk  # noqa: E402
from newsdesk.config import Settings  # noqa: E402
from newsdesk.embed import dequantize_sentences  # noqa: E402
from newsdesk.index import update_index  # noqa: E402
from newsdesk.retrieve import dense_ranking, keyword_ranking  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
NOISE = 0.02
OUTLETS = 24


@dataclass
class Base:
    """The distinct articles the fill replicates, and the vectors of their chunks."""

    records: list[dict]
    vectors: dict[str, np.ndarray]  # chunk text -> vector
    sentences: dict[str, np.ndarray]  # chunk text -> sentence vectors
    chunks: int


def base() -> Base:
    records, vectors, sentences = [], {}, {}
    chunks = 0
    for dataset in (newsqa(), bbc(), squad()):
        desk = open_or_build(dataset)
        dimension = desk.stats().dimension
        with desk.reader.generation() as gen:
            for doc_id, title, text, published, source in gen.conn.execute(
                    "SELECT doc_id, title, text, published, source FROM docs ORDER BY doc_id"):
                records.append({"id": doc_id, "title": title, "text": text, "published": published,
                                "source": source or dataset.name})
            for chunk_id, text, segment, blob in gen.conn.execute(
                    "SELECT id, text, segment, sentence_vectors FROM chunks"):
                vectors[text] = gen.segments[segment].vector_of(chunk_id).copy()
                sentences[text] = dequantize_sentences(blob, dimension)
                chunks += 1
    return Base(records, vectors, sentences, chunks)


class ReplayEncoder:
    """The real encoder, except that chunk texts already embedded are looked up (a replica's copy
    with a little noise); queries and new texts are encoded for real."""

    def __init__(self, real, known: Base):
        self.real = real
        self.known = known
        self.kind, self.model_id = real.kind, real.model_id
        self.dimension, self.max_tokens = real.dimension, real.max_tokens
        self.seen: dict[str, int] = {}
        self.replayed = self.encoded = 0

    def tokens(self, text):
        return self.real.tokens(text)

    def encode(self, texts, **kw):
        return self.real.encode(texts, **kw)

    def encode_query(self, text):
        return self.real.encode_query(text)

    def encode_passages(self, texts, spans, **kw):
        fresh = [i for i, t in enumerate(texts) if t not in self.known.vectors]
        real_vectors, real_sentences = self.real.encode_passages([texts[i] for i in fresh],
                                                                 [spans[i] for i in fresh]) if fresh else ([], [])
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        sentences: list[np.ndarray] = [np.zeros((0, self.dimension), np.float32)] * len(texts)
        for j, i in enumerate(fresh):
            out[i], sentences[i] = real_vectors[j], real_sentences[j]
        for i, text in enumerate(texts):
            if text not in self.known.vectors:
                continue
            k = self.seen.get(text, 0)
            self.seen[text] = k + 1
            vector = self.known.vectors[text]
            if k:  # a replica: the same article again, a little apart
                rng = np.random.default_rng(hash((text[:64], k)) & 0xFFFFFFFF)
                vector = vector + rng.normal(0, NOISE, vector.shape).astype(np.float32)
                vector /= np.linalg.norm(vector)
            out[i] = vector
            sentences[i] = self.known.sentences[text]
        self.replayed += len(texts) - len(fresh)
        self.encoded += len(fresh)
        return out, sentences


def fill(size: int, known: Base, encoder) -> tuple[Path, Path, dict]:
    root = WORK / f"scale-{size}"
    corpus, index = root / "corpus", root / "index"
    if (root / "filled.json").exists():
        return corpus, index, json.loads((root / "filled.json").read_text())
    shutil.rmtree(root, ignore_errors=True)
    corpus.mkdir(parents=True)
    copies = max(1, math.ceil(size / known.chunks))
    start = date(2016, 1, 1)
    for r in range(copies):
        with open(corpus / f"copy-{r:03d}.jsonl", "w") as out:
            for n, rec in enumerate(known.records):
                day = date.fromisoformat(rec["published"][:10]) if rec["published"] else start + timedelta(days=n % 3000)
                day += timedelta(days=37 * r)
                out.write(json.dumps({"id": f"r{r}-{rec['id']}", "title": rec["title"], "text": rec["text"],
                                      "published": day.isoformat(),
                                      "source": rec["source"] if r == 0 else f"outlet-{(r + n) % OUTLETS}"}) + "\n")
    settings = Settings(corpus_dir=corpus, index=str(index))
    started = time.perf_counter()
    report = update_index(settings, encoder)
    info = {"copies": copies, "documents": report.documents, "chunks": report.chunks,
            "fill_s": time.perf_counter() - started, "embed_s": report.embed_seconds,
            "fill_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    (root / "filled.json").write_text(json.dumps(info))
    return corpus, index, info


def timed(fn, items) -> list[float]:
    out = []
    for item in items:
        t0 = time.perf_counter()
        fn(item)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def p(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def measure(corpus: Path, index: Path, questions: list[str], anchors: bool) -> dict:
    desk = Desk.open(index, corpus=corpus)
    for q in questions[:20]:
        desk.ask(q)
    out: dict = {}
    asks = timed(lambda q: desk.ask(q), questions)
    out["ask_p50_ms"], out["ask_p95_ms"] = p(asks, 50), p(asks, 95)
    out["search_p50_ms"] = p(timed(lambda q: desk.search(q, k=10), questions), 50)
    vectors = {q: desk.encoder.encode_query(q) for q in questions}
    with desk.reader.generation() as gen:
        kw = timed(lambda q: keyword_ranking(gen, q, 50), questions)  # as a question does
        out["keyword_p50_ms"], out["keyword_p95_ms"] = p(kw, 50), p(kw, 95)
        dense = timed(lambda q: dense_ranking(gen, vectors[q], 50), questions)
        out["dense_p50_ms"] = p(dense, 50)
        out.update(flat_anchor(gen, vectors, questions))
        out["segments"] = {name: {"vectors": s.size, "approximate": s.approximate} for name, s in gen.segments.items()}
        if anchors:
            out.update(keyword_anchors(gen, questions))
    day0 = date(2025, 9, 1)
    week = {"since": day0.isoformat(), "until": (day0 + timedelta(days=7)).isoformat()}
    out["filtered_p50_ms"] = p(timed(lambda q: desk.search(q, k=10, **week), questions), 50)
    out["source_p50_ms"] = p(timed(lambda q: desk.search(q, k=10, source="outlet-3"), questions), 50)
    return out


def flat_anchor(gen, vectors: dict[str, np.ndarray], questions: list[str]) -> dict:
    """Exact search over every live vector (the anchor) against newsdesk's dense search."""
    import faiss

    from newsdesk.retrieve import dense_ranking

    live = [], []
    for seg in gen.segments.values():
        keep = gen.alive.get(seg.name, np.ones(seg.size, dtype=bool))
        live[0].append(seg.ids[keep])
        live[1].append(seg.vectors()[keep])
    ids = np.concatenate(live[0])
    flat = faiss.IndexFlatIP(gen.manifest["dimension"])
    flat.add(np.ascontiguousarray(np.concatenate(live[1])))
    del live
    hnsw = None
    out: dict = {}
    if not any(seg.approximate for seg in gen.segments.values()):
        # The index is small enough to be exact; still measure what HNSW would give here.
        from newsdesk.vectors import HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH, HNSW_M

        t0 = time.perf_counter()
        hnsw = faiss.IndexHNSWFlat(flat.d, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        hnsw.add(faiss.rev_swig_ptr(flat.get_xb(), flat.ntotal * flat.d).reshape(flat.ntotal, flat.d))
        hnsw.hnsw.efSearch = HNSW_EF_SEARCH
        out["hnsw_build_s"] = time.perf_counter() - t0
    recalls, flat_ms, hnsw_recalls, hnsw_ms = [], [], [], []
    for q in questions:
        v = vectors[q]
        t0 = time.perf_counter()
        scores, positions = flat.search(v, 50)
        flat_ms.append((time.perf_counter() - t0) * 1000)
        got = dense_ranking(gen, v, 50)
        # Ties: a returned vector as close as the 50th exact one counts as a hit.
        cutoff = scores[0][-1] - 1e-6
        exact = set(ids[positions[0]].tolist())
        recalls.append(sum(1 for i, s in got if i in exact or s >= cutoff) / 50)
        if hnsw is not None:
            t0 = time.perf_counter()
            h_scores, h_positions = hnsw.search(v, 50)
            hnsw_ms.append((time.perf_counter() - t0) * 1000)
            hnsw_recalls.append(sum(1 for pos, s in zip(h_positions[0], h_scores[0])
                                    if pos >= 0 and (ids[pos] in exact or s >= cutoff)) / 50)
    out.update({"dense_recall_at_50": float(np.mean(recalls)), "flat_p50_ms": p(flat_ms, 50)})
    if hnsw is not None:
        out.update({"hnsw_recall_at_50": float(np.mean(hnsw_recalls)), "hnsw_p50_ms": p(hnsw_ms, 50)})
    return out


def keyword_anchors(gen, questions: list[str]) -> dict:
    """The same stems in SQLite FTS5 (the previous version's keyword index, then with a plan that
    drops the commonest terms) and in bm25s (bench/anchors.py)."""
    rows = stem_rows(gen.conn)
    fts = Fts5(rows)
    out = {"fts5_build_s": fts.build_s, "fts5_p50_ms": p(timed(lambda q: fts.search(q, 50), questions), 50),
           "fts5_smart_p50_ms": p(timed(lambda q: fts.search(q, 50, smart=True), questions), 50)}
    fts.close()
    bm25 = Bm25s(rows)
    out["bm25s_build_s"] = bm25.build_s
    out["bm25s_p50_ms"] = p(timed(lambda q: bm25.search(q, 50), questions), 50)
    return out


def add_and_delete(corpus: Path, index: Path, known: Base) -> dict:
    """One new article (encoded for real) added and then deleted, through the update pipeline."""
    desk = Desk.open(index, corpus=corpus)
    source = next(r for r in known.records if len(r["text"]) > 3000)
    path = corpus / "new-article.json"
    path.write_text(json.dumps({"id": "scale-new", "title": source["title"] + " (updated)",
                                "text": "Update: " + source["text"], "published": "2026-11-30"}))
    t0 = time.perf_counter()
    added = desk.update()
    add_s = time.perf_counter() - t0
    path.unlink()
    t0 = time.perf_counter()
    removed = desk.update()
    delete_s = time.perf_counter() - t0
    assert added.added == ["scale-new"] and removed.removed == ["scale-new"], (added, removed)
    return {"add_s": add_s, "add_embed_s": added.embed_seconds, "add_chunks": added.chunks_embedded,
            "delete_s": delete_s}


def disk_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--anchors", action="store_true", help="also FTS5 and bm25s on the same stems")
    parser.add_argument("--questions", type=int, default=296)
    parser.add_argument("--updates", type=int, default=0, metavar="N",
                        help="only add and delete one article, N times over an index already filled")
    args = parser.parse_args()
    known = base()
    real = Desk.open(index_dir(newsqa())).encoder
    corpus, index, info = fill(args.chunks, known, ReplayEncoder(real, known))
    if args.updates:
        rounds = [add_and_delete(corpus, index, known) for _ in range(args.updates)]
        print(json.dumps({"chunks": info["chunks"], "date": time.strftime("%Y-%m-%d %H:%M"), "rounds": rounds}))
        return
    questions = [json.loads(line)["question"] for line in
                 (Path(__file__).resolve().parents[2] / "shared" / "data" / "newsqa-like" / "questions.jsonl")
                 .read_text().splitlines()][:args.questions]
    result = {"chunks": info["chunks"], "fill_s": info["fill_s"], "date": time.strftime("%Y-%m-%d %H:%M")}
    result.update(measure(corpus, index, questions, args.anchors))
    result.update(add_and_delete(corpus, index, known))
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["fill_peak_rss_mb"] = info.get("fill_peak_rss_mb")
    result["disk_mb"] = disk_mb(index)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"scale-{args.chunks}.json").write_text(json.dumps(result, indent=1))
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:22} {value:.2f}" if isinstance(value, float) else f"{key:22} {value}")


if __name__ == "__main__":
    main()
