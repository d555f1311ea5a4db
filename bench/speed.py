"""Speed on this machine: indexing throughput against the raw encoder, and query latency.

    python bench/speed.py                    # SQuAD paragraphs, writes bench/results/speed.json
    python bench/speed.py --queries 300

Indexing: a full `Desk.build` of the SQuAD corpus into a fresh folder (loading, cleaning,
chunking, embedding, FAISS and SQLite writes; model already loaded), in chunks per second, next
to `SentenceTransformer.encode` of exactly the same chunk texts with the same batch size (the
ceiling). Latency: warm, one query at a time, torch and FAISS on one thread, over SQuAD
questions: `desk.search(q, k=5)` and `desk.ask(q)`. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from evalsets import squad  # noqa: E402

from newsdesk import Desk  # noqa: E402
from newsdesk.config import Settings  # noqa: E402
from newsdesk.desk import load_embedder  # noqa: E402
from newsdesk.embed import use_threads  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def build_against_encoder(corpus: Path, index_dir: Path, embedder, progress: bool = False) -> tuple[Desk, dict]:
    """A full build into `index_dir`, then the raw encoder on exactly its chunk texts (the ceiling)."""
    use_threads(os.cpu_count() or 1)
    started = time.perf_counter()
    desk = Desk.build(corpus, index_dir, embedder=embedder, progress=progress)
    build_seconds = time.perf_counter() - started
    with desk.reader.generation() as gen:
        texts = [t for (t,) in gen.conn.execute("SELECT text FROM chunks ORDER BY id")]
    use_threads(os.cpu_count() or 1)
    started = time.perf_counter()
    embedder.encode(texts)
    encode_seconds = time.perf_counter() - started
    return desk, {
        "documents": desk.stats().documents, "chunks": len(texts),
        "build_seconds": build_seconds, "encode_seconds": encode_seconds,
        "build_chunks_per_s": len(texts) / build_seconds, "encode_chunks_per_s": len(texts) / encode_seconds,
        "ratio": encode_seconds / build_seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--out", type=Path, default=RESULTS / "speed.json")
    args = parser.parse_args()
    dataset = squad()
    embedder = load_embedder(Settings())
    embedder.encode(["warm up the model"] * 8)
    result: dict = {"date": time.strftime("%Y-%m-%d %H:%M"), "cores": os.cpu_count()}

    with tempfile.TemporaryDirectory() as tmp:
        index_dir = Path(tmp) / "index"
        desk, result["indexing"] = build_against_encoder(dataset.corpus, index_dir, embedder)
        print(json.dumps(result["indexing"], indent=2))

        use_threads(1)
        questions = [q.text for q in dataset.questions]
        random.Random(7).shuffle(questions)
        questions = questions[: args.queries]
        for q in questions[:20]:  # warm caches, as a running bot would be
            desk.ask(q)
        timings: dict[str, list[float]] = {"embed": [], "search": [], "ask": []}
        for q in questions:
            t0 = time.perf_counter()
            desk.encoder.encode_query(q)
            t1 = time.perf_counter()
            desk.search(q, k=5)
            t2 = time.perf_counter()
            desk.ask(q)
            t3 = time.perf_counter()
            timings["embed"].append((t1 - t0) * 1000)
            timings["search"].append((t2 - t1) * 1000)
            timings["ask"].append((t3 - t2) * 1000)
        result["latency_ms"] = {
            name: {"p50": statistics.median(v), "p95": percentile(v, 95), "n": len(v)} for name, v in timings.items()
        }
        print(json.dumps(result["latency_ms"], indent=2))
        shutil.rmtree(index_dir, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
