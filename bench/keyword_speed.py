"""Keyword top-50 latency of an index's tantivy keyword index against bm25s on the same stems,
side by side in one run (issue 10: within 2x of raw bm25s).

    python bench/keyword_speed.py bench/work/scale-1000000/index   # an index bench/scale.py filled

The 296 RealTime QA questions, one at a time, one thread. bm25s indexes every live chunk's
title and body stems (newsdesk's own `terms`), as bench/scale.py's anchors do; its build time
and memory are reported too. Writes bench/results/keyword_speed.json.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from anchors import Bm25s, stem_rows  # noqa: E402
from evalsets import newsqa  # noqa: E402

from newsdesk.embedded import EmbeddedBackend  # noqa: E402
from newsdesk.store import Filters  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def timed(fn, items) -> list[float]:
    for item in items[:20]:
        fn(item)
    out = []
    for item in items:
        t0 = time.perf_counter()
        fn(item)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main() -> None:
    questions = [q.text for q in newsqa().questions]
    backend = EmbeddedBackend(Path(sys.argv[1]))
    out: dict = {"date": time.strftime("%Y-%m-%d %H:%M"), "questions": len(questions)}
    with backend.generation() as view:
        out["chunks"] = view.manifest["chunks"]
        tantivy_ms = timed(lambda q: view.keyword(q, 50, Filters()), questions)
        t0 = time.perf_counter()
        bm25 = Bm25s(stem_rows(view.conn))
        out["bm25s_build_s"] = time.perf_counter() - t0  # the stems and the index
        bm25_ms = timed(lambda q: bm25.search(q, 50), questions)
    out.update({"tantivy_p50_ms": float(np.percentile(tantivy_ms, 50)), "tantivy_p95_ms": float(np.percentile(tantivy_ms, 95)),
                "bm25s_p50_ms": float(np.percentile(bm25_ms, 50)), "bm25s_p95_ms": float(np.percentile(bm25_ms, 95)),
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})
    out["ratio_p50"] = out["tantivy_p50_ms"] / out["bm25s_p50_ms"]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "keyword_speed.json").write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
