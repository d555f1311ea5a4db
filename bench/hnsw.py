"""Dense recall@50 and latency of an index's HNSW segments against exact search, by efSearch.

    python bench/hnsw.py bench/work/scale-1000000/index     # an index bench/scale.py filled

For each efSearch value, newsdesk's own dense search (`newsdesk.retrieve.dense_ranking`, which
searches with max(efSearch, k)) on the 296 RealTime QA questions (embedded for real, ONNX int8),
top 50, one thread; recall against exact inner-product search over every live vector, a
returned vector as close as the 50th exact one counting as a hit (ties). Writes
bench/results/hnsw.json.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from evalsets import newsqa  # noqa: E402

import newsdesk.vectors as vectors  # noqa: E402
from newsdesk.config import Settings  # noqa: E402
from newsdesk.desk import load_encoder  # noqa: E402
from newsdesk.embedded import EmbeddedBackend  # noqa: E402
from newsdesk.retrieve import dense_ranking  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
EF = (64, 128, 192, 256, 384, 512)


def main() -> None:
    import faiss

    faiss.omp_set_num_threads(1)
    folder = Path(sys.argv[1])
    encoder = load_encoder(Settings().model_folder(), "onnx-int8")
    questions = [encoder.encode_query(q.text).reshape(1, -1).astype(np.float32) for q in newsqa().questions]
    backend = EmbeddedBackend(folder)
    out = {"date": time.strftime("%Y-%m-%d %H:%M"), "index": str(folder), "questions": len(questions), "ef": {}}
    with backend.generation() as view:
        gen = view.gen
        ids, parts = [], []
        for seg in gen.segments.values():
            keep = gen.alive.get(seg.name, np.ones(seg.size, dtype=bool))
            ids.append(seg.ids[keep])
            parts.append(seg.vectors()[keep])
        ids = np.concatenate(ids)
        flat = faiss.IndexFlatIP(gen.manifest["dimension"])
        flat.add(np.ascontiguousarray(np.concatenate(parts)))
        del parts
        out["vectors"] = int(flat.ntotal)
        exact, flat_ms = [], []
        for v in questions:
            t0 = time.perf_counter()
            scores, positions = flat.search(v, 50)
            flat_ms.append((time.perf_counter() - t0) * 1000)
            exact.append((set(ids[positions[0]].tolist()), float(scores[0][-1]) - 1e-6))
        out["flat_p50_ms"] = float(np.percentile(flat_ms, 50))
        for ef in EF:
            vectors.HNSW_EF_SEARCH = ef
            recalls, ms = [], []
            for v, (want, cutoff) in zip(questions, exact):
                t0 = time.perf_counter()
                got = dense_ranking(gen, v, 50)
                ms.append((time.perf_counter() - t0) * 1000)
                recalls.append(sum(1 for i, s in got if i in want or s >= cutoff) / 50)
            out["ef"][ef] = {"recall_at_50": float(np.mean(recalls)), "p50_ms": float(np.percentile(ms, 50)),
                             "p95_ms": float(np.percentile(ms, 95))}
            print(ef, out["ef"][ef], flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "hnsw.json").write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
